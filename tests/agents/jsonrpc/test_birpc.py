"""BiRPC (2014): the engine calls the connected client back on the same socket."""

from __future__ import annotations

import asyncio

import pytest

from agents.jsonrpc.client import JsonRpcClient
from agents.jsonrpc.link import BiRPCLink

START = {"Tenant": "cgrates.org", "OriginID": "call-1", "OriginHost": "10.0.0.1", "Account": "1001",
         "Destination": "1002", "RequestType": "*prepaid", "Usage": 90_000_000_000}


async def _link_for(sessions, timeout: float = 2.0) -> BiRPCLink:
    for _ in range(int(timeout / 0.01)):
        if sessions.links:
            return sessions.links[-1]
        await asyncio.sleep(0.01)
    raise AssertionError("BiRPC connection was not registered with the session manager")


async def test_link_registered_passed_to_initiate_and_unregistered(api, sessions) -> None:
    client = await JsonRpcClient.connect("127.0.0.1", api.birpc_port)
    link = await _link_for(sessions)
    init = {"InitSession": True, "Event": START}
    assert await client.call("SessionSv1.InitiateSession", init) == {"MaxUsage": 30_000_000_000}
    assert sessions.initiated_links == [link]
    await client.close()
    for _ in range(100):
        if not sessions.links:
            break
        await asyncio.sleep(0.01)
    assert sessions.links == []


async def test_disconnect_session_v2_sends_agentv1_cgrevent(api, sessions) -> None:
    got = []

    async def on_disconnect(param):
        got.append(param)
        return "OK"

    client = await JsonRpcClient.connect("127.0.0.1", api.birpc_port,
                                         callbacks={"AgentV1.DisconnectSession": on_disconnect})
    link = await _link_for(sessions)
    await link.disconnect_session(START, "INSUFFICIENT_CREDIT")
    [call] = client.received_calls
    assert call.method == "AgentV1.DisconnectSession" and call.id == 1 and len(call.params) == 1
    event = got[0]
    assert set(event) == {"Tenant", "ID", "Time", "Event", "APIOpts"}
    assert event["Event"]["OriginID"] == "call-1"
    assert event["Event"]["DisconnectCause"] == "INSUFFICIENT_CREDIT"
    assert event["Event"]["Usage"] == 90_000_000_000
    await link.warn_disconnect(START, 10_000_000_000)
    assert client.received_calls[1].method == "AgentV1.WarnDisconnect" and client.received_calls[1].id == 2
    await client.close()


async def test_disconnect_session_v1_opensips_shape(api, sessions) -> None:
    client = await JsonRpcClient.connect(
        "127.0.0.1", api.birpc_port, callbacks={"SessionSv1.DisconnectSession": _ok})
    link = await _link_for(sessions)
    # OpenSIPS announces itself by calling the digest variant.
    await client.call("SessionSv1.AuthorizeEventWithDigest", {"GetMaxUsage": True, "Event": START})
    assert link.protocol == "1.0"
    await link.disconnect_session(START, "INSUFFICIENT_CREDIT")
    [call] = client.received_calls
    assert call.method == "SessionSv1.DisconnectSession"
    assert call.params[0]["Reason"] == "INSUFFICIENT_CREDIT"
    assert call.params[0]["EventStart"]["OriginID"] == "call-1"
    await client.close()


async def _ok(param):
    return "OK"


async def test_active_session_ids_and_errors(api, sessions) -> None:
    async def ids(param):
        assert param == ""
        return [{"OriginHost": "10.0.0.1", "OriginID": "call-1"}]

    client = await JsonRpcClient.connect("127.0.0.1", api.birpc_port,
                                         callbacks={"AgentV1.GetActiveSessionIDs": ids})
    link = await _link_for(sessions)
    assert await link.active_session_ids() == [("10.0.0.1", "call-1")]
    # NOT_IMPLEMENTED for a hang-up is tolerated silently, as CGRateS does
    await link.disconnect_session(START, "FORCED_DISCONNECT")
    await client.close()


async def test_no_active_session_means_empty(api, sessions) -> None:
    async def none(param):
        raise RuntimeError("NO_ACTIVE_SESSION")

    client = await JsonRpcClient.connect("127.0.0.1", api.birpc_port,
                                         callbacks={"AgentV1.GetActiveSessionIDs": none})
    link = await _link_for(sessions)
    assert await link.active_session_ids() == []
    await client.close()


async def test_silent_client_times_out_and_error_propagates(api, sessions) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", api.birpc_port)  # never answers
    link = await _link_for(sessions)
    with pytest.raises(TimeoutError):
        await link.disconnect_session(START, "INSUFFICIENT_CREDIT")
    assert b"AgentV1.DisconnectSession" in await reader.readline()
    writer.close()


async def test_failing_client_raises_so_engine_retries(api, sessions) -> None:
    async def refuse(param):
        raise RuntimeError("No such channel")

    client = await JsonRpcClient.connect("127.0.0.1", api.birpc_port,
                                         callbacks={"AgentV1.DisconnectSession": refuse})
    link = await _link_for(sessions)
    with pytest.raises(Exception, match="No such channel"):
        await link.disconnect_session(START, "INSUFFICIENT_CREDIT")
    await client.close()


async def test_closed_client_fails_pending_call(api, sessions) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", api.birpc_port)
    link = await _link_for(sessions)
    pending = asyncio.create_task(link.disconnect_session(START, "INSUFFICIENT_CREDIT"))
    await reader.readline()
    writer.close()
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(pending, 2)


async def test_opensips_2_smgeneric_captures_served_and_cut_with_smgclient(api, sessions) -> None:
    """The captured OpenSIPS 2.x frames, sent as-is, get float-second answers; the cut uses SMGClientV1."""
    from pathlib import Path

    import orjson

    captures = Path(__file__).parent / "captures"
    reader, writer = await asyncio.open_connection("127.0.0.1", api.birpc_port)
    link = await _link_for(sessions)
    writer.write((captures / "cgrates_module_getmaxusage.json").read_bytes())
    assert orjson.loads(await reader.readline()) == {"id": 1933966014, "result": 60.0, "error": None}
    writer.write((captures / "cgrates_module_initiatesession.json").read_bytes())
    assert orjson.loads(await reader.readline()) == {"id": 1933966018, "result": 30.0, "error": None}
    assert sessions.calls[1][1]["DialogEntry"] == 30 and sessions.initiated_links == [link]
    assert link.protocol == "0"
    cut = asyncio.create_task(link.disconnect_session(START, "INSUFFICIENT_CREDIT"))
    request = orjson.loads(await reader.readline())
    assert request["method"] == "SMGClientV1.DisconnectSession"
    assert request["params"][0]["Reason"] == "INSUFFICIENT_CREDIT"
    writer.write(orjson.dumps({"error": None, "result": "OK", "id": request["id"]}))  # OpenSIPS's reply
    await asyncio.wait_for(cut, 2)
    writer.write((captures / "cgrates_module_terminatesession.json").read_bytes())
    assert orjson.loads(await reader.readline()) == {"id": 63438847, "result": "OK", "error": None}
    writer.close()
