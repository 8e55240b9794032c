"""Real Kamailio 5.6 + sipp caller/callee + chargeway (in-process, real engine) over evapi.

Kamailio runs the shipped config/kamailio/kamailio.cfg with our ports; chargeway
runs through its composition root with this folder's tariff plan:
  1001: 10.00 monetary, 1005: 0.00, 1006: 0.10; calls to 1002 cost 0.01/s (1 s increments).
"""

from __future__ import annotations

import asyncio
import math
import time
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from chargeway.app import Gateway
from chargeway.config import load_config
from engine.storage.base import CdrFilter
from engine.units import SECOND

from .peers import Kamailio, Ports, first, render_cfg, sip_trace, stop_all_sipp, uac, uas

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TP = Path(__file__).parent / "tp"
PORTS = Ports()


def chargeway_config(tmp: Path, *, netstrings: bool = True) -> Path:
    config = {
        "general": {"log_level": "info", "uvloop": False},
        "tariffplan": {"folder": str(TP), "load_on_start": "always"},
        "sessions": {"debit_interval": "5s", "min_dur_low_balance": "0s"},
        "api": {"enabled": False},
        "diameter": {"enabled": False},
        "radius": {"enabled": False},
        "kamailio": {"enabled": True, "evapi_conns": [{"address": f"127.0.0.1:{PORTS.evapi}"}],
                     "netstrings": netstrings, "reconnect": {"initial": "0.2s", "max": "1s"},
                     "debit_interval": "5s", "template": "kamailio.yaml"},
    }
    path = tmp / "chargeway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(autouse=True)
def no_leftover_sipp():
    """A failing test must not leave a sipp holding our ports for the next one."""
    yield
    stop_all_sipp()


@pytest.fixture
def kam(tmp_path: Path):
    k = Kamailio(tmp_path / "kam", PORTS)
    k.start()
    yield k
    k.stop()


@pytest.fixture
def callee(tmp_path: Path, kam: Kamailio):
    u = uas(kam.work, PORTS).start()
    yield u
    u.stop()


async def start_gateway(tmp_path: Path, *, netstrings: bool = True) -> Gateway:
    config = load_config(chargeway_config(tmp_path, netstrings=netstrings), tmp_path / "data")
    gw = Gateway(config)
    await gw.start()
    agent = gw.services["kamailio"].agent
    assert await agent.links[0].client.wait_connected(20), "chargeway did not connect to evapi"
    await asyncio.sleep(0.2)  # Kamailio's evapi:connection-new route has run
    return gw


@pytest.fixture
async def gateway(tmp_path: Path, kam: Kamailio):
    gw = await start_gateway(tmp_path)
    yield gw
    await gw.stop()


def balance(gw: Gateway, account: str) -> Decimal:
    return gw.accounts.get("cgrates.org", account).total()


async def cdrs_of(gw: Gateway, account: str) -> list:
    return await gw.storage.query_cdrs(CdrFilter(accounts=[account]))


async def run_sipp(sipp, timeout: float = 60) -> int:
    """sipp blocks; wait for it in a thread so chargeway keeps serving."""
    sipp.start()
    return await asyncio.to_thread(sipp.wait, timeout)


async def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


def expected_cost(usage_ns: int) -> Decimal:
    return Decimal(math.ceil(usage_ns / SECOND)) * Decimal("0.01")


async def test_call_is_authorized_started_ended_rated_and_recorded(gateway, kam, callee) -> None:
    call = uac(kam.work, PORTS, "uac_rr.xml", hold_ms=2500, caller="1001")
    assert await run_sipp(call) == 0, call.output()
    [cdr] = await wait_for(lambda: cdrs_of(gateway, "1001"))
    assert cdr.destination == "1002" and cdr.request_type == "*prepaid"
    assert 2500 * 10**6 <= cdr.usage < 2700 * 10**6  # Kamailio measures to the millisecond
    assert cdr.cost == Decimal("0.03")  # 3 started seconds at 0.01
    assert balance(gateway, "1001") == Decimal("9.97")
    assert cdr.origin_host == f"127.0.0.1:{PORTS.evapi}"
    assert not gateway.sessions.active_sessions()


async def test_no_credit_is_rejected_with_403(gateway, kam, callee) -> None:
    call = uac(kam.work, PORTS, "uac_expect_403.xml", caller="1005")
    assert await run_sipp(call) == 0, call.output()
    assert "403 Insufficient credit" in call.messages()
    assert balance(gateway, "1005") == Decimal(0)
    assert await cdrs_of(gateway, "1005") == []


