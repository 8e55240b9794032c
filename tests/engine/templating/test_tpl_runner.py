"""The runner: processor choice, flags -> engine calls, errors -> ~*cgrep.Error, dry-run."""

from decimal import Decimal

import pytest

from engine.errors import ChargingError, mandatory_missing
from engine.reply import Reply
from engine.templating import DictView, TemplateFieldError, TemplateRunner

GY = """
agent: diameter
defaults:
  request_fields:
    - {tag: OriginID, path: '*cgreq.OriginID', value: '~*req.Session-Id', mandatory: true}
  reply_fields:
    - {tag: Session, path: '*rep.Session-Id', value: '~*req.Session-Id'}
processors:
  - id: Init
    filters: ['*string:~*vars.*cmd:CCR', '*string:~*req.CC-Request-Type:1']
    flags: [*initiate, *accounts]
    request_fields:
      - {tag: Account, path: '*cgreq.Account', value: '~*req.User', mandatory: true}
      - {tag: Usage, path: '*cgreq.Usage', value: '~*req.RSU{*from_seconds}'}
      - {tag: DI, path: '*opts.*sessionsDebitInterval', type: '*constant', value: 0}
    reply_fields:
      - {tag: RC, path: '*rep.Result-Code', type: '*constant', value: 4012,
         filters: ['*string:~*cgrep.Error:INSUFFICIENT_CREDIT'], blocker: true}
      - {tag: RC, path: '*rep.Result-Code', type: '*constant', value: 5030,
         filters: ['*notempty:~*cgrep.Error'], blocker: true}
      - {tag: RC, path: '*rep.Result-Code', type: '*constant', value: 2001}
      - {tag: GSU, path: '*rep.Multiple-Services-Credit-Control.Granted-Service-Unit.CC-Time',
         value: '~*cgrep.MaxUsage{*duration_seconds&*round:0}'}
  - id: Update
    filters: ['*string:~*req.CC-Request-Type:2']
    flags: [*update, *accounts]
    request_fields:
      - {tag: Usage, path: '*cgreq.Usage', value: '~*req.RSU{*from_seconds}'}
      - {tag: LastUsed, path: '*cgreq.LastUsed', value: '~*req.USU{*from_seconds}'}
  - id: Term
    filters: ['*string:~*req.CC-Request-Type:3']
    flags: [*terminate, *accounts, *cdrs]
    request_fields:
      - {tag: Usage, path: '*cgreq.Usage', type: '*cc_usage',
         value: '~*req.CC-Request-Number;~*req.USU{*from_seconds};30s'}
  - id: Event
    filters: ['*string:~*req.CC-Request-Type:4']
    flags: [*message, *accounts]
  - id: Auth
    filters: ['*string:~*req.CC-Request-Type:5']
    flags: [*authorize]
    tenant: other.org
  - id: Cdr
    filters: ['*string:~*req.CC-Request-Type:6']
    flags: [*cdrs]
  - id: Log
    filters: ['*string:~*req.CC-Request-Type:7']
    flags: [*none, *continue, *log]
    reply_fields:
      - {tag: Seen, path: '*rep.Seen', type: '*constant', value: log}
  - id: Dry
    filters: ['*string:~*req.CC-Request-Type:7']
    flags: [*dryrun, *initiate]
    request_fields:
      - {tag: Usage, path: '*cgreq.Usage', type: '*constant', value: 60s}
    reply_fields:
      - {tag: T, path: '*rep.Granted', value: '~*cgrep.MaxUsage{*duration_seconds}'}
"""


def msg(kind: int, **extra):
    return DictView({"Session-Id": "sess-1", "CC-Request-Type": kind, "User": "1001",
                     "CC-Request-Number": kind - 1, "RSU": 300, "USU": 20, **extra})


async def test_initiate_calls_engine_with_request_opts_and_link(tpl, sessions):
    sessions.replies["initiate"] = Reply(max_usage=300_000_000_000)
    link = object()
    out = await TemplateRunner(tpl(GY, "diameter"), sessions).run(
        msg(1), {"*cmd": "CCR", "*link": link})
    assert sessions.calls == [("initiate", {"OriginID": "sess-1", "Account": "1001",
                                            "Usage": 300_000_000_000},
                               {"*sessionsDebitInterval": 0}, {"link": link})]
    assert (out.processor_id, out.call, out.flags) == ("Init", "initiate",
                                                       frozenset({"*initiate", "*accounts"}))
    assert out.reply_tree == [
        ("Session-Id", "sess-1"), ("Result-Code", 2001),
        ("Multiple-Services-Credit-Control", [("Granted-Service-Unit", [("CC-Time", 300)])])]


