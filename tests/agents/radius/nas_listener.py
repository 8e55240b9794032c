"""A tiny NAS for tests: listens for Disconnect/CoA requests and answers ACK or NAK.

Verifies the Request Authenticator with its own secret (a wrong one is
ignored, as a real NAS does) and records every request it accepted.
"""

from __future__ import annotations

import asyncio
import socket

from agents.radius import codec


class TestNas:
    __test__ = False

    def __init__(self, secret: bytes, *, nak_cause: int | None = None, ignore_first: int = 0) -> None:
        self.secret = secret
        self.nak_cause = nak_cause
        self.ignore_first = ignore_first
        self.received: list[codec.RadiusPacket] = []
        self.seen = 0
        self.sock: socket.socket | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.setblocking(False)
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._readable)
        return self.sock.getsockname()[1]

    def stop(self) -> None:
        if self.sock is not None:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None

    def _readable(self) -> None:
        assert self.sock is not None
        data, addr = self.sock.recvfrom(4096)
        pkt = codec.parse(data)
        if not codec.request_authenticator_ok(pkt, self.secret):
            return
        self.seen += 1
        if self.seen <= self.ignore_first:
            return
        self.received.append(pkt)
        ack = {codec.DISCONNECT_REQUEST: codec.DISCONNECT_ACK, codec.COA_REQUEST: codec.COA_ACK}[pkt.code]
        attrs = []
        code = ack
        if self.nak_cause is not None:
            code = ack + 1
            attrs = [(101, self.nak_cause.to_bytes(4, "big"))]
        self.sock.sendto(codec.encode_reply(code, pkt.identifier, pkt.authenticator, attrs, self.secret), addr)