async def test_unknown_account_is_an_engine_error_503(gateway, kam, callee) -> None:
    call = uac(kam.work, PORTS, "uac_expect_503.xml", caller="9999")
    assert await run_sipp(call) == 0, call.output()
    assert "503 CGR_ERROR" in call.messages()


async def test_engine_down_is_rejected_with_503(kam, callee) -> None:
    call = uac(kam.work, PORTS, "uac_expect_503.xml", caller="1001")
    assert await run_sipp(call) == 0, call.output()
    assert "503 Charging controller unreachable" in call.messages()


async def test_credit_runs_out_mid_call_bye_to_both_sides_on_time(gateway, kam, callee) -> None:
    # 0.10 at 0.01/s: 10 s of credit.
    call = uac(kam.work, PORTS, "uac_wait_bye.xml", caller="1006")
    assert await run_sipp(call, timeout=40) == 0, call.output()
    caller_log = sip_trace(call.messages())
    answered = first(caller_log, "SIP/2.0 200", sent=False).at
    bye_caller = first(caller_log, "BYE", sent=False).at
    # The callee's sipp writes its trace a moment after the caller's: poll for the BYE.
    callee_log = await wait_for(lambda: asyncio.sleep(0, result=[
        t for t in sip_trace(callee.messages()) if t.first_line.startswith("BYE")]), timeout=5)
    bye_callee = callee_log[0].at
    assert 9.0 <= bye_caller - answered <= 11.0, bye_caller - answered
    assert abs(bye_callee - bye_caller) < 0.5
    [cdr] = await wait_for(lambda: cdrs_of(gateway, "1006"))
    # chargeway cut it (not Kamailio's own dialog timeout, which is the fallback)...
    assert 'CGR_SESSION_DISCONNECT' in kam.log() and 'reason="INSUFFICIENT_CREDIT" -> 200' in kam.log()
    # ...and bills it up to the cut: the credit, not one increment more.
    assert cdr.cost == Decimal("0.10") and balance(gateway, "1006") == Decimal(0)
    assert 9 * SECOND <= cdr.usage <= 10 * SECOND


async def test_kamailio_restart_mid_call_reconnects_and_settles(gateway, kam, callee) -> None:
    call = uac(kam.work, PORTS, "uac_rr.xml", hold_ms=6000, caller="1001",
               extra=["-recv_timeout", "20000"])
    call.start()
    agent = gateway.services["kamailio"].agent
    link = agent.links[0]
    await wait_for(lambda: asyncio.sleep(0, result=bool(link.calls)))
    origin_id = next(iter(link.calls))
    answered_at = link.calls[origin_id].answered_at
    # What the agent reconciles after a chargeway restart: the engine's sessions of this Kamailio.
    [external] = gateway.sessions.active_sessions({"OriginHost": link.origin_host})
    assert external["OriginID"] == origin_id and external["Account"] == "1001"
    await asyncio.sleep(2)
    stopping_at = time.time()
    await asyncio.to_thread(kam.stop)  # chargeway keeps running meanwhile
    stopped_at = time.time()
    await asyncio.to_thread(kam.start)
    assert await asyncio.to_thread(call.wait, 40) == 0, call.output()
    [cdr] = await wait_for(lambda: cdrs_of(gateway, "1001"))
    assert cdr.origin_id == origin_id
    # The lost dialog was settled up to when Kamailio went away.
    ended_at = answered_at + cdr.usage / SECOND
    assert stopping_at - 0.05 <= ended_at <= stopped_at + 0.05, (stopping_at, ended_at, stopped_at)
    assert cdr.cost == expected_cost(cdr.usage)
    assert balance(gateway, "1001") == Decimal(10) - cdr.cost
    assert link.client.connects >= 2 and not link.calls and link.lost_at is None
    assert not gateway.sessions.active_sessions()


async def test_raw_json_framing_works_end_to_end(tmp_path: Path) -> None:
    """evapi netstring_format 0 (bare JSON) with chargeway's netstrings: false."""
    kam = Kamailio(tmp_path / "kam", PORTS)
    kam.cfg_text = render_cfg(PORTS, kam.work / "run", extra={"EVAPI_NETSTRINGS": "0"})
    kam.start()
    callee = uas(kam.work, PORTS).start()
    gw = await start_gateway(tmp_path, netstrings=False)
    try:
        call = uac(kam.work, PORTS, "uac_rr.xml", hold_ms=1500, caller="1001")
        assert await run_sipp(call) == 0, call.output()
        [cdr] = await wait_for(lambda: cdrs_of(gw, "1001"))
        assert cdr.cost == Decimal("0.02") and balance(gw, "1001") == Decimal("9.98")
    finally:
        await gw.stop()
        callee.stop()
        kam.stop()
