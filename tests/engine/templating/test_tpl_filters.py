"""Every filter type, negation, OR'ed values, AND'ed lists, dynamic values."""

import pytest

from engine.templating import DictView, TemplateError, TemplateRunner

MSG = {
    "CC-Request-Type": 2,
    "Service-Context-Id": "32251@3gpp.org",
    "Called": "00491234",
    "Account": "1001",
    "Subject": "1001",
    "Empty": "",
    "Rated": "12.5",
    "Usage": "90s",
    "Time": "2024-05-01T10:00:00Z",
    "Avp": ["x", "y"],
    "Host": "10.1.2.3",
}


class AgentView:
    """An agent-written view (not a DictView): exercises the generic, non-inlined paths."""

    def __init__(self, data):
        self._inner = DictView(data)

    def values(self, path):
        return self._inner.values(path)

    def children(self, path):
        return [AgentView(c.data) for c in self._inner.children(path)]


async def passes(tpl, *filters: str) -> bool:
    flist = "\n".join(f"      - '{f}'" for f in filters)
    template = tpl(f"processors:\n  - id: P\n    filters:\n{flist}\n")
    runner = TemplateRunner(template, None)
    variables = {"RemoteHost": "10.1.2.3", "Zero": 0, "Big": 10**20 + 1, "Flag": True}
    outcome = await runner.run(DictView(MSG), dict(variables))
    other = await runner.run(AgentView(MSG), dict(variables))
    assert other.matched is outcome.matched, "agent view and DictView disagree"
    return outcome.matched


@pytest.mark.parametrize(("flt", "expected"), [
    ("*string:~*req.CC-Request-Type:2", True),
    ("*string:~*req.CC-Request-Type:1;3", False),
    ("*string:~*req.CC-Request-Type:1;2", True),
    ("*notstring:~*req.CC-Request-Type:1", True),
    ("*string:~*req.Missing:1", False),
    ("*notstring:~*req.Missing:1", True),
    ("*prefix:~*req.Service-Context-Id:32251", True),
    ("*prefix:~*req.Service-Context-Id:32260;32274", False),
    ("*notprefix:~*req.Service-Context-Id:32260", True),
    ("*suffix:~*req.Service-Context-Id:@3gpp.org", True),
    ("*notsuffix:~*req.Service-Context-Id:@3gpp.org", False),
    ("*regex:~*req.Called:^00[1-9]", True),
    ("*notregex:~*req.Called:^00[1-9]", False),
    ("*exists:~*req.Called", True),
    ("*exists:~*req.Missing:", False),
    ("*notexists:~*req.Missing:", True),
    ("*empty:~*req.Empty:", True),
    ("*empty:~*req.Missing", True),
    ("*empty:~*req.Called", False),
    ("*notempty:~*req.Called", True),
    ("*gt:~*req.Rated:12", True),
    ("*gt:~*req.Rated:12.5", False),
    ("*gte:~*req.Rated:12.5", True),
    ("*lt:~*req.Rated:13", True),
    ("*lte:~*req.Rated:12.4", False),
    ("*eq:~*req.Rated:12.50", True),
    ("*noteq:~*req.Rated:12.50", False),
    ("*gt:~*req.Usage:1m", True),
    ("*lt:~*req.Usage:1m", False),
    ("*gt:~*req.Time:2024-04-30T00:00:00Z", True),
    ("*lt:~*req.Time:2024-04-30T00:00:00Z", False),
    ("*gt:~*req.Missing:1", False),
    ("*notgt:~*req.Missing:1", True),
    # Int values (Diameter Unsigned32, numeric vars) take the generated comparison.
    ("*gt:~*req.CC-Request-Type:1", True),
    ("*gt:~*req.CC-Request-Type:2", False),
    ("*gte:~*req.CC-Request-Type:2.0", True),
    ("*lt:~*req.CC-Request-Type:2.5", True),
    ("*lte:~*req.CC-Request-Type:1.99", False),
    ("*eq:~*req.CC-Request-Type:2.00", True),
    ("*noteq:~*req.CC-Request-Type:2", False),
    ("*gt:~*req.CC-Request-Type:5;1", True),
    ("*notgt:~*req.CC-Request-Type:5;1", False),
    ("*gt:~*req.CC-Request-Type:1s", False),
    ("*gt:~*vars.Zero:0", False),
    ("*gt:~*vars.Big:99999999999999999999", True),
    ("*gt:~*vars.Flag:0", False),
    ("*notempty:~*vars.Zero:", True),
    ("*empty:~*vars.Zero:", False),
    ("*empty:~*vars.Flag:", False),
    ("*notempty:~*req.CC-Request-Type:", True),
    ("*string:~*req.Avp:y", True),
    ("*string:~*req.Account:~*req.Subject", True),
    ("*string:~*req.Account:~*req.Called", False),
    ("*prefix:~*req.Called:~*req.Missing;0049", True),
    ("*ipnet:~*vars.RemoteHost:10.0.0.0/8", True),
    ("*ipnet:~*req.Host:192.168.0.0/16", False),
    ("*notipnet:~*req.Host:192.168.0.0/16", True),
    ("*string:~*req.Called{*len}:8", True),
])
async def test_filter(tpl, flt, expected):
    assert await passes(tpl, flt) is expected


async def test_filter_list_is_and(tpl):
    assert await passes(tpl, "*string:~*req.CC-Request-Type:2", "*prefix:~*req.Called:00")
    assert not await passes(tpl, "*string:~*req.CC-Request-Type:2", "*prefix:~*req.Called:01")


async def test_yaml_trailing_colon_in_flow_list_still_works(tpl):
    template = tpl("processors:\n  - id: P\n    filters: [*exists:~*req.Called:]\n")
    assert (await TemplateRunner(template, None).run(DictView(MSG), {})).matched


@pytest.mark.parametrize(("flt", "reason"), [
    ("*strings:~*req.X:1", "unknown filter type '*strings'"),
    ("*string:~*bogus.X:1", "unknown path root '*bogus'"),
    ("*string:~*req.X", "has no value"),
    ("*regex:~*req.X:([", "bad regexp"),
    ("FLTR_ACCOUNT_1001", "filter profiles by ID are not supported"),
    ("*ipnet:~*req.X:10.0.0.300/8", "bad network"),
    ("*string:~*cfg.general.node_id:x", "not supported by chargeway"),
])
def test_bad_filter_is_a_load_error_with_line(tpl, flt, reason):
    with pytest.raises(TemplateError) as err:
        tpl(f"processors:\n  - id: P\n    filters:\n      - '*string:~*req.A:1'\n      - '{flt}'\n")
    assert err.value.line == 5
    assert reason in err.value.reason
    assert str(err.value).startswith("t.yaml:5: processor P:")
