"""TCP and HTTP listeners: CGRateS bytes in, CGRateS bytes out, bad clients isolated."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson

from agents.jsonrpc.client import JsonRpcClient, RpcCallError
from agents.jsonrpc.service import start
from tests.agents.jsonrpc.conftest import make_ctx, raw_exchange

AUTH = {"GetMaxUsage": True, "Tenant": "cgrates.org", "ID": "ev1",
        "Event": {"ToR": "*voice", "OriginID": "abc", "OriginHost": "10.0.0.1", "RequestType": "*prepaid",
                  "Account": "1001", "Destination": "1002", "SetupTime": "2024-01-01T10:00:00Z",
                  "Usage": "3h"}}


def req(method: str, param, id_=1) -> bytes:
    return orjson.dumps({"method": method, "params": [param], "id": id_})


async def test_authorize_event_exact_reply_bytes(api, sessions) -> None:
    [line] = await raw_exchange(api.tcp_port, req("SessionSv1.AuthorizeEvent", AUTH))
    assert line == b'{"id":1,"result":{"MaxUsage":60000000000,"Reason":"INSUFFICIENT_CREDIT"},"error":null}\n'
    name, fields, _ = sessions.calls[0]
    assert name == "authorize" and fields["Usage"] == "3h" and fields["Tenant"] == "cgrates.org"


async def test_refusal_is_max_usage_zero_with_reason(api) -> None:
    broke = dict(AUTH, Event=dict(AUTH["Event"], Account="broke"))
    [line] = await raw_exchange(api.tcp_port, req("SessionSv1.AuthorizeEvent", broke, 9))
    assert orjson.loads(line) == {"id": 9, "result": {"MaxUsage": 0, "Reason": "INSUFFICIENT_CREDIT"},
                                  "error": None}


async def test_digest_variant_answers_float_seconds(api) -> None:
    [line] = await raw_exchange(api.tcp_port, req("SessionSv1.AuthorizeEventWithDigest", AUTH))
    result = orjson.loads(line)["result"]
    assert result["MaxUsage"] == 60.0 and result["AttributesDigest"] == ""


async def test_pipelined_requests_in_one_write_and_split_value(api) -> None:
    ping = req("CoreSv1.Ping", {}, 1) + req("ApierV1.Ping", {}, 2)
    third = req("CDRsV1.Ping", {}, 3)
    reader, writer = await asyncio.open_connection("127.0.0.1", api.tcp_port)
    writer.write(ping + third[:7])
    await asyncio.sleep(0.05)
    writer.write(third[7:])
    answers = {}
    for _ in range(3):
        msg = orjson.loads(await asyncio.wait_for(reader.readline(), 3))
        answers[msg["id"]] = msg["result"]
    writer.close()
    assert answers == {1: "Pong", 2: "Pong", 3: "Pong"}


async def test_unknown_method_is_go_rpc_error(api) -> None:
    [line] = await raw_exchange(api.tcp_port, req("SessionSv1.Nope", {}, 4))
    assert orjson.loads(line) == {"id": 4, "result": None, "error": "rpc: can't find method SessionSv1.Nope"}


async def test_missing_and_mistyped_fields(api) -> None:
    no_event = {"GetMaxUsage": True, "Tenant": "cgrates.org"}
    no_account = dict(AUTH, Event={"Destination": "1002"})
    no_flags = {"Event": AUTH["Event"]}
    bad_event = dict(AUTH, Event="1001")
    bad_flag = dict(AUTH, GetMaxUsage="yes")
    payload = b"".join(req("SessionSv1.AuthorizeEvent", p, i) for i, p in
                       enumerate([no_event, no_account, no_flags, bad_event, bad_flag], 1))
    payload += orjson.dumps({"method": "SessionSv1.AuthorizeEvent", "params": ["x"], "id": 6})
    lines = await raw_exchange(api.tcp_port, payload, replies=6)
    errors = {orjson.loads(x)["id"]: orjson.loads(x)["error"] for x in lines}
    assert errors == {
        1: "MANDATORY_IE_MISSING: [Event]",
        2: "MANDATORY_IE_MISSING: [Account]",
        3: "MANDATORY_IE_MISSING: [Subsystems]",
        4: "INVALID_ARGUMENT: Event must be an object",
        5: "INVALID_ARGUMENT: GetMaxUsage must be true or false",
        6: "INVALID_ARGUMENT: params must be an object, got str",
    }


async def test_usage_string_reaches_the_engine_untouched(api, sessions) -> None:
    # The engine parses "90s"/ns (tests/integration/api checks a bad one is refused).
    ev = dict(AUTH, Event=dict(AUTH["Event"], Usage="90s"))
    await raw_exchange(api.tcp_port, req("SessionSv1.AuthorizeEvent", ev))
    assert sessions.calls[-1][1]["Usage"] == "90s"


async def test_malformed_json_gets_error_and_connection_lives_on(api) -> None:
    lines = await raw_exchange(api.tcp_port, b'{"method": "CoreSv1.Ping", "id": }' + req("CoreSv1.Ping", {}, 2),
                               replies=2)
    first, second = (orjson.loads(x) for x in lines)
    assert first["id"] is None and first["error"].startswith("invalid JSON-RPC message")
    assert second == {"id": 2, "result": "Pong", "error": None}


async def test_garbage_closes_only_that_connection(api) -> None:
    good = await JsonRpcClient.connect("127.0.0.1", api.tcp_port)
    reader, writer = await asyncio.open_connection("127.0.0.1", api.tcp_port)
    writer.write(b"GET / HTTP/1.1\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 3)  # read() to EOF: server closed it
    assert b"invalid JSON-RPC stream" in answer
    assert await good.call("CoreSv1.Ping", {}) == "Pong"
    await good.close()


async def test_huge_payload_closes_connection(api) -> None:
    good = await JsonRpcClient.connect("127.0.0.1", api.tcp_port)
    reader, writer = await asyncio.open_connection("127.0.0.1", api.tcp_port)
    writer.write(b'{"method":"CoreSv1.Ping","params":[{"x":"' + b"a" * 200_000)
    answer = await asyncio.wait_for(reader.read(), 3)
    assert b"message larger than 65536 bytes" in answer
    assert await good.call("SessionSv1.AuthorizeEvent", AUTH) == \
        {"MaxUsage": 60000000000, "Reason": "INSUFFICIENT_CREDIT"}
    await good.close()


async def test_client_gone_mid_request_engine_finishes_others_continue(api, sessions) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", api.tcp_port)
    slow = dict(AUTH, Event=dict(AUTH["Event"], Account="slow"))
    writer.write(req("SessionSv1.AuthorizeEvent", slow))
    for _ in range(50):
        if sessions.calls:
            break
        await asyncio.sleep(0.01)
    writer.close()
    await asyncio.sleep(0.05)
    sessions.slow.set()  # the engine call completes although its client is gone
    other = await JsonRpcClient.connect("127.0.0.1", api.tcp_port)
    assert await other.call("CoreSv1.Ping", {}) == "Pong"
    await other.close()
    assert sessions.completed == ["slow"]


async def test_terminate_and_process_event_shapes(api, sessions) -> None:
    client = await JsonRpcClient.connect("127.0.0.1", api.tcp_port)
    term = {"TerminateSession": True, "Event": dict(AUTH["Event"], Usage="93s")}
    assert await client.call("SessionSv1.TerminateSession", term) == "OK"
    pe = {"Flags": ["*rals:*authorize:*derived_reply"], "Event": AUTH["Event"]}
    assert await client.call("SessionSv1.ProcessEvent", pe) == \
        {"MaxUsage": {"*raw": 60000000000}, "Reason": {"*raw": "INSUFFICIENT_CREDIT"}}
    try:
        await client.call("SessionSv1.GetActiveSessions", {})
    except RpcCallError as exc:
        assert str(exc) == "NOT_FOUND"
    else:
        raise AssertionError("empty active sessions must be NOT_FOUND")
    assert await client.call("SessionSv1.GetActiveSessionsCount", {}) == 0
    await client.close()
    assert [c[0] for c in sessions.calls] == ["terminate", "authorize"]


async def test_http_post_jsonrpc(api) -> None:
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{api.http_port}/jsonrpc"
        async with http.post(url, data=req("SessionSv1.AuthorizeEvent", AUTH, "h1")) as resp:
            assert resp.status == 200
            assert await resp.json() == {"id": "h1", "result": {"MaxUsage": 60000000000,
                                                              "Reason": "INSUFFICIENT_CREDIT"}, "error": None}
        async with http.post(url, data=b"{not json") as resp:
            assert resp.status == 400 and (await resp.json())["error"].startswith("invalid JSON")
        async with http.post(url, data=b'{"x":"' + b"a" * 70000 + b'"}') as resp:
            assert resp.status == 413


async def test_token_required_when_configured(sessions, tmp_path) -> None:
    service = await start(make_ctx(sessions, tmp_path), {
        "tcp": "127.0.0.1:0", "http": "127.0.0.1:0", "birpc": "", "token": "s3cret"})
    try:
        client = await JsonRpcClient.connect("127.0.0.1", service.tcp_port)
        try:
            await client.call("CoreSv1.Ping", {})
        except RpcCallError as exc:
            assert str(exc).startswith("UNAUTHORIZED")
        else:
            raise AssertionError("ping without token must be refused")
        assert await client.call("CoreSv1.Auth", {"Token": "s3cret"}) == "OK"
        assert await client.call("CoreSv1.Ping", {}) == "Pong"
        await client.close()
        other = await JsonRpcClient.connect("127.0.0.1", service.tcp_port)
        assert await other.call("CoreSv1.Ping", {"APIOpts": {"*token": "s3cret"}}) == "Pong"
        await other.close()
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{service.http_port}/jsonrpc"
            async with http.post(url, data=req("CoreSv1.Ping", {})) as resp:
                assert resp.status == 401
            async with http.post(url, data=req("CoreSv1.Ping", {}),
                                 headers={"Authorization": "Bearer s3cret"}) as resp:
                assert (await resp.json())["result"] == "Pong"
    finally:
        await service.stop()


def test_serves_on_uvloop(sessions, tmp_path) -> None:
    """chargeway serve runs on uvloop, whose transports are not asyncio.Transport subclasses."""
    import uvloop

    async def scenario() -> tuple:
        service = await start(make_ctx(sessions, tmp_path), {"tcp": "127.0.0.1:0", "http": "", "birpc": "127.0.0.1:0"})
        try:
            client = await JsonRpcClient.connect("127.0.0.1", service.tcp_port)
            pong = await client.call("CoreSv1.Ping", {})
            auth = await client.call("SessionSv1.AuthorizeEvent", AUTH)
            await client.close()
            agent = await JsonRpcClient.connect("127.0.0.1", service.birpc_port)
            for _ in range(100):
                if sessions.links:
                    break
                await asyncio.sleep(0.01)
            await sessions.links[0].disconnect_session(AUTH["Event"], "FORCED_DISCONNECT")
            await agent.close()
            return pong, auth, agent.received_calls[0].method
        finally:
            await service.stop()

    assert uvloop.run(scenario()) == ("Pong", {"MaxUsage": 60000000000, "Reason": "INSUFFICIENT_CREDIT"},
                                      "AgentV1.DisconnectSession")


async def test_pipelined_flood_pauses_reading_and_answers_everything(api, sessions) -> None:
    """More in-flight requests than the per-connection cap: reading pauses, then resumes; none lost."""
    slow = dict(AUTH, Event=dict(AUTH["Event"], Account="slow"))
    count = 4000  # far above MAX_IN_FLIGHT (512) and more than one socket read
    reader, writer = await asyncio.open_connection("127.0.0.1", api.tcp_port)
    writer.write(b"".join(req("SessionSv1.AuthorizeEvent", slow, i) for i in range(count)))
    for _ in range(200):
        if len(sessions.calls) >= 512:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    assert 512 <= len(sessions.calls) < count  # the rest waits in the socket buffer (one read may overshoot)
    sessions.slow.set()
    ids = set()
    for _ in range(count):
        ids.add(orjson.loads(await asyncio.wait_for(reader.readline(), 5))["id"])
    writer.close()
    assert ids == set(range(count)) and len(sessions.completed) == count


def test_config_errors_are_named() -> None:
    import pytest

    from agents.jsonrpc.service import ApiConfigError, listen_config

    with pytest.raises(ApiConfigError, match="unknown key"):
        listen_config({"tpc": "127.0.0.1:2012"})
    with pytest.raises(ApiConfigError, match="port must be a number"):
        listen_config({"tcp": "127.0.0.1:twelve"})
    cfg = listen_config({"http": "", "birpc": "0.0.0.0:2014", "callback_timeout": "250ms"})
    assert cfg.tcp == ("127.0.0.1", 2012) and cfg.http is None and cfg.birpc == ("0.0.0.0", 2014)
    assert cfg.callback_timeout == 0.25
