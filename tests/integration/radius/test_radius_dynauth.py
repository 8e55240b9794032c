"""The engine cuts a RADIUS session: Disconnect-Request reaches the NAS; a top-up sends CoA."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from agents.radius import codec
from agents.radius.view import RadiusMessageView
from tests.agents.radius.nas_listener import TestNas
from tests.integration.radius.harness import (SECRET, acct_attrs, balance, cdrs, radclient, radius_service,
                                              start_gateway)

pytestmark = pytest.mark.integration

DA_PORT = 31837          # the test NAS's dynamic-authorization port (our RADIUS range)


@pytest.fixture
async def setup(tmp_path):
    nas = TestNas(SECRET.encode())
    await nas.start("127.0.0.1", DA_PORT)
    gw = await start_gateway(tmp_path, {"1001": "10"},
                             clients=[{"network": "127.0.0.1/32", "secret": SECRET, "da_port": DA_PORT}])
    try:
        yield gw, nas
    finally:
        await gw.stop()
        nas.stop()


async def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_forced_disconnect_sends_disconnect_request(setup):
    gw, nas = setup
    port = radius_service(gw).acct_address[1]
    assert "Accounting-Response" in (await radclient(port, "acct", acct_attrs("Start", "dm-1"))).out
    assert "Accounting-Response" in (await radclient(port, "acct", acct_attrs(
        "Interim-Update", "dm-1", Acct_Session_Time=42))).out
    closed = await gw.sessions.force_disconnect({"OriginID": "dm-1"}, "FORCED_DISCONNECT")
    assert closed == 1
    await wait_for(lambda: len(nas.received) == 1)
    dm = nas.received[0]
    assert dm.code == codec.DISCONNECT_REQUEST
    view = RadiusMessageView(dm, radius_service(gw).dictionary)
    assert view.first("Acct-Session-Id") == "dm-1"
    assert view.first("User-Name") == "1001"
    assert view.first("NAS-IP-Address") == "127.0.0.1"
    assert view.first("Reply-Message") == "FORCED_DISCONNECT"
    assert view.first("Calling-Station-Id") == "1001"          # from the template's dmr list
    # charged for what the NAS reported (42 s) plus the 1 s it had been granted since
    assert [r.usage for r in await cdrs(gw, "dm-1")] == [43 * 10**9]
    assert balance(gw, "1001") == Decimal("9.57")


async def test_topup_mid_session_sends_coa_with_longer_session_timeout(setup):
    gw, nas = setup
    service = radius_service(gw)
    auth = await radclient(service.auth_address[1], "auth",
                           'User-Name = "1001", User-Password = "pw", Called-Station-Id = "1002"\n')
    assert "Session-Timeout = 1000" in auth.out
    assert "Accounting-Response" in (await radclient(service.acct_address[1], "acct",
                                                     acct_attrs("Start", "coa-1"))).out
    assert "Accounting-Response" in (await radclient(service.acct_address[1], "acct", acct_attrs(
        "Interim-Update", "coa-1", Acct_Session_Time=100))).out
    await gw.accounts.add_balance("cgrates.org", "1001", "*monetary", "10", {"ID": "main"})
    acked = await service.refresh_session_timeouts("cgrates.org", "1001")
    assert acked == 1
    coa = nas.received[-1]
    assert coa.code == codec.COA_REQUEST
    view = RadiusMessageView(coa, service.dictionary)
    assert view.first("Acct-Session-Id") == "coa-1"
    # 100 s used; 20 - 1.01 (100 s debited + 1 s reserved) = 18.99 left -> 1899 s more
    assert view.first("Session-Timeout") == 100 + 1899


async def test_start_without_credit_is_answered_then_disconnected(tmp_path):
    nas = TestNas(SECRET.encode())
    await nas.start("127.0.0.1", DA_PORT)
    gw = await start_gateway(tmp_path, {"poor": "0"},
                             clients=[{"network": "127.0.0.1/32", "secret": SECRET, "da_port": DA_PORT}])
    try:
        port = radius_service(gw).acct_address[1]
        start = await radclient(port, "acct", acct_attrs("Start", "unfunded-1", user="poor"))
        assert "Received Accounting-Response" in start.out       # accounting cannot refuse...
        await wait_for(lambda: len(nas.received) == 1)           # ...so the NAS is asked to hang up
        view = RadiusMessageView(nas.received[0], radius_service(gw).dictionary)
        assert nas.received[0].code == codec.DISCONNECT_REQUEST
        assert view.first("Acct-Session-Id") == "unfunded-1"
        assert view.first("Reply-Message") == "INSUFFICIENT_CREDIT"
        assert gw.sessions.active_sessions() == []
    finally:
        await gw.stop()
        nas.stop()


async def test_interim_beyond_credit_disconnects_and_stop_settles(tmp_path):
    nas = TestNas(SECRET.encode())
    await nas.start("127.0.0.1", DA_PORT)
    gw = await start_gateway(tmp_path, {"1001": "0.30"},
                             clients=[{"network": "127.0.0.1/32", "secret": SECRET, "da_port": DA_PORT}])
    try:
        port = radius_service(gw).acct_address[1]
        assert "Accounting-Response" in (await radclient(port, "acct", acct_attrs("Start", "long-1"))).out
        assert nas.received == []
        interim = await radclient(port, "acct", acct_attrs("Interim-Update", "long-1", Acct_Session_Time=40))
        assert "Received Accounting-Response" in interim.out
        await wait_for(lambda: len(nas.received) == 1)          # 40 s used, 30 s paid for: cut
        assert nas.received[0].code == codec.DISCONNECT_REQUEST
        stop = await radclient(port, "acct", acct_attrs("Stop", "long-1", Acct_Session_Time=41))
        assert "Received Accounting-Response" in stop.out
        rows = await cdrs(gw, "long-1")
        assert len(rows) == 1 and rows[0].usage == 41 * 10**9
        # all 41 s the NAS reports are charged (the 11 s past the credit become a debt)
        assert rows[0].cost == Decimal("0.41")
        assert balance(gw, "1001") == Decimal("-0.11")
    finally:
        await gw.stop()
        nas.stop()


async def test_topup_through_the_account_service_sends_coa_by_itself(setup):
    """The operator only tops up (APIerSv1.AddBalance does exactly this call); the NAS gets the CoA."""
    gw, nas = setup
    service = radius_service(gw)
    assert "Accounting-Response" in (await radclient(service.acct_address[1], "acct",
                                                     acct_attrs("Start", "coa-auto"))).out
    assert "Accounting-Response" in (await radclient(service.acct_address[1], "acct", acct_attrs(
        "Interim-Update", "coa-auto", Acct_Session_Time=100))).out
    before = len(nas.received)
    await gw.accounts.add_balance("cgrates.org", "1001", "*monetary", "10", {"ID": "main"})
    await wait_for(lambda: len(nas.received) > before)
    coa = nas.received[-1]
    assert coa.code == codec.COA_REQUEST
    view = RadiusMessageView(coa, service.dictionary)
    assert view.first("Acct-Session-Id") == "coa-auto"
    assert view.first("Session-Timeout") == 100 + 1899


async def test_debits_do_not_send_coa(setup):
    gw, nas = setup
    service = radius_service(gw)
    assert "Accounting-Response" in (await radclient(service.acct_address[1], "acct",
                                                     acct_attrs("Start", "coa-none"))).out
    await gw.accounts.debit_balance("cgrates.org", "1001", "*monetary", "1", {"ID": "main"})
    await asyncio.sleep(0.3)
    assert [p for p in nas.received if p.code == codec.COA_REQUEST] == []
