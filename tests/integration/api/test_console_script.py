"""The README's prepaid call, typed as ``chargeway console`` commands against a running server."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import orjson
import pytest

from tests.integration.api.conftest import ROOT, TP_DIR

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

CALL = ["Account=1001", "Destination=1002", "OriginID=readme-call-1", "OriginHost=10.0.0.1"]


def console(server, *words: str, ok: bool = True) -> str:
    proc = subprocess.run([sys.executable, "-m", "chargeway", "console", "--server", f"127.0.0.1:{server.tcp}",
                           *words], cwd=ROOT, capture_output=True, text=True, timeout=30)
    if ok:
        assert proc.returncode == 0, f"console {words}: {proc.stdout}{proc.stderr}"
    return proc.stdout + proc.stderr


def test_prepaid_call_with_console(server) -> None:
    assert console(server, "ping", "sessions").strip() == "Pong"
    status = orjson.loads(console(server, "status"))
    assert status["active_sessions"] == 0 and status["version"].startswith("chargeway")
    wait = status["loop_wait_ms"]   # the idle loop was sampled since start-up, and is not stalled
    assert wait["samples"] > 0 and 0 <= wait["p50"] <= wait["p99"] <= wait["max"] < 1000
    assert console(server, "load_tp_from_folder", f"FolderPath={TP_DIR}").strip() == "OK"
    cost = orjson.loads(console(server, "cost", "Subject=1001", "Destination=1002", "AnswerTime=*now",
                                "Usage=90s"))
    assert Decimal(str(cost["Cost"])) == Decimal("0.9") and cost["Usage"] == "1m30s"
    assert console(server, "balance_set", "Account=1001", "BalanceType=*monetary", "Value=1",
                   "Balance.ID=main").strip() == "OK"
    auth = orjson.loads(console(server, "session_authorize_event", *CALL, "Usage=3h"))
    assert auth == {"MaxUsage": "1m40s", "Reason": "INSUFFICIENT_CREDIT"}  # 1.00 at 0.01/s
    init = orjson.loads(console(server, "session_initiate", *CALL, "AnswerTime=*now"))
    assert init["MaxUsage"] in ("30s", "1m40s")  # the first debit interval (or all the credit)
    [active] = orjson.loads(console(server, "active_sessions"))
    assert active["OriginID"] == "readme-call-1" and active["Account"] == "1001"
    assert console(server, "session_terminate", *CALL, "Usage=90s").strip() == "OK"
    [acc] = orjson.loads(console(server, "accounts", 'AccountIDs=["1001"]'))
    assert Decimal(str(acc["BalanceMap"]["*monetary"][0]["Value"])) == Decimal("0.1")
    [cdr] = orjson.loads(console(server, "cdrs", 'Accounts=["1001"]'))
    assert cdr["OriginID"] == "readme-call-1" and cdr["Usage"] == "1m30s"
    assert Decimal(str(cdr["Cost"])) == Decimal("0.9")
    assert "NOT_FOUND" in console(server, "active_sessions", ok=False)
