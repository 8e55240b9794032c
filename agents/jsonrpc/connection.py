"""asyncio adapter for one JSON-RPC TCP connection (port 2012 or BiRPC 2014).

Thin: bytes go into the sans-IO decoder, requests go to the dispatcher as
tasks (a slow request does not block the next one on the same socket, as in
CGRateS), replies go back tagged with the request id. On BiRPC the same
connection also carries the engine's calls to the client (``call``), whose
replies are matched to waiting futures by our incrementing integer ids.

Failure isolation: a protocol error or oversized message closes this
connection only; a client that goes away mid-request lets the engine finish
the request (money already moved must be recorded) and the reply is dropped.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from typing import Any, Callable

from agents.jsonrpc.codec import (
    JsonStreamDecoder,
    ProtocolError,
    Request,
    Response,
    classify,
    encode_request,
    encode_response,
)
from agents.jsonrpc.dispatcher import CallContext, Dispatcher

log = logging.getLogger("chargeway.api")

MAX_IN_FLIGHT = 512     # per connection; reading pauses above this (back-pressure)
REPLY_TIMEOUT_ERROR = "REPLY_TIMEOUT"
DISCONNECTED_ERROR = "DISCONNECTED"
REJECT_LINGER_S = 1.0   # after a protocol error: keep discarding input this long, then close


class RemoteError(Exception):
    """The client answered our call with an error string."""


class RpcConnection(asyncio.Protocol):
    """Serves requests; on BiRPC also issues calls to the client."""

    def __init__(self, dispatcher: Dispatcher, *, max_message_bytes: int,
                 on_open: Callable[["RpcConnection"], None] | None = None,
                 on_close: Callable[["RpcConnection"], None] | None = None) -> None:
        self.dispatcher = dispatcher
        self.decoder = JsonStreamDecoder(max_message_bytes)
        self.ctx = CallContext(authenticated=dispatcher.token is None)
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self._on_open = on_open
        self._on_close = on_close
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._paused = False
        self._rejected = False
        self.closed = asyncio.get_running_loop().create_future()

    # -- asyncio.Protocol ------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "")
        self.ctx.peer = self.peer
        if self._on_open is not None:
            self._on_open(self)

    def data_received(self, data: bytes) -> None:
        if self._rejected:
            return  # draining a rejected stream until the close timer fires
        try:
            values = self.decoder.feed(data)
        except ProtocolError as exc:
            log.warning("API client %s: %s; closing", self.peer, exc)
            self._reject(str(exc))
            return
        for value in values:
            msg = classify(value)
            if isinstance(msg, Request):
                task = asyncio.get_running_loop().create_task(self._serve(msg))
                self._tasks.add(task)
                task.add_done_callback(self._task_done)
            elif isinstance(msg, Response):
                self._resolve(msg)
            else:
                self._write(encode_response(None, None, f"invalid JSON-RPC message: {msg.error}"))
        if not self._paused and len(self._tasks) > MAX_IN_FLIGHT and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError(DISCONNECTED_ERROR))
        self._pending.clear()
        if not self.closed.done():
            self.closed.set_result(None)
        if self._on_close is not None:
            self._on_close(self)

    # -- serving ---------------------------------------------------------
    async def _serve(self, req: Request) -> None:
        result, error = await self.dispatcher.call(req.method, req.params, self.ctx)
        if req.id is None:
            return  # notification: no reply
        self._write(encode_response(req.id, result, error))

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._paused and len(self._tasks) <= MAX_IN_FLIGHT // 2 and self.transport is not None:
            self._paused = False
            if not self.transport.is_closing():
                self.transport.resume_reading()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _reject(self, error: str) -> None:
        """Answer once, stop reading requests, close shortly after.

        Closing at once with unread bytes in the kernel buffer would send a RST
        and the client would never see why; half-closing and discarding input
        for a moment lets the error line reach it.
        """
        self._rejected = True
        self._write(encode_response(None, None, error))
        if self.transport is not None and self.transport.can_write_eof():
            self.transport.write_eof()
        asyncio.get_running_loop().call_later(REJECT_LINGER_S, self.close)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    # -- calling the client (BiRPC) -------------------------------------
    async def call(self, method: str, param: Any, timeout: float) -> Any:
        """Call the client; return its result or raise RemoteError/TimeoutError/ConnectionError."""
        if not self.is_open:
            raise ConnectionError(DISCONNECTED_ERROR)
        req_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        self._write(encode_request(method, param, req_id))
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(REPLY_TIMEOUT_ERROR) from None
        finally:
            self._pending.pop(req_id, None)

    def _resolve(self, msg: Response) -> None:
        fut = self._pending.get(msg.id) if isinstance(msg.id, int) else None
        if fut is None or fut.done():
            log.debug("API client %s: reply to unknown id %r", self.peer, msg.id)
            return
        if msg.error:
            fut.set_exception(RemoteError(msg.error))
        else:
            fut.set_result(msg.result)

    async def drain_tasks(self) -> None:
        """Wait for in-flight requests (used on shutdown)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
