"""asyncio adapter: one evapi TCP client connection to one Kamailio, with reconnects.

Thin on purpose: bytes go through ``EvapiCodec``; decoded frames go to a
handler callback; everything charging-related lives elsewhere.

Latency detail that matters (research/perf-notes.md): Kamailio writes evapi
messages with Nagle on, so a peer that delays its ACKs adds 20-40 ms to every
call setup. Linux clears ``TCP_QUICKACK`` after it fires, so the client
re-arms it after every read, i.e. before the next one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Protocol

from agents.kamailio.codec import BadFrame, EvapiCodec, Frame

log = logging.getLogger("chargeway.kamailio")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: ``initial`` doubling up to ``maximum`` (seconds)."""

    initial: float = 0.5
    maximum: float = 10.0

    def delays(self):
        delay = self.initial
        while True:
            yield delay
            delay = min(delay * 2, self.maximum)


class ConnectionHandler(Protocol):
    """What the client reports to (the agent)."""

    def connected(self, client: "EvapiClient") -> None: ...
    def disconnected(self, client: "EvapiClient", lost_at: float) -> None: ...
    def frame(self, client: "EvapiClient", frame: Frame) -> None: ...


class NotConnected(ConnectionError):
    """Write attempted while Kamailio is unreachable (the engine retries disconnects)."""


def parse_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"evapi address must be host:port, got {address!r}")
    return host.strip("[]"), int(port)


def _own_socket(transport_sock: Any) -> socket.socket | None:
    """A socket object of our own on a duplicate of the transport's descriptor.

    The quick-ACK flag is re-armed after every read, and uvloop's transport socket
    builds (and detaches) a new ``socket.socket`` for each setsockopt: about 2 us and
    two extra syscalls per read. Options set through the duplicate apply to the same
    TCP socket; the duplicate is closed with the connection."""
    if transport_sock is None:
        return None
    try:
        return socket.socket(transport_sock.family, transport_sock.type, transport_sock.proto,
                             fileno=os.dup(transport_sock.fileno()))
    except (OSError, ValueError):
        return None


class _Protocol(asyncio.Protocol):
    def __init__(self, client: "EvapiClient") -> None:
        self.client = client
        # One codec per TCP connection: a new connection starts on a frame boundary.
        self.codec = EvapiCodec(netstrings=client.netstrings)
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.lost_at = 0.0
        self._sock: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # No isinstance check: uvloop's transports are not asyncio.Transport subclasses.
        self.transport = transport  # type: ignore[assignment]
        self._sock = _own_socket(transport.get_extra_info("socket"))
        if self._sock is not None:
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._quickack()

    def _quickack(self) -> None:
        if self._sock is not None and hasattr(socket, "TCP_QUICKACK"):
            try:
                self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            except OSError:
                self._close_sock()

    def _close_sock(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def data_received(self, data: bytes) -> None:
        self._quickack()
        self.client._received(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost_at = time.time()  # now, not when the reconnect task next runs
        self._close_sock()
        if not self.closed.done():
            self.closed.set_result(exc)


class EvapiClient:
    """Keeps one connection to ``address`` alive until ``stop()``.

    ``alias`` names the Kamailio in logs and is the OriginHost of its calls.
    """

    def __init__(self, address: str, handler: ConnectionHandler, *, netstrings: bool = True,
                 backoff: Backoff = Backoff(), alias: str = "",
                 connect_timeout: float = 5.0) -> None:
        self.address = address
        self.host, self.port = parse_address(address)
        self.alias = alias or address
        self.handler = handler
        self.netstrings = netstrings
        self.backoff = backoff
        self.connect_timeout = connect_timeout
        self._protocol: _Protocol | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.connects = 0
        self.connected_event = asyncio.Event()

    @property
    def is_connected(self) -> bool:
        return self._protocol is not None and self._protocol.transport is not None \
            and not self._protocol.closed.done()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"evapi {self.alias}")

    async def stop(self) -> None:
        self._stopping = True
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def send(self, message: dict[str, Any]) -> None:
        """Write one message now (no await: ordering follows call order)."""
        protocol = self._protocol       # is_connected, inline: every reply goes through here
        if protocol is None or protocol.transport is None or protocol.closed.done():
            raise NotConnected(f"evapi {self.alias} not connected")
        protocol.transport.write(protocol.codec.encode(message))

    def drop(self) -> None:
        """Close the current connection (a reconnect follows)."""
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.abort()

    async def wait_connected(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self.connected_event.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        delays = self.backoff.delays()
        failures = 0
        while not self._stopping:
            try:
                _, protocol = await asyncio.wait_for(
                    loop.create_connection(lambda: _Protocol(self), self.host, self.port),
                    self.connect_timeout)
            except (OSError, asyncio.TimeoutError) as exc:
                failures += 1
                delay = next(delays)
                if failures == 1 or failures % 10 == 0:
                    log.warning("evapi %s: connect failed (%s); retrying in %.1fs", self.alias, exc, delay)
                await asyncio.sleep(delay)
                continue
            delays = self.backoff.delays()
            failures = 0
            self._protocol = protocol
            self.connects += 1
            self.connected_event.set()
            log.info("evapi %s: connected", self.alias)
            self.handler.connected(self)
            exc = await protocol.closed
            lost_at = protocol.lost_at or time.time()
            self.connected_event.clear()
            self._protocol = None
            if self._stopping:
                break
            log.warning("evapi %s: connection lost (%s); reconnecting", self.alias, exc or "closed by peer")
            self.handler.disconnected(self, lost_at)
            await asyncio.sleep(next(delays))

    def _received(self, protocol: _Protocol, data: bytes) -> None:
        codec = protocol.codec
        for item in codec.feed(data):
            if isinstance(item, BadFrame):
                log.error("evapi %s: skipped frame (%s): %r", self.alias, item.reason, item.raw[:200])
                continue
            self.handler.frame(self, item)
        if codec.error is not None:
            log.error("evapi %s: %s; closing the connection to resynchronise", self.alias, codec.error)
            if protocol.transport is not None:
                protocol.transport.abort()