async def test_engine_error_is_mappable_as_cgrep_error(tpl, sessions):
    sessions.replies["initiate"] = ChargingError("INSUFFICIENT_CREDIT")
    out = await TemplateRunner(tpl(GY), sessions).run(msg(1), {"*cmd": "CCR"})
    assert out.engine_reply.error == "INSUFFICIENT_CREDIT"
    assert out.reply_tree == [("Session-Id", "sess-1"), ("Result-Code", 4012)]
    sessions.replies["initiate"] = mandatory_missing("Destination")
    out = await TemplateRunner(tpl(GY), sessions).run(msg(1), {"*cmd": "CCR"})
    assert out.reply_tree == [("Session-Id", "sess-1"), ("Result-Code", 5030)]


async def test_unexpected_engine_failure_becomes_server_error_reply(tpl, sessions):
    sessions.replies["initiate"] = RuntimeError("disk full")
    out = await TemplateRunner(tpl(GY), sessions).run(msg(1), {"*cmd": "CCR"})
    assert out.engine_reply.error == "SERVER_ERROR: RuntimeError: disk full"
    assert ("Result-Code", 5030) in out.reply_tree


async def test_update_terminate_with_cdr_message_authorize_and_cdrs(tpl, sessions):
    runner = TemplateRunner(tpl(GY), sessions)
    await runner.run(msg(2), {})
    assert sessions.calls[-1][:2] == ("update", {"OriginID": "sess-1", "Usage": 300_000_000_000,
                                                 "LastUsed": 20_000_000_000})
    await runner.run(msg(3), {})
    # terminate then the extra CDR (*cdrs); total usage = 20s + 30s x (2 - 1)
    assert [c[0] for c in sessions.calls[-2:]] == ["terminate", "process_cdr"]
    assert sessions.calls[-2][1]["Usage"] == 50_000_000_000
    await runner.run(msg(4), {})
    assert sessions.calls[-1][0] == "process_message" and sessions.calls[-1][3] == {"debit": True}
    out = await runner.run(msg(5), {})
    assert sessions.calls[-1][:2] == ("authorize", {"OriginID": "sess-1", "Tenant": "other.org"})
    assert out.call == "authorize"
    await runner.run(msg(6), {})
    assert sessions.calls[-1][0] == "process_cdr"


async def test_continue_runs_next_processor_and_dryrun_never_calls(tpl, sessions):
    out = await TemplateRunner(tpl(GY), sessions).run(msg(7), {})
    assert out.processors == ["Log", "Dry"]
    assert out.processor_id == "Dry" and out.dry_run
    assert sessions.calls == []
    assert out.engine_reply == Reply(max_usage=60_000_000_000)
    assert out.reply_tree == [("Session-Id", "sess-1"), ("Seen", "log"), ("Session-Id", "sess-1"),
                              ("Granted", 60)] or out.reply_tree == [
        ("Session-Id", "sess-1"), ("Seen", "log"), ("Granted", 60)]


async def test_dry_run_argument_and_no_sessions_touch_nothing(tpl, sessions):
    out = await TemplateRunner(tpl(GY), sessions).run(msg(1), {"*cmd": "CCR"}, dry_run=True)
    assert sessions.calls == []
    assert out.call == "initiate" and out.dry_run
    assert ("Result-Code", 2001) in out.reply_tree
    out = await TemplateRunner(tpl(GY), None).run(msg(1), {"*cmd": "CCR"})
    assert out.engine_reply.max_usage == 300_000_000_000


async def test_no_processor_matches(tpl, sessions):
    out = await TemplateRunner(tpl(GY), sessions).run(msg(9), {})
    assert not out.matched and out.processor_id is None and out.call is None
    assert out.reply == [] and sessions.calls == []


async def test_mandatory_missing_names_processor_field_and_avp(tpl, sessions, caplog):
    view = DictView({"CC-Request-Type": 1, "User": "1001"})
    with pytest.raises(TemplateFieldError) as err:
        await TemplateRunner(tpl(GY), sessions).run(view, {"*cmd": "CCR"})
    assert (err.value.processor_id, err.value.tag, err.value.missing) == (
        "Init", "OriginID", ("Session-Id",))
    assert sessions.calls == []
    assert "processor Init field OriginID" in caplog.text


