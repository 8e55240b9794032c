"""Window-256 accounting load through the real engine: nothing lost, every answered Stop stored.

The same closed-loop generator as bench/radius_bench.py (Start, answer, Stop, answer, next),
for 2 s. An answer means durably recorded, so the CDR table must hold one row per answered
Stop, and no session may be left open.
"""

from __future__ import annotations

import asyncio
import json
import sys
from decimal import Decimal

import pytest

from tests.integration.radius.harness import ROOT, SECRET, balance, radius_service, start_gateway
from engine.storage.base import CdrFilter

pytestmark = pytest.mark.integration

USERS = 20


async def test_window_256_no_loss_every_answer_durable(tmp_path):
    gw = await start_gateway(tmp_path, {f"u{i:04d}": "100000" for i in range(USERS)},
                             clients=[{"network": "127.0.0.1/32", "secret": SECRET}])
    try:
        port = radius_service(gw).acct_address[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "bench" / "radload.py"), "--target", f"127.0.0.1:{port}",
            "--secret", SECRET, "--window", "256", "--duration", "2", "--warmup", "0.5", "--timeout", "5",
            "--users", str(USERS), "--json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        result = json.loads(out.decode().strip().splitlines()[-1])
        assert result["lost"] == 0 and result["bad_auth"] == 0, err.decode()
        assert result["stops_ok"] > 0
        rows = await gw.storage.query_cdrs(CdrFilter())
        assert len(rows) == result["stops_ok"]
        assert {r.usage for r in rows} == {60 * 10**9}                  # radload's Acct-Session-Time
        assert gw.sessions.active_sessions() == []
        spent = sum((Decimal("100000") - balance(gw, f"u{i:04d}") for i in range(USERS)), Decimal(0))
        assert spent == Decimal("0.60") * len(rows)                       # 60 s at 1 cent/s, once each
    finally:
        await gw.stop()
