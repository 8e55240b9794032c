"""radclient / radtest (freeradius-utils) against chargeway's RADIUS agent and the real engine."""

from __future__ import annotations

import asyncio
import socket
from decimal import Decimal

import pytest

from agents.radius import codec
from tests.integration.radius.harness import (SECRET, acct_attrs, balance, cdrs, radclient, radius_service,
                                              radtest, start_gateway)

pytestmark = pytest.mark.integration


@pytest.fixture
async def gateway(tmp_path):
    gw = await start_gateway(tmp_path, {"1001": "10", "1002": "10", "poor": "0", "surfer": "100"})
    try:
        yield gw
    finally:
        await gw.stop()


async def test_access_accept_with_session_timeout_and_reject_with_reason(gateway):
    service = radius_service(gateway)
    port = service.auth_address[1]
    ok = await radclient(port, "auth", 'User-Name = "1001", User-Password = "pw", Called-Station-Id = "1002", '
                                       'Message-Authenticator = 0x00\n')
    assert ok.rc == 0, ok.out
    assert "Received Access-Accept" in ok.out
    # 10 units of credit at 1 cent/s: 1000 s affordable (below the 3h default request).
    assert "Session-Timeout = 1000" in ok.out
    poor = await radclient(port, "auth", 'User-Name = "poor", User-Password = "x", Called-Station-Id = "1002"\n')
    assert poor.rc == 1
    assert "Received Access-Reject" in poor.out and 'Reply-Message = "INSUFFICIENT_CREDIT"' in poor.out
    ghost = await radclient(port, "auth", 'User-Name = "ghost", User-Password = "x", Called-Station-Id = "1002"\n')
    assert "Received Access-Reject" in ghost.out and "Reply-Message = " in ghost.out
    assert "NOT_FOUND" in ghost.out
    nouser = await radclient(port, "auth", 'User-Password = "x", Called-Station-Id = "1002"\n')
    assert "Received Access-Reject" in nouser.out, nouser.out
    assert 'Reply-Message = "MANDATORY_IE_MISSING: [User-Name]"' in nouser.out
    # radtest sends no Called-Station-Id: no destination to rate, refused with the engine's reason.
    nodest = await radtest(port, "1001", "pw")
    assert "Received Access-Reject" in nodest.out and 'Reply-Message = "UNAUTHORIZED_DESTINATION"' in nodest.out
    assert balance(gateway, "1001") == Decimal("10")          # authorize never debits


async def test_accounting_start_interim_stop_charges_once_and_writes_cdr(gateway):
    port = radius_service(gateway).acct_address[1]
    start = await radclient(port, "acct", acct_attrs("Start", "call-0001"))
    assert start.rc == 0 and "Received Accounting-Response" in start.out, start.out
    interim = await radclient(port, "acct", acct_attrs("Interim-Update", "call-0001", Acct_Session_Time=30))
    assert "Received Accounting-Response" in interim.out
    assert [s["Usage"] for s in gateway.sessions.active_sessions({"OriginID": "call-0001"})] == [30 * 10**9]
    stop = await radclient(port, "acct", acct_attrs("Stop", "call-0001", Acct_Session_Time=65,
                                                      Acct_Terminate_Cause="User-Request"))
    assert "Received Accounting-Response" in stop.out
    assert balance(gateway, "1001") == Decimal("9.35")        # 65 s at 1 cent/s
    rows = await cdrs(gateway, "call-0001")
    assert len(rows) == 1
    assert rows[0].usage == 65 * 10**9 and rows[0].cost == Decimal("0.65")
    assert rows[0].account == "1001" and rows[0].destination == "1002" and rows[0].origin_host == "127.0.0.1"
    # A second Stop (a NAS that lost our answer and rebuilt the packet with a new Identifier): not charged again.
    again = await radclient(port, "acct", acct_attrs("Stop", "call-0001", Acct_Session_Time=65))
    assert "Received Accounting-Response" in again.out
    assert balance(gateway, "1001") == Decimal("9.35")
    assert len(await cdrs(gateway, "call-0001")) == 1


