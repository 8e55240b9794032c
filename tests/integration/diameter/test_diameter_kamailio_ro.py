"""Kamailio 5.6 ims_charging (a real Ro client) + sipp caller/callee against our server.

Kamailio's cdp connects to us as peer "localhost" (our CEA Origin-Host must say so), then
sends CCR-I/U/T per call through the shipped templates/diameter.yaml into the real engine.
Tariff plan (tp/): calls to 1002 cost 0.01/s in 1 s steps; 1001 has 10.00, 1007 has
0.08 (8 s), 1005 has nothing. tshark watches the Diameter side of every call.

Quirks of this client the agent tolerates (and logs once): CCRs without
Auth-Application-Id, Origin-Host/Realm twice, Accounting AVPs in a CCR, a Subscription-Id
of type SIP URI. It ends a call at once when a grant has Final-Unit-Indication but no
Validity-Time, so the agent sends Validity-Time with every grant.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

import pytest

from tests.agents.diameter.engine_rig import Rig, start_rig, stop_rig

from .peers import SERVER_PORT, Capture, KamailioRo, sipp_scenario, sipp_uac, sipp_uas, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TP = Path(__file__).parent / "tp"


async def start_all(tmp_path: Path) -> tuple[Rig, KamailioRo]:
    rig = await start_rig(tmp_path, plan_dir=TP, origin_realm="test", validity_time=30,
                          listeners=[{"address": f"127.0.0.1:{SERVER_PORT}", "transport": "tcp"}])
    kam = await KamailioRo(tmp_path / "kam", reserve=10, interim=10, timer_buffer=2).start()
    try:
        await wait_for(lambda: "kamailio.test" in rig.service.server.peers, 20)
    except BaseException:
        await kam.stop()
        await stop_rig(rig)
        raise
    return rig, kam


def ccr_rows(capture: Capture) -> list[tuple[str, str, str, str, str]]:
    """(request flag, CC-Request-Type, CC-Request-Number, Result-Code, CC-Time) per CC message."""
    rows = capture.fields("diameter.flags.request", "diameter.CC-Request-Type", "diameter.CC-Request-Number",
                          "diameter.Result-Code", "diameter.CC-Time", display_filter="diameter.cmd.code==272")
    return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_call_is_allowed_updated_and_charged(tmp_path: Path, caplog) -> None:
    rig, kam = await start_all(tmp_path)
    uas = None
    try:
        async with Capture(tmp_path) as capture:
            uas = await sipp_uas(tmp_path)
            await asyncio.sleep(0.3)
            code, trace = await sipp_uac(tmp_path, sipp_scenario(tmp_path, "uac_rr.xml", "1001"), hold_ms=12000)
            assert code == 0, trace[-2000:]
            await wait_for(lambda: not rig.service.cc.sessions, 10)
        rows = ccr_rows(capture)
        requests = [(r[1], r[2]) for r in rows if r[0] == "1"]
        assert requests[0] == ("1", "0") and requests[-1][0] == "3"
        assert any(kind == "2" for kind, _ in requests), requests          # at least one CCR-U
        answers = [r for r in rows if r[0] == "0"]
        assert len(answers) == len(requests) and all(r[3].split(",")[0] == "2001" for r in answers)
        assert answers[0][4] == "10"                                          # granted what it asked
        (cdr,) = await rig.cdrs(accounts=["1001"])
        seconds = cdr.usage // 10**9
        assert 12 <= seconds <= 14 and cdr.destination == "1002"
        assert cdr.cost == Decimal(seconds) / 100
        assert rig.monetary("1001") == Decimal(10) - cdr.cost
        assert capture.expert_problems(from_port=SERVER_PORT) == []
        assert "Credit-Control-Request without Auth-Application-Id (accepted)" in caplog.text
    finally:
        await kam.stop()
        if uas is not None:
            await uas.stop()
        await stop_rig(rig)


async def test_call_cut_when_credit_runs_out_and_refused_without_credit(tmp_path: Path) -> None:
    rig, kam = await start_all(tmp_path)
    uas = None
    try:
        async with Capture(tmp_path) as capture:
            uas = await sipp_uas(tmp_path)
            await asyncio.sleep(0.3)
            started = time.monotonic()
            # 1007 can pay 8 s: the grant carries Final-Unit-Indication and Kamailio sends BYE.
            code, trace = await sipp_uac(tmp_path, sipp_scenario(tmp_path, "uac_wait_bye.xml", "1007"), timeout=30)
            elapsed = time.monotonic() - started
            assert code == 0, trace[-2000:]
            assert "BYE sip:" in trace
            assert 7.0 <= elapsed <= 15.0
            await wait_for(lambda: not rig.service.cc.sessions, 10)
            # 1005 has nothing: CCR-I answered 4012, the caller gets 402.
            code, trace = await sipp_uac(tmp_path, sipp_scenario(tmp_path, "uac_expect_4xx.xml", "1005"), timeout=20)
            assert code == 0 and "SIP/2.0 402 Payment required" in trace
        rows = ccr_rows(capture)
        first_grant = next(r for r in rows if r[0] == "0")
        assert first_grant[3].split(",")[0] == "2001" and first_grant[4] == "8"     # 0.08 buys 8 s
        # Kamailio's timer has 1 s granularity: it reports what the call really used (8 or 9 s,
        # its CCR-T USU); the CDR and the balance follow the report exactly.
        reported = sum(int(r[4].split(",")[-1]) for r in rows if r[0] == "1" and r[1] in ("2", "3") and r[4])
        (cdr,) = await rig.cdrs(accounts=["1007"])
        assert cdr.usage == reported * 10**9 and 8 <= reported <= 9
        assert cdr.cost == Decimal(reported) / 100
        assert rig.monetary("1007") == Decimal("0.08") - cdr.cost
        assert rig.monetary("1005") == Decimal(0)
        assert any("4012" in r[3] for r in rows if r[0] == "0")
        assert capture.expert_problems(from_port=SERVER_PORT) == []
    finally:
        await kam.stop()
        if uas is not None:
            await uas.stop()
        await stop_rig(rig)
