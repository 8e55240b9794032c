"""The evapi client and link against a fake Kamailio over real loopback TCP."""

from __future__ import annotations

import asyncio
import socket

import pytest

from agents.kamailio.client import Backoff, EvapiClient, NotConnected
from agents.kamailio.codec import Frame
from agents.kamailio.link import KamailioLink

from .fake_evapi import FakeEvapi


class Recorder:
    def __init__(self) -> None:
        self.frames: list[dict] = []
        self.connects = 0
        self.disconnects: list[float] = []

    def connected(self, client: EvapiClient) -> None:
        self.connects += 1

    def disconnected(self, client: EvapiClient, lost_at: float) -> None:
        self.disconnects.append(lost_at)

    def frame(self, client: EvapiClient, frame: Frame) -> None:
        self.frames.append(frame.message)


async def until(predicate, timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


@pytest.fixture
async def fake():
    server = await FakeEvapi().start()
    yield server
    await server.stop()


async def test_connects_with_nodelay_and_delivers_frames(fake: FakeEvapi) -> None:
    rec = Recorder()
    client = EvapiClient(fake.address, rec, backoff=Backoff(0.05, 0.2))
    client.start()
    try:
        await fake.wait_connections(1)
        await until(lambda: client.is_connected)
        sock = client._protocol.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        fake.send({"event": "CGR_CALL_START", "OriginID": "a"})
        await until(lambda: rec.frames)
        assert rec.frames == [{"event": "CGR_CALL_START", "OriginID": "a"}]
        client.send({"Event": "CGR_DLG_LIST"})
        assert await fake.next() == {"Event": "CGR_DLG_LIST"}
    finally:
        await client.stop()


async def test_reconnects_with_backoff_after_kamailio_restart(fake: FakeEvapi) -> None:
    rec = Recorder()
    client = EvapiClient(fake.address, rec, backoff=Backoff(0.05, 0.2))
    client.start()
    try:
        await until(lambda: rec.connects == 1)
        port = fake.port
        await fake.stop()
        await until(lambda: rec.disconnects)
        assert not client.is_connected
        with pytest.raises(NotConnected):
            client.send({"Event": "x"})
        await asyncio.sleep(0.5)  # several failed attempts while "Kamailio" is down
        await fake.start(port)
        await until(lambda: rec.connects == 2)
        fake.send({"event": "CGR_CALL_END"})
        await until(lambda: rec.frames == [{"event": "CGR_CALL_END"}])
    finally:
        await client.stop()


async def test_bad_length_header_closes_and_reconnects_keeping_earlier_frames(fake: FakeEvapi) -> None:
    rec = Recorder()
    client = EvapiClient(fake.address, rec, backoff=Backoff(0.05, 0.2))
    client.start()
    try:
        await fake.wait_connections(1)
        fake.send_raw(b'17:{"event":"GOOD1"},xx:{"event":"LOST"},')
        await until(lambda: rec.connects == 2)
        assert rec.frames == [{"event": "GOOD1"}]
        assert fake.closed_connections == 1
        await fake.wait_connections(2)
        fake.send({"event": "AFTER"})
        await until(lambda: rec.frames[-1] == {"event": "AFTER"})
    finally:
        await client.stop()


async def test_bad_json_keeps_the_connection(fake: FakeEvapi) -> None:
    rec = Recorder()
    client = EvapiClient(fake.address, rec, backoff=Backoff(0.05, 0.2))
    client.start()
    try:
        await fake.wait_connections(1)
        fake.send_raw(b'4:{"a",')
        fake.send({"event": "NEXT"})
        await until(lambda: rec.frames)
        assert rec.frames == [{"event": "NEXT"}] and rec.connects == 1 and fake.closed_connections == 0
    finally:
        await client.stop()


async def test_link_disconnect_writes_the_cgrates_message(fake: FakeEvapi) -> None:
    client = EvapiClient(fake.address, Recorder(), backoff=Backoff(0.05, 0.2), alias="kam1")
    link = KamailioLink(client)
    with pytest.raises(NotConnected):
        await link.disconnect_session({"h_entry": "1", "h_id": "2"}, "INSUFFICIENT_CREDIT")
    client.start()
    try:
        await until(lambda: client.is_connected)
        await link.disconnect_session({"OriginID": "c1", "h_entry": "2395", "h_id": "2711"},
                                      "INSUFFICIENT_CREDIT")
        assert await fake.next() == {"Event": "CGR_SESSION_DISCONNECT", "HashEntry": "2395",
                                     "HashId": "2711", "Reason": "INSUFFICIENT_CREDIT"}
        with pytest.raises(ValueError):
            await link.disconnect_session({"OriginID": "c2"}, "INSUFFICIENT_CREDIT")
        assert link.name == "kamailio:kam1"
    finally:
        await client.stop()


async def test_link_lists_active_dialogs_through_dlg_list(fake: FakeEvapi) -> None:
    rec = Recorder()
    client = EvapiClient(fake.address, rec, backoff=Backoff(0.05, 0.2))
    link = KamailioLink(client, dlg_list_timeout=2)
    rec.frame = lambda c, f: link.dlg_list_reply(f.message)  # type: ignore[method-assign]
    client.start()
    try:
        await until(lambda: client.is_connected)
        task = asyncio.create_task(link.active_session_ids())
        assert await fake.next() == {"Event": "CGR_DLG_LIST"}
        fake.send({"event": "CGR_DLG_LIST_REPLY", "jsonrpl_body": {"jsonrpc": "2.0", "id": 1, "result": [
            {"h_entry": 868, "h_id": 9047, "call-id": "1-11019@127.0.0.1", "state": 4}]}})
        assert await task == [(fake.address, "1-11019@127.0.0.1")]
        # A JSON-RPC error is not "no dialogs": the engine must not end every call.
        task = asyncio.create_task(link.active_session_ids())
        await fake.next()
        fake.send({"event": "CGR_DLG_LIST_REPLY", "jsonrpl_body": {"error": {"code": 500}}})
        assert await task is None
    finally:
        await client.stop()
    assert await link.active_session_ids() is None  # not connected: unknown
