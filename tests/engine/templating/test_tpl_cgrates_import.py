"""CGRateS request_processors keep working: loaded as is, or converted to our YAML."""

from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from chargeway.commands.template import template_group
from engine.reply import Reply
from engine.templating import DictView, TemplateError, TemplateRunner, load_template, parse_template
from engine.templating.cgrates_import import import_cgrates

DATA = Path(__file__).parent / "data"
CCR_I = {
    "Session-Id": "ses;1", "CC-Request-Type": 1, "CC-Request-Number": 0,
    "Service-Context-Id": "voice@huawei.com",
    "Event-Timestamp": datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc),
    "Subscription-Id": {"Subscription-Id-Type": 0, "Subscription-Id-Data": "1001"},
    "Service-Information": {"IN-Information": {"Real-Called-Number": "4986517174963"}},
    "Requested-Service-Unit": {"CC-Time": 300},
}
CCR_T = {"Session-Id": "ses;1", "CC-Request-Type": 3, "CC-Request-Number": 3,
         "Used-Service-Unit": {"CC-Time": 250}}
DIAM_VARS = {"*cmd": "CCR", "RemoteHost": "10.0.0.1"}


async def test_cgrates_voice_json_loads_as_is_and_drives_the_engine(sessions):
    template = load_template(DATA / "cgrates_diameter_voice.json", agent="diameter")
    assert [p.id for p in template.processors] == ["VoiceInit", "VoiceTerminate"]
    sessions.replies["initiate"] = Reply(max_usage=300_000_000_000)
    out = await TemplateRunner(template, sessions).run(DictView(CCR_I), DIAM_VARS)
    method, request, _, _ = sessions.calls[0]
    assert method == "initiate"
    assert request["OriginID"] == "ses;1" and request["OriginHost"] == "10.0.0.1"
    assert request["Usage"] == "300s"          # Go ${1} replacement, as CGRateS produces it
    assert request["SubscriberId"] == "1001"
    assert request["Destination"] == "4986517174963"
    assert out.reply_tree == [("Result-Code", "2001"), ("Granted-Service-Unit", [("CC-Time", 300)])]

    sessions.replies["terminate"] = Reply()
    sessions.replies["process_cdr"] = Reply()
    await TemplateRunner(template, sessions).run(DictView(CCR_T), DIAM_VARS)
    # *cc_usage: 250s used in this request + 5m x (3 - 1) before it
    assert sessions.calls[1][0] == "terminate" and sessions.calls[1][1]["Usage"] == 850_000_000_000
    assert sessions.calls[2][0] == "process_cdr"


async def test_import_writes_yaml_that_behaves_the_same(sessions):
    text, warnings = import_cgrates(DATA / "cgrates_diameter_voice.json")
    assert text.startswith("# Converted from CGRateS cgrates_diameter_voice.json")
    assert any("*attributes" in w for w in warnings)
    assert any("'*cca' is a CGRateS built-in" in w for w in warnings)
    template = parse_template(text, "diameter")
    sessions.replies["initiate"] = Reply(max_usage=120_000_000_000)
    out = await TemplateRunner(template, sessions).run(DictView(CCR_I), DIAM_VARS)
    assert sessions.calls[0][1]["Usage"] == "300s"
    assert out.reply_tree == [("Result-Code", "2001"), ("Granted-Service-Unit", [("CC-Time", 120)])]


async def test_radius_processors_with_legacy_field_id_and_computed_tenant(sessions):
    text, warnings = import_cgrates(DATA / "cgrates_radius.json", "radius")
    assert any("mask_length" in w for w in warnings)
    template = parse_template(text, "radius")
    sessions.replies["authorize"] = Reply(max_usage=3600_000_000_000)
    req = {"Realm": "example.org", "Acct-Session-Id": "abc", "Sip-From-Tag": "ft",
           "User-Name": "1001", "Called-Station-Id": "1002",
           "Event-Timestamp": "2026-03-02T10:00:00Z"}
    out = await TemplateRunner(template, sessions).run(DictView(req), {"*radReqType": "*radAuth"})
    assert sessions.calls[0][:2] == ("authorize", {
        "Tenant": "example.org", "Category": "call", "RequestType": "*prepaid",
        "OriginID": "abc-ft", "Account": "1001", "Destination": "1002",
        "SetupTime": "2026-03-02T10:00:00Z", "Usage": "3h", "Masked": "x"})
    assert out.reply == [(("SIP-AVP",), "session_max_time#3600")]
    sessions.replies["authorize"] = Reply.from_error("ACCOUNT_NOT_FOUND")
    out = await TemplateRunner(template, sessions).run(DictView(req), {"*radReqType": "*radAuth"})
    assert out.reply_tree == [("*radReplyCode", "AccessReject")]


def test_import_cli_writes_file_and_reports_json_errors_with_lines(tmp_path):
    out_file = tmp_path / "diameter.yaml"
    result = CliRunner().invoke(template_group, [
        "import", str(DATA / "cgrates_diameter_voice.json"), "--agent", "diameter",
        "-o", str(out_file)])
    assert result.exit_code == 0, result.output
    assert load_template(out_file, agent="diameter").processors[0].id == "VoiceInit"

    bad = tmp_path / "bad.json"
    bad.write_text('{\n  // comment\n  "request_processors": [\n    {"id": "X",\n'
                   '     "flags": ["*initiate", "*bogus"]}\n  ]\n}\n')
    result = CliRunner().invoke(template_group, ["import", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:5: processor X: unknown flag '*bogus'" in result.output


def test_json_without_processors_is_a_clear_error(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text('{"general": {}}')
    with pytest.raises(TemplateError, match="no request_processors found"):
        load_template(bad)
