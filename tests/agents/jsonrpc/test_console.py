"""chargeway console: cgr-console words -> the exact request, reply pretty-printed."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from click.testing import CliRunner

from chargeway.commands.console import ConsoleError, build_request, console_command, humanize


def test_cost_arguments_like_cgr_console() -> None:
    method, args = build_request(("cost", "Tenant=cgrates.org", "Category=call", "Subject=1001",
                                  "AnswerTime=*now", "Destination=1002", "Usage=2m"))
    assert method == "APIerSv1.GetCost"
    assert args == {"Tenant": "cgrates.org", "Category": "call", "Subject": "1001", "AnswerTime": "*now",
                    "Destination": "1002", "Usage": "2m"}


def test_lists_numbers_nested_and_forced_strings() -> None:
    method, args = build_request(("balance_add", "Account=1001", "BalanceType=*monetary", "Value=10.5",
                                  "Balance.ID=main", 'Balance.Weight=10'))
    assert method == "APIerSv1.AddBalance"
    assert args == {"Account": "1001", "BalanceType": "*monetary", "Value": 10.5,
                    "Balance": {"ID": "main", "Weight": 10}}
    assert build_request(("accounts", 'AccountIDs=["1001"]'))[1] == {"AccountIDs": ["1001"]}
    assert build_request(("cdrs", 'Accounts=["1001"]', "Limit=5"))[1] == {"Accounts": ["1001"], "Limit": 5}


def test_session_commands_build_a_cgrevent() -> None:
    method, args = build_request(("session_initiate", "Account=1001", "Destination=1002", "OriginID=c1",
                                  'APIOpts={"*sessionsDebitInterval":"10s"}'))
    assert method == "SessionSv1.InitiateSession"
    assert args["InitSession"] is True and args["ID"]
    assert args["Event"] == {"Account": "1001", "Destination": "1002", "OriginID": "c1"}
    assert args["APIOpts"] == {"*sessionsDebitInterval": "10s"}


def test_raw_method_and_ping() -> None:
    assert build_request(("SessionSv1.AuthorizeEvent", '{"GetMaxUsage":true,"Event":{"Account":"1"}}')) == \
        ("SessionSv1.AuthorizeEvent", {"GetMaxUsage": True, "Event": {"Account": "1"}})
    assert build_request(("ping", "sessions")) == ("SessionSv1.Ping", {})
    with pytest.raises(ConsoleError):
        build_request(("ping",))
    with pytest.raises(ConsoleError):
        build_request(("frobnicate",))
    with pytest.raises(ConsoleError):
        build_request(("cost", "no-equals-sign"))


def test_durations_printed_like_cgr_console() -> None:
    reply = {"MaxUsage": 10800000000000, "Usage": 93_000_000_000, "Cost": 0.7, "CDRs": [{"Usage": 1_500_000_000}]}
    assert humanize(reply) == {"MaxUsage": "3h0m0s", "Usage": "1m33s", "Cost": 0.7, "CDRs": [{"Usage": "1.5s"}]}


async def test_console_against_live_listener(api) -> None:
    runner = CliRunner()

    def invoke(*argv: str):
        return runner.invoke(console_command, ["--server", f"127.0.0.1:{api.tcp_port}", *argv])

    result = await asyncio.to_thread(invoke, "session_authorize_event", "Account=1001", "Destination=1002",
                                     "Usage=3h")
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output) == {"MaxUsage": "1m0s", "Reason": "INSUFFICIENT_CREDIT"}
    result = await asyncio.to_thread(invoke, "--raw", "SessionSv1.AuthorizeEvent",
                                     '{"GetMaxUsage":true,"Event":{"Account":"1001"}}')
    assert orjson.loads(result.output)["MaxUsage"] == 60_000_000_000
    result = await asyncio.to_thread(invoke, "active_sessions")
    assert result.exit_code == 1 and "NOT_FOUND" in result.output
    result = await asyncio.to_thread(invoke, "ping", "cdrs")
    assert result.output.strip() == "Pong"


@pytest.mark.parametrize(("words", "method"), [
    (("account_set", "Account=1001", "ExtraOptions.AllowNegative=true"), "APIerSv2.SetAccount"),
    (("account_remove", "Account=1001"), "APIerSv1.RemoveAccount"),
    (("balance_set", "Account=1001"), "APIerSv1.SetBalance"),
    (("balance_debit", "Account=1001"), "APIerSv1.DebitBalance"),
    (("load_tp_from_folder", "FolderPath=/tp"), "APIerSv1.LoadTariffPlanFromFolder"),
    (("status",), "CoreSv1.Status"),
    (("session_update", "OriginID=c1"), "SessionSv1.UpdateSession"),
    (("session_process_cdr", "OriginID=c1"), "SessionSv1.ProcessCDR"),
    (("ping", "apiers"), "APIerSv1.Ping"),
])
def test_command_words_map_to_cgrates_methods(words: tuple[str, ...], method: str) -> None:
    got, args = build_request(words)
    assert got == method
    if words[0] == "account_set":
        assert args == {"Account": "1001", "ExtraOptions": {"AllowNegative": True}}
    if words[0] == "session_update":
        assert args["UpdateSession"] is True and args["Event"] == {"OriginID": "c1"}
