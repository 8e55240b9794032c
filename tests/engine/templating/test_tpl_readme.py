"""The README's examples are real templates: they load and do what the text says."""

import re
from datetime import datetime, timezone
from pathlib import Path

from engine.reply import Reply
from engine.templating import DictView, TemplateRunner, parse_template

README = Path(__file__).resolve().parents[3] / "templates" / "README.md"


def examples() -> dict[str, str]:
    blocks = re.findall(r"```yaml\n(agent: .*?)```", README.read_text(), re.S)
    return {b.split("\n", 1)[0]: b for b in blocks if "[...]" not in b}


async def test_readme_gy_example_initiates_and_grants(sessions):
    template = parse_template(examples()["agent: diameter"], "diameter")
    ccr = {"Session-Id": "s1", "CC-Request-Type": 1, "Service-Context-Id": "voice@3gpp.org",
           "Subscription-Id": [{"Subscription-Id-Type": 1, "Subscription-Id-Data": "imsi"},
                               {"Subscription-Id-Type": 0, "Subscription-Id-Data": "4917"}],
           "Service-Information": {"IN-Information": {"Real-Called-Number": "4930"}},
           "Event-Timestamp": datetime(2026, 1, 1, tzinfo=timezone.utc),
           "Requested-Service-Unit": {"CC-Time": 300}}
    sessions.replies["initiate"] = Reply(max_usage=120_000_000_000)
    out = await TemplateRunner(template, sessions).run(DictView(ccr), {"*cmd": "CCR",
                                                                        "RemoteHost": "gw"})
    assert sessions.calls[0][1]["Account"] == "4917"
    assert sessions.calls[0][1]["Usage"] == 300_000_000_000
    assert out.reply_tree == [("Result-Code", 2001), ("Multiple-Services-Credit-Control", [
        ("Granted-Service-Unit", [("CC-Time", 120)])])]
    sessions.replies["initiate"] = Reply.from_error("INSUFFICIENT_CREDIT")
    out = await TemplateRunner(template, sessions).run(DictView(ccr), {"*cmd": "CCR"})
    assert out.reply_tree == [("Result-Code", 5030)]


async def test_readme_radius_example_rejects_on_error(sessions):
    template = parse_template(examples()["agent: radius"], "radius")
    sessions.replies["initiate"] = Reply.from_error("ACCOUNT_NOT_FOUND")
    req = {"Acct-Status-Type": "Start", "Acct-Session-Id": "a1", "User-Name": "1001",
           "Called-Station-Id": "sip:1002@pbx"}
    out = await TemplateRunner(template, sessions).run(DictView(req), {"*radReqType": "*radAcct"})
    assert sessions.calls[0][1]["Destination"] == "1002"
    assert out.reply == [(("*radReplyCode",), "AccessReject")]
