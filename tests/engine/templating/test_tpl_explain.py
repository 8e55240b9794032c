"""``chargeway template explain``: which processor, why not the others, fields, call, reply."""

import json
from pathlib import Path

from click.testing import CliRunner

from chargeway.commands.template import template_group
from engine.templating.explain import load_message

TEMPLATE = """
agent: testagent
processors:
  - id: Auth
    filters: ['*string:~*vars.*cmd:AUTH', '*prefix:~*req.Destination:00']
    flags: [*authorize]
  - id: Start
    filters: ['*string:~*vars.*cmd:START']
    flags: [*initiate, *accounts]
    request_fields:
      - {tag: OriginID, path: '*cgreq.OriginID', value: '~*req.callid', mandatory: true}
      - {tag: Account, path: '*cgreq.Account', value: '~*req.from{*sipuri_user}'}
      - {tag: Subject, path: '*cgreq.Subject', value: '~*req.subject'}
      - {tag: Usage, path: '*cgreq.Usage', value: '~*req.usage{*from_seconds}'}
      - {tag: Debit, path: '*opts.*sessionsDebitInterval', type: '*constant', value: 0}
    reply_fields:
      - {tag: Err, path: '*rep.Error', value: '~*cgrep.Error', filters: ['*notempty:~*cgrep.Error']}
      - {tag: Max, path: '*rep.MaxUsage', value: '~*cgrep.MaxUsage{*duration_seconds}'}
"""


def write(tmp_path: Path, message: dict) -> tuple[Path, Path]:
    tpl = tmp_path / "testagent.yaml"
    tpl.write_text(TEMPLATE)
    msg = tmp_path / "msg.json"
    msg.write_text(json.dumps(message))
    return tpl, msg


def invoke(*args: str):
    return CliRunner().invoke(template_group, ["explain", *args])


def test_explain_shows_match_reasons_fields_call_and_reply(tmp_path):
    tpl, msg = write(tmp_path, {"req": {"callid": "c-1", "from": "sip:1001@pbx.example",
                                        "usage": 60, "Destination": "0049"},
                                "vars": {"*cmd": "START"}})
    result = invoke("--agent", "testagent", "--message", str(msg), "--template", str(tpl))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Auth" in out and "first failing filter *string:~*vars.*cmd:AUTH  (found: 'START')" in out
    assert "-> Start" in out
    assert "*cgreq.OriginID = 'c-1'" in out
    assert "*cgreq.Account = '1001'" in out
    assert "*cgreq.Subject  skipped: no value at ~*req.subject" in out
    assert "*cgreq.Usage = 60000000000 (1m0s)" in out
    assert "sessions.initiate(request, opts)  [dry-run, not called]" in out
    assert "*sessionsDebitInterval 0" in out
    assert "*rep.Error  skipped: filter *notempty:~*cgrep.Error did not pass" in out
    assert "reply sent\n  MaxUsage = 60\n" in out


def test_explain_no_match_and_missing_mandatory_exit_nonzero(tmp_path):
    tpl, msg = write(tmp_path, {"req": {}, "vars": {"*cmd": "HANGUP"}})
    result = invoke("--agent", "testagent", "--message", str(msg), "--template", str(tpl))
    assert result.exit_code == 1
    assert "no processor matched" in result.output
    tpl, msg = write(tmp_path, {"req": {"from": "sip:1@x"}, "vars": {"*cmd": "START"}})
    result = invoke("--agent", "testagent", "--message", str(msg), "--template", str(tpl))
    assert result.exit_code == 1
    assert "ERROR mandatory field 'OriginID' of processor Start: missing value at *req.callid" in result.output
    assert "naming callid" in result.output


def test_explain_var_override_and_bare_json_message(tmp_path):
    tpl, msg = write(tmp_path, {"callid": "c-2", "Destination": "0044"})
    result = invoke("--agent", "testagent", "--message", str(msg), "--template", str(tpl),
                    "--var", "*cmd=AUTH")
    assert result.exit_code == 0, result.output
    assert "-> Auth" in result.output
    assert "sessions.authorize(request, opts)" in result.output


def test_explain_reports_template_errors_with_line(tmp_path):
    tpl, msg = write(tmp_path, {})
    tpl.write_text(TEMPLATE.replace("*initiate, *accounts", "*initiate, *acounts"))
    result = invoke("--agent", "testagent", "--message", str(msg), "--template", str(tpl))
    assert result.exit_code == 1
    assert f"{tpl}:9: processor Start: unknown flag '*acounts'" in result.output


def test_load_message_falls_back_to_json_for_agents_without_explain(tmp_path):
    msg = tmp_path / "m.json"
    msg.write_text('{"req": {"a": [1, 2]}, "vars": {"RemoteHost": "h"}}')
    view, variables = load_message("no_such_agent", msg)
    assert view.values(("a",)) == [1, 2] and variables == {"RemoteHost": "h"}


def test_check_lists_processors(tmp_path):
    tpl, _ = write(tmp_path, {})
    result = CliRunner().invoke(template_group, ["check", str(tpl)])
    assert result.exit_code == 0
    assert "2 processors" in result.output and "*accounts *initiate" in result.output


def test_explain_live_calls_the_engine_of_the_data_dir(tmp_path):
    """--live is the only way explain reaches an engine; it reports the real reply."""
    tpl, msg = write(tmp_path, {"req": {"callid": "c-live", "from": "sip:1001@pbx", "usage": 60},
                                "vars": {"*cmd": "START"}})
    data = tmp_path / "data"
    result = invoke("--agent", "testagent", "--message", str(msg), "--template", str(tpl),
                    "--live", "--data-dir", str(data))
    assert result.exit_code == 0, result.output
    assert "sessions.initiate(request, opts)  [called]" in result.output
    assert "engine reply: " in result.output and "(synthetic)" not in result.output
    assert any(data.iterdir()), "the engine's storage was opened in the data dir"


def test_explain_continue_shows_each_processor_and_the_untried_ones(tmp_path):
    tpl = tmp_path / "t.yaml"
    tpl.write_text("""
processors:
  - id: Log
    flags: [*none, *continue]
    request_fields:
      - {tag: Seen, path: '*cgreq.Seen', value: '~*req.a'}
  - id: Charge
    flags: [*message, *accounts]
    request_fields:
      - {tag: Account, path: '*cgreq.Account', value: '~*req.a'}
  - id: Never
    flags: [*cdrs]
""")
    msg = tmp_path / "m.json"
    msg.write_text('{"a": "1001"}')
    result = invoke("--agent", "x", "--message", str(msg), "--template", str(tpl))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Never                    not tried" in out
    assert out.index("== processor Log") < out.index("*cgreq.Seen = '1001'") < out.index(
        "== processor Charge") < out.index("*cgreq.Account = '1001'")
    assert "none (*none flag)" in out and "sessions.process_message(request, opts)" in out
