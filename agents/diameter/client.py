"""A small asyncio Gy client: our own PGW stand-in for tests, the benchmark and smoke checks.

It speaks the same codec but none of the server code, so a test driving the server with
it checks the bytes on the wire. Server-initiated ASR/RAR are recorded and answered
(configurable Result-Code) like a PGW would.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
from typing import Any

from agents.diameter import constants as C
from agents.diameter.codec import Message, decode_message, group



def mscc_avps(msccs: list[dict[str, Any]]) -> list[Any]:
    """Multiple-Services-Credit-Control AVPs from compact dicts:
    ``{"rg": 10, "si": 7, "rsu": {"CC-Total-Octets": n}, "usu": {...}}``."""
    avps = []
    for item in msccs:
        members: list[Any] = []
        if "rsu" in item:
            members.append(group("Requested-Service-Unit", *item["rsu"].items()))
        if "usu" in item:
            members.append(group("Used-Service-Unit", *item["usu"].items()))
        if "rg" in item:
            members.append(("Rating-Group", item["rg"]))
        if "si" in item:
            members.append(("Service-Identifier", item["si"]))
        avps.append(group("Multiple-Services-Credit-Control", *members))
    return avps

class GyClient:
    def __init__(self, origin_host: str = "pgw.test", origin_realm: str = "test") -> None:
        self.origin_host = origin_host
        self.origin_realm = origin_realm
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.pending: dict[int, asyncio.Future[Message]] = {}
        self.received_requests: list[Message] = []
        self.request_result_code = C.DIAMETER_SUCCESS
        self.closed = asyncio.Event()
        self._ids = itertools.count(0x100)
        self._reader_task: asyncio.Task | None = None
        self.cea: Message | None = None
        self.request_event = asyncio.Event()

    async def connect(self, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None,
                      cer: bool = True, server_hostname: str | None = None) -> Message | None:
        self.reader, self.writer = await asyncio.open_connection(
            host, port, ssl=ssl_context, server_hostname=server_hostname if ssl_context else None)
        self._reader_task = asyncio.get_running_loop().create_task(self._read())
        if cer:
            msg = Message(C.CMD_CAPABILITIES_EXCHANGE, 0, C.FLAG_REQUEST)
            msg.add("Origin-Host", self.origin_host).add("Origin-Realm", self.origin_realm)
            msg.add("Host-IP-Address", "127.0.0.1").add("Vendor-Id", 10415).add("Product-Name", "gy-test-client")
            msg.add("Auth-Application-Id", 4)
            self.cea = await self.request(msg)
            return self.cea
        return None

    def next_id(self) -> int:
        return next(self._ids)

    async def request(self, msg: Message, timeout: float = 10.0, *, keep_ids: bool = False) -> Message:
        if not keep_ids:
            n = self.next_id()
            msg.hop_by_hop = n
            msg.end_to_end = n
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self.pending[msg.hop_by_hop] = fut
        self.send_raw(msg.encode())
        return await asyncio.wait_for(fut, timeout)

    def send_raw(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)

    def ccr(self, session_id: str, request_type: int, number: int, *, msccs: list[dict[str, Any]] | None = None,
            context: str = "32251@3gpp.org", subscriber: str = "1001", subscriber_type: int = C.SUB_E164,
            requested_action: int | None = None, extra: list | None = None) -> Message:
        msg = Message(C.CMD_CREDIT_CONTROL, C.APP_CREDIT_CONTROL, C.FLAG_REQUEST | C.FLAG_PROXIABLE)
        msg.add("Session-Id", session_id).add("Origin-Host", self.origin_host).add("Origin-Realm", self.origin_realm)
        msg.add("Destination-Realm", "chargeway.org").add("Auth-Application-Id", 4)
        msg.add("Service-Context-Id", context).add("CC-Request-Type", request_type).add("CC-Request-Number", number)
        if subscriber:
            msg.avps.append(group("Subscription-Id", ("Subscription-Id-Type", subscriber_type),
                                  ("Subscription-Id-Data", subscriber)))
        if requested_action is not None:
            msg.add("Requested-Action", requested_action)
        if request_type == C.CC_TERMINATION:
            msg.add("Termination-Cause", C.TERMINATION_DIAMETER_LOGOUT)
        if msccs:
            msg.add("Multiple-Services-Indicator", 1)
        msg.avps.extend(mscc_avps(msccs or []))
        msg.avps.extend(extra or [])
        return msg

    async def _read(self) -> None:
        assert self.reader is not None
        try:
            while True:
                head = await self.reader.readexactly(4)
                length = int.from_bytes(head[1:4], "big")
                body = await self.reader.readexactly(length - 4)
                msg = decode_message(head + body)
                if msg.is_request:
                    self._answer_server_request(msg)
                    continue
                fut = self.pending.pop(msg.hop_by_hop, None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self.closed.set()
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection closed"))

    def _answer_server_request(self, msg: Message) -> None:
        self.received_requests.append(msg)
        self.request_event.set()
        ans = msg.answer()
        if msg.find("Session-Id") is not None:
            ans.avps.append(msg.find("Session-Id"))
        code = C.DIAMETER_SUCCESS if msg.command_code in (C.CMD_DEVICE_WATCHDOG, C.CMD_DISCONNECT_PEER) \
            else self.request_result_code
        ans.add("Result-Code", code).add("Origin-Host", self.origin_host).add("Origin-Realm", self.origin_realm)
        self.send_raw(ans.encode())

    async def wait_request(self, command: int, timeout: float = 5.0) -> Message:
        async def find() -> Message:
            while True:
                for msg in self.received_requests:
                    if msg.command_code == command:
                        return msg
                self.request_event.clear()
                await self.request_event.wait()
        return await asyncio.wait_for(find(), timeout)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError, ssl.SSLError):
                pass
        if self._reader_task is not None:
            self._reader_task.cancel()