async def test_vars_defaults_from_template_are_overridden_by_agent(tpl):
    template = tpl("""
        vars: {Realm: default.org, Node: n1}
        processors:
          - id: P
            request_fields:
              - {tag: R, path: '*cgreq.Realm', value: '~*vars.Realm;@;~*vars.Node'}
    """)
    out = await TemplateRunner(template, None).run(DictView({}), {"Realm": "agent.org"})
    assert out.request == {"Realm": "agent.org@n1"}


async def test_cost_reply_fields_keep_decimal(tpl, sessions):
    sessions.replies["process_message"] = Reply(max_usage=0, cost=Decimal("0.0125"))
    out = await TemplateRunner(tpl(GY), sessions).run(msg(4), {})
    assert out.engine_reply.cost == Decimal("0.0125")


def test_request_names_lists_every_req_read():
    """Agents decode only these names: a read missed here would silently be empty."""
    from engine.templating import parse_template

    template = parse_template("""
agent: radius
templates:
  extra:
    - {tag: X, path: '*cgreq.X', value: '~*req.In-List{*duration_seconds}'}
processors:
  - id: P
    filters: ['*string:~*req.Acct-Status-Type:Start', '*string:~*vars.V:~*req.Dynamic-Const']
    flags: [*none]
    request_fields:
      - {tag: A, path: '*cgreq.A', value: '~*req.User-Name;_;~*oreq.Orig-Name'}
      - {tag: T, path: '*cgreq.T', value: '~*req.Tunnel-Type',
         filters: ['*exists:~*req.Guard[0]:']}
      - {tag: L, path: '*cgreq.L', type: '*template', value: extra}
""")
    names = template.request_names()
    for name in ("Acct-Status-Type", "Dynamic-Const", "User-Name", "Orig-Name", "Tunnel-Type",
                 "Guard", "In-List"):
        assert name in names, name
    assert "V" not in names and "X" not in names
    assert not template.reads_nested_request()
    nested = parse_template("""
agent: radius
processors:
  - id: P
    filters: ['*string:~*req.Cisco-AVPair[0].x:Start']
    flags: [*none]
""")
    assert nested.reads_nested_request()


INDEXED = """
agent: radius
processors:
  - id: A
    filters: ['*string:~*vars.Kind:acct', '*string:~*req.Status:Start;Alive', '*string:~*req.Svc:Framed']
    flags: [*none, *continue]
    request_fields: [{tag: T, path: '*cgreq.Seen', type: '*constant', value: A}]
  - id: B
    filters: ['*string:~*vars.Kind:acct', '*notstring:~*req.Status:Stop']
    flags: [*none, *continue]
    request_fields: [{tag: T, path: '*cgreq.Seen', type: '*constant', value: B}]
  - id: C
    filters: ['*prefix:~*req.Status:St']
    flags: [*none, *continue]
    request_fields: [{tag: T, path: '*cgreq.Seen', type: '*constant', value: C}]
  - id: D
    filters: ['*string:~*vars.Kind:auth', '*string:~*req.Status:1']
    flags: [*none]
    request_fields: [{tag: T, path: '*cgreq.Seen', type: '*constant', value: D}]
  - id: E
    filters: ['*string:~*req.Status:Stop', '*string:~*req.Status:Stop;Start']
    flags: [*none]
    request_fields: [{tag: T, path: '*cgreq.Seen', type: '*constant', value: E}]
"""


@pytest.mark.parametrize("kind", ["acct", "auth", None, 7])
@pytest.mark.parametrize("status", ["Start", "Stop", "Alive", "Other", 1, True, None, ["Start", "Stop"]])
@pytest.mark.parametrize("svc", ["Framed", "Login", None])
async def test_processor_index_tries_exactly_the_processors_that_match(kind, status, svc):
    """The index over *string filters picks the same processors as trying every one in order."""
    from engine.templating import parse_template

    runner = TemplateRunner(parse_template(INDEXED), None)
    assert runner._index is not None
    message = {k: v for k, v in (("Status", status), ("Svc", svc)) if v is not None}
    variables = {} if kind is None else {"Kind": kind}
    indexed = await runner.run(DictView(message), dict(variables))
    runner._index = None
    full = await runner.run(DictView(message), dict(variables))
    assert indexed.processors == full.processors
    assert indexed.request == full.request
