"""asyncio adapter: listeners, one ``PeerConnection`` per transport, timers, ASR/RAR out.

Thin on purpose: bytes go to the sans-IO peer, application requests to the
``CreditControlServer``, answers back out. One timer per connection (the peer's next
deadline) and one supervision timer for Tcc. TCP and TLS share the code; SCTP is used
when the kernel offers it (one-to-one SCTP sockets behave like TCP streams here).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Any

from agents.diameter import constants as C
from agents.diameter.codec import Message
from agents.diameter.credit_control import CreditControlServer, PeerInfo
from agents.diameter.peer import (AnswerReceived, CapabilitiesExchanged, ConnectionClosed, PeerConfig,
                                  PeerConnection, RequestReceived, RequestTimedOut)

log = logging.getLogger("chargeway.diameter")

# Requests one connection may have in progress; beyond, DIAMETER_TOO_BUSY (3004) so a
# flooding peer cannot grow our memory without bound (its retransmissions go elsewhere).
MAX_IN_FLIGHT = 4096


class PeerUnavailable(RuntimeError):
    """No open connection to the Diameter peer a server-initiated request is for."""


class _Connection(asyncio.Protocol):
    """One accepted transport."""

    def __init__(self, server: "DiameterServer") -> None:
        self.server = server
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.peer: PeerConnection | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.waiters: dict[int, asyncio.Future[Message]] = {}
        self.tasks: set[asyncio.Task] = set()
        self.remote = ""
        self._flush_soon: asyncio.Handle | None = None
        # Who the peer is (its CER identity and address), built once per connection.
        self.info: PeerInfo | None = None

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        addr = transport.get_extra_info("peername")
        self.remote = f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr or "")
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.type == socket.SOCK_STREAM and sock.proto in (0, socket.IPPROTO_TCP):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.peer = PeerConnection(self.server.peer_config, self.loop.time(), remote=self.remote)
        self.server.connections.add(self)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.peer is None:
            return
        events = self.peer.receive_data(data, self.loop.time())
        self._flush()
        for event in events:
            self._on_event(event)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self.peer is not None and self.peer.peer_host and self.server.peers.get(self.peer.peer_host) is self:
            del self.server.peers[self.peer.peer_host]
        if self.timer is not None:
            self.timer.cancel()
        for fut in self.waiters.values():
            if not fut.done():
                fut.set_exception(PeerUnavailable("connection lost"))
        self.waiters.clear()
        for task in self.tasks:
            task.cancel()

    # -- helpers
    def _flush_later(self) -> None:
        """Answers finishing in the same loop iteration leave in one write (one syscall)."""
        if self._flush_soon is None:
            self._flush_soon = self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_soon = None
        if self.peer is None or self.transport is None:
            return
        out = self.peer.data_to_send()
        if out and not self.transport.is_closing():
            self.transport.write(out)
        if self.peer.closed and not self.transport.is_closing():
            self.transport.close()

    def _arm(self) -> None:
        """One timer at the peer's next deadline. Every read moves the watchdog deadline
        later, so a timer already due no later than the deadline is kept rather than
        replaced (a cancel and a new timer per read): firing early is harmless, the peer
        acts only on what is due and ``_on_timer`` arms again for the rest."""
        timer = self.timer
        peer = self.peer
        deadline = None if peer is None or peer.closed else peer.next_deadline()
        if timer is not None:
            if deadline is not None and timer.when() <= deadline:
                return
            timer.cancel()
            self.timer = None
        if deadline is not None:
            self.timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        if self.peer is None:
            return
        events = self.peer.handle_timer(self.loop.time())
        self._flush()
        for event in events:
            self._on_event(event)
        self._arm()

    def _on_event(self, event: Any) -> None:
        if isinstance(event, RequestReceived):
            if len(self.tasks) >= self.server.max_in_flight and self.peer is not None:
                busy = self.peer.answer_for(event.message, C.DIAMETER_TOO_BUSY)
                busy.flags |= C.FLAG_ERROR
                self.peer.send_answer(busy)
                self._flush()
                return
            task = self.loop.create_task(self._answer(event.message))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif isinstance(event, AnswerReceived):
            fut = self.waiters.pop(event.request.hop_by_hop, None)
            if fut is not None and not fut.done():
                fut.set_result(event.message)
        elif isinstance(event, RequestTimedOut):
            fut = self.waiters.pop(event.request.hop_by_hop, None)
            if fut is not None and not fut.done():
                fut.set_exception(asyncio.TimeoutError(f"no answer to {event.request.name}"))
        elif isinstance(event, CapabilitiesExchanged):
            old = self.server.peers.get(event.origin_host)
            if old is not None and old is not self:
                log.info("diameter: %s reconnected; the newer connection is used", event.origin_host)
            self.server.peers[event.origin_host] = self
            self.info = PeerInfo(event.origin_host, event.origin_realm, self.remote)
        elif isinstance(event, ConnectionClosed):
            self._flush()

    async def _answer(self, msg: Message) -> None:
        peer = self.peer
        assert peer is not None
        info = self.info if self.info is not None else PeerInfo(peer.peer_host, peer.peer_realm, self.remote)
        try:
            wire = await self.server.cc.handle_wire(msg, info)
        except asyncio.CancelledError:
            raise
        except Exception:   # a bug must still get the client an answer, never a silent drop
            log.exception("diameter: answering %s from %s failed", msg.get("Session-Id"), peer.peer_host)
            wire = peer.answer_for(msg, C.DIAMETER_UNABLE_TO_COMPLY).encode()
        if not peer.closed:
            peer.send_encoded(wire)
            self._flush_later()

    def send_request(self, msg: Message) -> "asyncio.Future[Message]":
        assert self.peer is not None
        fut: asyncio.Future[Message] = self.loop.create_future()
        sent = self.peer.send_request(msg, self.loop.time())
        self.waiters[sent.hop_by_hop] = fut
        self._flush()
        self._arm()
        return fut


class DiameterServer:
    """Listeners plus the peers connected to them."""

    def __init__(self, peer_config: PeerConfig, cc: CreditControlServer,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.peer_config = peer_config
        self.cc = cc
        self.loop = loop or asyncio.get_running_loop()
        self.connections: set[_Connection] = set()
        self.peers: dict[str, _Connection] = {}
        self.servers: list[asyncio.AbstractServer] = []
        self.addresses: list[tuple[str, int, str]] = []
        self._supervisor: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self.max_in_flight = MAX_IN_FLIGHT
        cc.on_earlier_deadline = self.poke

    async def listen(self, host: str, port: int, transport: str = "tcp",
                     ssl_context: ssl.SSLContext | None = None) -> tuple[str, int]:
        """Start one listener; returns the bound address (port 0 picks a free one)."""
        factory = lambda: _Connection(self)  # noqa: E731
        if transport == "sctp":
            sock = _sctp_socket(host, port)
            server = await self.loop.create_server(factory, sock=sock)
        elif transport in ("tcp", "tls"):
            if transport == "tls" and ssl_context is None:
                raise ValueError("diameter: a tls listener needs tls.cert and tls.key")
            server = await self.loop.create_server(factory, host, port, reuse_address=True,
                                                   ssl=ssl_context if transport == "tls" else None)
        else:
            raise ValueError(f"diameter: unknown transport {transport!r} (tcp, tls or sctp)")
        self.servers.append(server)
        bound = server.sockets[0].getsockname()
        self.addresses.append((bound[0], bound[1], transport))
        log.info("diameter: listening on %s:%d/%s as %s/%s", bound[0], bound[1], transport,
                 self.peer_config.origin_host, self.peer_config.origin_realm)
        return bound[0], bound[1]

    def start_supervision(self) -> None:
        if self._supervisor is None:
            self._supervisor = self.loop.create_task(self._supervise())

    def poke(self) -> None:
        """A session changed: re-evaluate the supervision deadline."""
        self._wake.set()

    async def _supervise(self) -> None:
        while True:
            deadline = self.cc.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - self.loop.time())
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
                continue
            except asyncio.TimeoutError:
                pass
            try:
                await self.cc.supervise(self.loop.time())
            except Exception:   # supervision must keep running
                log.exception("diameter: session supervision failed")

    async def request(self, peer_host: str, msg: Message, timeout: float | None = None) -> Message:
        """Send a server-initiated request (ASR, RAR) to ``peer_host`` and await its answer."""
        conn = self.peers.get(peer_host)
        if conn is None or conn.peer is None or conn.peer.closed:
            raise PeerUnavailable(f"diameter peer {peer_host!r} is not connected")
        fut = conn.send_request(msg)
        return await asyncio.wait_for(fut, timeout or self.peer_config.request_timeout + 1)

    def new_request(self, command: int) -> Message:
        msg = Message(command, C.APP_CREDIT_CONTROL, C.FLAG_REQUEST | C.FLAG_PROXIABLE)
        msg.add("Origin-Host", self.peer_config.origin_host).add("Origin-Realm", self.peer_config.origin_realm)
        return msg

    async def close(self, grace: float = 2.0) -> None:
        """DPR to every open peer, wait briefly for DPAs, then stop listening."""
        for server in self.servers:
            server.close()
        for conn in list(self.connections):
            if conn.peer is not None:
                conn.peer.disconnect(self.loop.time())
                conn._flush()
                conn._arm()
        deadline = self.loop.time() + grace
        while self.connections and self.loop.time() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()
        if self._supervisor is not None:
            self._supervisor.cancel()
            try:
                await self._supervisor
            except asyncio.CancelledError:
                pass
            self._supervisor = None
        for server in self.servers:
            await server.wait_closed()
        self.servers.clear()


def sctp_available() -> bool:
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, getattr(socket, "IPPROTO_SCTP", 132))
    except OSError:
        return False
    sock.close()
    return True


class SctpUnavailable(OSError):
    """The kernel has no SCTP: the listener cannot start (the message says so plainly)."""


def _sctp_socket(host: str, port: int) -> socket.socket:
    proto = getattr(socket, "IPPROTO_SCTP", 132)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM, proto)
    except OSError as err:
        raise SctpUnavailable(f"diameter: SCTP listener {host}:{port} not started: this kernel has no SCTP "
                              f"support ({err.strerror or err}); use transport tcp or tls") from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock
