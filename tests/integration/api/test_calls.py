"""Calls driven over real sockets against ``chargeway serve``, in CGRateS JSON.

Tariff (tp/): 1001 -> 1002 costs 0.01 per second (1 s increments), no connect
fee. Balances are checked exactly through APIerSv2.GetAccount, CDRs through
CDRsV1.GetCDRs, the hang-up by the BiRPC client receiving
AgentV1.DisconnectSession.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from typing import Any

import orjson
import pytest

from agents.jsonrpc.client import JsonRpcClient, RpcCallError
from engine.units import format_time, utcnow

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

SECOND = 1_000_000_000


def event(origin_id: str, **extra: Any) -> dict[str, Any]:
    fields = {"Tenant": "cgrates.org", "ToR": "*voice", "OriginID": origin_id, "OriginHost": "10.0.0.1",
              "RequestType": "*prepaid", "Account": "1001", "Destination": "1002",
              "SetupTime": format_time(utcnow()), "AnswerTime": format_time(utcnow())}
    fields.update(extra)
    return fields


def cgr(ev: dict[str, Any], **flags: Any) -> dict[str, Any]:
    return {"Tenant": "cgrates.org", "ID": uuid.uuid4().hex, "Event": ev, **flags}


async def set_credit(api: JsonRpcClient, amount: str) -> None:
    assert await api.call("APIerSv1.SetAccount", {"Tenant": "cgrates.org", "Account": "1001"}) == "OK"
    assert await api.call("APIerSv1.SetBalance", {
        "Tenant": "cgrates.org", "Account": "1001", "BalanceType": "*monetary",
        "Value": float(amount), "Balance": {"ID": "main"}}) == "OK"
    assert await balance(api) == Decimal(amount)


async def balance(api: JsonRpcClient) -> Decimal:
    acc = await api.call("APIerSv2.GetAccount", {"Tenant": "cgrates.org", "Account": "1001"})
    assert acc["ID"] == "cgrates.org:1001"
    return sum((Decimal(str(b["Value"])) for b in acc["BalanceMap"].get("*monetary", [])), Decimal(0))


async def cdrs_for(api: JsonRpcClient, origin_id: str) -> list[dict[str, Any]]:
    try:
        return await api.call("CDRsV1.GetCDRs", {"OriginIDs": [origin_id]})
    except RpcCallError as exc:
        assert str(exc) == "SERVER_ERROR: NOT_FOUND"
        return []


@pytest.fixture
async def api(server):
    client = await JsonRpcClient.connect("127.0.0.1", server.tcp)
    yield client
    await client.close()


async def test_prepaid_call_is_cut_at_the_right_second(server, api) -> None:
    await set_credit(api, "0.03")  # 3 seconds at 0.01/s
    agent = await JsonRpcClient.connect("127.0.0.1", server.birpc,
                                        callbacks={"AgentV1.DisconnectSession": _ok, "AgentV1.WarnDisconnect": _ok})
    ev = event("cut-1")
    auth = await agent.call("SessionSv1.AuthorizeEvent", cgr(dict(ev, Usage="3h"), GetMaxUsage=True))
    assert auth["MaxUsage"] == 3 * SECOND and auth["Reason"] == "INSUFFICIENT_CREDIT"
    started = time.monotonic()
    init = await agent.call("SessionSv1.InitiateSession", cgr(ev, InitSession=True))
    assert init["MaxUsage"] == 3 * SECOND
    call = await agent.wait_call("AgentV1.DisconnectSession", timeout=10)
    elapsed = time.monotonic() - started
    assert 2.6 <= elapsed <= 4.5, f"cut after {elapsed:.2f}s, credit was 3s"
    warn = await agent.wait_call("AgentV1.WarnDisconnect", timeout=1)  # low balance: less than 10 s left
    assert warn.params[0]["OriginID"] == "cut-1"
    cut = call.params[0]
    assert cut["Event"]["OriginID"] == "cut-1"
    assert cut["Event"]["DisconnectCause"] == "INSUFFICIENT_CREDIT"
    # the switch hangs up and reports the real usage
    assert await agent.call("SessionSv1.TerminateSession",
                            cgr(dict(ev, Usage="3s"), TerminateSession=True)) == "OK"
    await agent.close()
    assert await balance(api) == Decimal("0")
    [cdr] = await cdrs_for(api, "cut-1")
    assert cdr["Usage"] == 3 * SECOND and Decimal(str(cdr["Cost"])) == Decimal("0.03")
    assert cdr["RequestType"] == "*prepaid" and cdr["Account"] == "1001"


async def _ok(param: Any) -> str:
    return "OK"


async def test_refund_on_early_hangup(server, api) -> None:
    await set_credit(api, "1.00")
    ev = event("early-1")
    init = await api.call("SessionSv1.InitiateSession", cgr(ev, InitSession=True))
    assert init["MaxUsage"] > 0
    assert await balance(api) < Decimal("1.00")  # the first 30 s interval is charged up front
    assert await api.call("SessionSv1.TerminateSession",
                          cgr(dict(ev, Usage="10s"), TerminateSession=True)) == "OK"
    assert await balance(api) == Decimal("0.90")
    [cdr] = await cdrs_for(api, "early-1")
    assert cdr["Usage"] == 10 * SECOND and Decimal(str(cdr["Cost"])) == Decimal("0.1")


async def test_postpaid_call_rated_and_debited_at_the_end(server, api) -> None:
    await set_credit(api, "1.00")
    ev = event("post-1", RequestType="*postpaid")
    await api.call("SessionSv1.InitiateSession", cgr(ev, InitSession=True))
    assert await balance(api) == Decimal("1.00")  # nothing reserved for postpaid
    assert await api.call("SessionSv1.TerminateSession",
                          cgr(dict(ev, Usage=60 * SECOND), TerminateSession=True)) == "OK"
    assert await balance(api) == Decimal("0.40")
    [cdr] = await cdrs_for(api, "post-1")
    assert cdr["RequestType"] == "*postpaid" and Decimal(str(cdr["Cost"])) == Decimal("0.6")


async def test_duplicate_terminate_debits_once(server, api) -> None:
    await set_credit(api, "1.00")
    ev = event("dup-1")
    await api.call("SessionSv1.InitiateSession", cgr(ev, InitSession=True))
    term = cgr(dict(ev, Usage="20s"), TerminateSession=True)
    assert await api.call("SessionSv1.TerminateSession", term) == "OK"
    try:
        await api.call("SessionSv1.TerminateSession", term)  # retransmitted by the switch
    except RpcCallError:
        pass  # an error is acceptable; a second debit is not
    try:
        await api.call("SessionSv1.ProcessCDR", cgr(dict(ev, Usage="20s")))  # and its CDR, again
    except RpcCallError:
        pass
    assert await balance(api) == Decimal("0.80")
    assert len(await cdrs_for(api, "dup-1")) == 1


async def test_bad_clients_do_not_disturb_a_live_call(server, api) -> None:
    await set_credit(api, "1.00")
    ev = event("live-1")
    await api.call("SessionSv1.InitiateSession", cgr(ev, InitSession=True))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.tcp)
    writer.write(b"\x16\x03\x01 not json at all")
    assert b"invalid JSON-RPC stream" in await asyncio.wait_for(reader.read(), 5)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.tcp)
    writer.write(b'{"method":"SessionSv1.AuthorizeEvent","params":[{"Event":{"x":"' + b"a" * 2_000_000)
    assert b"message larger than" in await asyncio.wait_for(reader.read(), 5)
    with pytest.raises(RpcCallError, match=r"^MANDATORY_IE_MISSING: \[Account"):
        await api.call("SessionSv1.AuthorizeEvent", cgr({"Destination": "1002"}, GetMaxUsage=True))
    with pytest.raises(RpcCallError, match=r"^INVALID_ARGUMENT: invalid duration 'ninety'"):
        await api.call("SessionSv1.AuthorizeEvent", cgr(event("bad-1", Usage="ninety"), GetMaxUsage=True))
    with pytest.raises(RpcCallError, match="rpc: can't find method SessionSv1.Bogus"):
        await api.call("SessionSv1.Bogus", {})
    # a client that sends InitiateSession and vanishes: the engine still completes it
    gone = event("gone-1")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.tcp)
    writer.write(orjson.dumps({"method": "SessionSv1.InitiateSession", "id": 1,
                               "params": [cgr(gone, InitSession=True)]}))
    await writer.drain()
    writer.close()
    for _ in range(100):
        try:
            [found] = await api.call("SessionSv1.GetActiveSessions", {"Filters": ["*string:~*req.OriginID:gone-1"]})
            break
        except RpcCallError:
            await asyncio.sleep(0.05)
    assert found["OriginID"] == "gone-1"
    assert await api.call("SessionSv1.TerminateSession",
                          cgr(dict(gone, Usage="3s"), TerminateSession=True)) == "OK"
    assert await api.call("SessionSv1.TerminateSession",
                          cgr(dict(ev, Usage="5s"), TerminateSession=True)) == "OK"
    assert await balance(api) == Decimal("0.92")


async def test_restart_after_kill_9_keeps_money_and_cdrs(server, api) -> None:
    await set_credit(api, "1.00")
    done = event("crash-done")
    await api.call("SessionSv1.InitiateSession", cgr(done, InitSession=True))
    await api.call("SessionSv1.TerminateSession", cgr(dict(done, Usage="10s"), TerminateSession=True))
    live = event("crash-live")
    await api.call("SessionSv1.InitiateSession", cgr(live, InitSession=True))
    await api.close()
    server.kill9()
    server.start()
    client = await JsonRpcClient.connect("127.0.0.1", server.tcp)
    try:
        # the call that was up during the crash ends normally after the restart
        assert await client.call("SessionSv1.TerminateSession",
                                 cgr(dict(live, Usage="20s"), TerminateSession=True)) == "OK"
        assert await balance(client) == Decimal("0.70")
        assert len(await cdrs_for(client, "crash-done")) == 1
        [cdr] = await cdrs_for(client, "crash-live")
        assert cdr["Usage"] == 20 * SECOND and Decimal(str(cdr["Cost"])) == Decimal("0.2")
    finally:
        await client.close()


async def test_opensips_style_client_gets_protocol_1_disconnect(server, api) -> None:
    """A BiRPC client using the *WithDigest methods (OpenSIPS) is cut with SessionSv1.DisconnectSession."""
    await set_credit(api, "0.02")
    opensips = await JsonRpcClient.connect("127.0.0.1", server.birpc,
                                           callbacks={"SessionSv1.DisconnectSession": _ok})
    ev = event("osips-1", DialogID=1504619733, DialogEntry=30)
    auth = await opensips.call("SessionSv1.AuthorizeEventWithDigest", cgr(ev, GetMaxUsage=True))
    assert auth["MaxUsage"] == 2.0  # float seconds for OpenSIPS
    init = await opensips.call("SessionSv1.InitiateSessionWithDigest", cgr(ev, InitSession=True))
    assert init["MaxUsage"] == 2.0
    call = await opensips.wait_call("SessionSv1.DisconnectSession", timeout=10)
    assert call.params[0]["Reason"] == "INSUFFICIENT_CREDIT"
    assert call.params[0]["EventStart"]["DialogID"] == 1504619733
    assert await opensips.call("SessionSv1.TerminateSession",
                               cgr(dict(ev, Usage="2s"), TerminateSession=True)) == "OK"
    await opensips.close()
    assert await balance(api) == Decimal("0")


async def test_force_disconnect_over_http_reaches_the_agent(server, api) -> None:
    import aiohttp

    await set_credit(api, "5.00")
    agent = await JsonRpcClient.connect("127.0.0.1", server.birpc,
                                        callbacks={"AgentV1.DisconnectSession": _ok})
    ev = event("forced-1")
    await agent.call("SessionSv1.InitiateSession", cgr(ev, InitSession=True))
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{server.http}/jsonrpc"
        body = {"method": "SessionSv1.GetActiveSessions", "params": [{"Filters": ["*string:~*req.OriginID:forced-1"]}],
                "id": 1}
        async with http.post(url, json=body) as resp:
            [active] = (await resp.json())["result"]
        assert active["OriginID"] == "forced-1" and active["RunID"] == "*default"
        body = {"method": "SessionSv1.ForceDisconnect", "params": [{"Filters": ["*string:~*req.OriginID:forced-1"]}],
                "id": 2}
        async with http.post(url, json=body) as resp:
            assert await resp.json() == {"id": 2, "result": "OK", "error": None}
    call = await agent.wait_call("AgentV1.DisconnectSession", timeout=5)
    assert call.params[0]["Event"]["DisconnectCause"] == "FORCED_DISCONNECT"
    await agent.close()
    with pytest.raises(RpcCallError, match="^NOT_FOUND$"):
        await api.call("SessionSv1.GetActiveSessions", {})
    [cdr] = await cdrs_for(api, "forced-1")
    assert await balance(api) == Decimal("5.00") - Decimal(str(cdr["Cost"]))


async def test_manual_mode_updates_process_event_and_cdrs_api(server, api) -> None:
    """Diameter/RADIUS-style manual grants, ProcessEvent maps and a CDR pushed through CDRsV1."""
    await set_credit(api, "1.00")
    manual = {"*sessionsDebitInterval": 0}
    ev = event("manual-1")
    pe = await api.call("SessionSv1.ProcessEvent", {"Flags": ["*rals:*authorize:*derived_reply"],
                                                    "Event": dict(ev, Usage="30s")})
    assert pe["MaxUsage"] == {"*raw": 30 * SECOND, "*default": 30 * SECOND}
    init = await api.call("SessionSv1.InitiateSession", cgr(dict(ev, Usage="30s"), InitSession=True,
                                                             APIOpts=manual))
    assert init == {"MaxUsage": 30 * SECOND}
    assert await balance(api) == Decimal("0.70")
    upd = await api.call("SessionSv1.UpdateSession", cgr(dict(ev, Usage="30s", LastUsed="30s"),
                                                          UpdateSession=True, APIOpts=manual))
    assert upd == {"MaxUsage": 30 * SECOND}
    assert await balance(api) == Decimal("0.40")
    assert await api.call("SessionSv1.TerminateSession",
                          cgr(dict(ev, Usage="50s"), TerminateSession=True, APIOpts=manual)) == "OK"
    assert await balance(api) == Decimal("0.50")
    # an offline CDR for a postpaid call, rated and debited by the engine
    cdr_ev = event("offline-1", RequestType="*postpaid", Usage="15s")
    assert await api.call("CDRsV1.ProcessEvent", {"Flags": ["*rals", "*store"], "Tenant": "cgrates.org",
                                                  "ID": "e1", "Event": cdr_ev}) == "OK"
    [cdr] = await cdrs_for(api, "offline-1")
    assert cdr["Usage"] == 15 * SECOND and Decimal(str(cdr["Cost"])) == Decimal("0.15")
    assert await balance(api) == Decimal("0.35")
    assert await api.call("CDRsV1.GetCDRsCount", {"Accounts": ["1001"]}) == 2
