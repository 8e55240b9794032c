"""Dynamic Authorization client (RFC 5176): Disconnect-Request and CoA-Request to a NAS.

One UDP socket for all NASes. A request is retransmitted unchanged (same
Identifier and authenticator, as RFC 5176 section 2.3 expects) with an
exponential back-off until an ACK/NAK with a valid Response Authenticator
arrives or the attempts run out.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass

from agents.radius import codec

log = logging.getLogger("chargeway.radius.dynauth")

ERROR_CAUSE = 101          # RFC 5176; radcli reuses 101 as Sip-Method, so read it by number

ERROR_CAUSE_NAMES = {
    201: "Residual-Context-Removed", 202: "Invalid-EAP-Packet", 401: "Unsupported-Attribute",
    402: "Missing-Attribute", 403: "NAS-Identification-Mismatch", 404: "Invalid-Request",
    405: "Unsupported-Service", 406: "Unsupported-Extension", 407: "Invalid-Attribute-Value",
    501: "Administratively-Prohibited", 502: "Request-Not-Routable", 503: "Session-Context-Not-Found",
    504: "Session-Context-Not-Removable", 505: "Other-Proxy-Processing-Error", 506: "Resources-Unavailable",
    507: "Request-Initiated", 508: "Multiple-Session-Selection-Unsupported",
}


class DynAuthError(Exception):
    """The NAS refused (NAK) or never answered; ``str`` says which and why."""

    def __init__(self, message: str, *, nak: bool = False, error_cause: int | None = None) -> None:
        super().__init__(message)
        self.nak = nak
        self.error_cause = error_cause


@dataclass(frozen=True, slots=True)
class DynAuthResult:
    code: int                    # DISCONNECT_ACK / COA_ACK
    attempts: int


_ACKS = {codec.DISCONNECT_REQUEST: (codec.DISCONNECT_ACK, codec.DISCONNECT_NAK),
         codec.COA_REQUEST: (codec.COA_ACK, codec.COA_NAK)}


class DynAuthClient:
    """Send Disconnect/CoA requests and await their answers."""

    def __init__(self, *, attempts: int = 3, timeout: float = 1.0, backoff: float = 2.0) -> None:
        self.attempts = max(1, attempts)
        self.timeout = timeout
        self.backoff = backoff
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # (host, port, identifier) -> (future, request authenticator, secret)
        self._pending: dict[tuple[str, int, int], tuple[asyncio.Future, bytes, bytes]] = {}
        self._next_id: dict[tuple[str, int], int] = {}

    async def start(self, bind_host: str = "0.0.0.0") -> None:
        self._loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind((bind_host, 0))
        sock.setblocking(False)
        self._sock = sock
        self._loop.add_reader(sock.fileno(), self._readable)

    async def stop(self) -> None:
        if self._sock is not None and self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        for future, _, _ in self._pending.values():
            if not future.done():
                future.set_exception(DynAuthError("dynamic authorization client stopped"))
        self._pending.clear()

    def _identifier(self, dest: tuple[str, int]) -> int:
        """Next Identifier towards ``dest`` not currently outstanding."""
        start = self._next_id.get(dest, 0)
        for step in range(256):
            ident = (start + step) & 0xFF
            if (dest[0], dest[1], ident) not in self._pending:
                self._next_id[dest] = (ident + 1) & 0xFF
                return ident
        raise DynAuthError(f"256 requests already outstanding towards {dest[0]}:{dest[1]}")

    async def send(self, code: int, dest: tuple[str, int], secret: bytes,
                   attrs: list[tuple[codec.AttrKey, bytes]]) -> DynAuthResult:
        """Send ``code`` (Disconnect-Request or CoA-Request); return on ACK, raise on NAK/timeout."""
        if self._sock is None or self._loop is None:
            raise DynAuthError("dynamic authorization client not started")
        ack, nak = _ACKS[code]
        ident = self._identifier(dest)
        data = codec.encode_request(code, ident, attrs, secret)
        key = (dest[0], dest[1], ident)
        future: asyncio.Future = self._loop.create_future()
        self._pending[key] = (future, data[4:20], secret)
        name = codec.CODE_NAMES[code]
        try:
            wait = self.timeout
            for attempt in range(1, self.attempts + 1):
                try:
                    self._sock.sendto(data, dest)
                except OSError as err:
                    log.warning("%s to %s:%d: send failed: %s", name, dest[0], dest[1], err)
                try:
                    reply: codec.RadiusPacket = await asyncio.wait_for(asyncio.shield(future), wait)
                except asyncio.TimeoutError:
                    log.info("%s id %d to %s:%d: no answer after %.1fs (attempt %d/%d)",
                             name, ident, dest[0], dest[1], wait, attempt, self.attempts)
                    wait *= self.backoff
                    continue
                if reply.code == ack:
                    return DynAuthResult(reply.code, attempt)
                cause = reply.get_int(ERROR_CAUSE)
                cause_text = f"{cause} {ERROR_CAUSE_NAMES.get(cause, '')}".strip() if cause else "no Error-Cause"
                raise DynAuthError(f"{name} refused by {dest[0]}:{dest[1]}: {reply.code_name} ({cause_text})",
                                   nak=True, error_cause=cause)
            raise DynAuthError(f"{name} to {dest[0]}:{dest[1]}: no answer after {self.attempts} attempts")
        finally:
            self._pending.pop(key, None)
            if not future.done():
                future.cancel()

    def _readable(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                data, addr = sock.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue            # ICMP port unreachable from a NAS that is down: the timer handles it
            try:
                reply = codec.parse(data)
            except codec.MalformedPacket as err:
                log.warning("dynamic authorization reply from %s malformed: %s", addr, err)
                continue
            entry = self._pending.get((addr[0], addr[1], reply.identifier))
            if entry is None:
                log.debug("unexpected dynamic authorization reply id %d from %s", reply.identifier, addr)
                continue
            future, request_auth, secret = entry
            if not codec.response_authenticator_ok(reply, request_auth, secret):
                log.warning("dynamic authorization reply from %s: wrong Response Authenticator, ignored", addr)
                continue
            if not future.done():
                future.set_result(reply)