async def test_retransmitted_stop_is_answered_from_cache_not_charged_twice(gateway):
    service = radius_service(gateway)
    port = service.acct_address[1]
    assert "Accounting-Response" in (await radclient(port, "acct", acct_attrs("Start", "call-rtx", user="1002"))).out
    d = service.dictionary
    attrs = [(d.definition(n).key, d.encode(d.definition(n), v)) for n, v in (
        ("Acct-Status-Type", "Stop"), ("Acct-Session-Id", "call-rtx"), ("User-Name", "1002"),
        ("Called-Station-Id", "1002"), ("NAS-IP-Address", "127.0.0.1"), ("Acct-Session-Time", 100))]
    packet = codec.encode_request(codec.ACCOUNTING_REQUEST, 77, attrs, SECRET.encode())
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    try:
        for _ in range(3):                       # retransmissions while the first copy is in the engine
            sock.sendto(packet, ("127.0.0.1", port))
        answers = [await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)]
        await asyncio.sleep(0.2)
        sock.sendto(packet, ("127.0.0.1", port))  # a retransmission after our answer was lost
        answers.append(await asyncio.wait_for(loop.sock_recv(sock, 4096), 5))
    finally:
        sock.close()
    assert all(a == answers[0] for a in answers)
    assert codec.parse(answers[0]).code == codec.ACCOUNTING_RESPONSE
    assert balance(gateway, "1002") == Decimal("9.00")      # 100 s once
    assert len(await cdrs(gateway, "call-rtx")) == 1
    assert service.acct.stats.duplicates_answered == 1
    assert service.acct.stats.duplicates_in_flight == 2


async def test_wrong_secret_gets_no_reply_and_charges_nothing(gateway):
    service = radius_service(gateway)
    acct = await radclient(service.acct_address[1], "acct", acct_attrs("Start", "call-bad"), secret="wrong",
                           timeout=0.5, retries=1)
    assert "No reply from server" in acct.out and acct.rc != 0
    auth = await radclient(service.auth_address[1], "auth", 'User-Name = "1001", User-Password = "pw", '
                           'Called-Station-Id = "1002", Message-Authenticator = 0x00\n', secret="wrong",
                           timeout=0.5, retries=1)
    assert "No reply from server" in auth.out and auth.rc != 0
    assert gateway.sessions.active_sessions({"OriginID": "call-bad"}) == []
    assert balance(gateway, "1001") == Decimal("10")
    assert service.acct.stats.bad_authenticator >= 1


async def test_data_session_usage_with_gigawords(gateway):
    port = radius_service(gateway).acct_address[1]
    base = {"Service_Type": "Framed-User"}
    start = acct_attrs("Start", "data-1", user="surfer", **base)
    assert "Accounting-Response" in (await radclient(port, "acct", start)).out
    stop = acct_attrs("Stop", "data-1", user="surfer", Acct_Input_Octets=1048576, Acct_Output_Octets=0,
                      Acct_Input_Gigawords=0, Acct_Output_Gigawords=1, **base)
    assert "Accounting-Response" in (await radclient(port, "acct", stop)).out
    rows = await cdrs(gateway, "data-1")
    assert len(rows) == 1 and rows[0].tor == "*data"
    assert rows[0].usage == 2**32 + 1048576                  # Gigawords counted
    # 4097 MB at 1 cent per MB
    assert rows[0].cost == Decimal("40.97")
    assert balance(gateway, "surfer") == Decimal("59.03")


async def test_nas_reboot_closes_its_sessions(gateway):
    port = radius_service(gateway).acct_address[1]
    for sid in ("r-1", "r-2"):
        assert "Accounting-Response" in (await radclient(port, "acct", acct_attrs("Start", sid))).out
    assert "Accounting-Response" in (await radclient(port, "acct", acct_attrs(
        "Interim-Update", "r-1", Acct_Session_Time=20))).out
    assert len(gateway.sessions.active_sessions({"OriginHost": "127.0.0.1"})) == 2
    on = await radclient(port, "acct", "Acct-Status-Type = Accounting-On\nNAS-IP-Address = 127.0.0.1\n")
    assert "Received Accounting-Response" in on.out, on.out
    assert gateway.sessions.active_sessions({"OriginHost": "127.0.0.1"}) == []
    assert [r.usage for r in await cdrs(gateway, "r-1")] == [20 * 10**9]
    assert [r.usage for r in await cdrs(gateway, "r-2")] == [0]
    assert balance(gateway, "1001") == Decimal("9.80")


async def test_failed_call_is_a_cdr_only(gateway):
    port = radius_service(gateway).acct_address[1]
    failed = await radclient(port, "acct", acct_attrs("Failed", "missed-1"))
    assert "Received Accounting-Response" in failed.out, failed.out
    rows = await cdrs(gateway, "missed-1")
    assert len(rows) == 1 and rows[0].usage == 0 and rows[0].cost == Decimal(0)
    assert balance(gateway, "1001") == Decimal("10")
    assert gateway.sessions.active_sessions() == []
