"""A small asyncio JSON-RPC client for the CGRateS wire format.

Used by ``chargeway console``, the benchmark and the integration tests. On a
BiRPC connection it also serves the engine's calls (``AgentV1.*``) with the
handlers given, so it can play an agent such as OpenSIPS.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, Awaitable, Callable

from agents.jsonrpc.codec import (
    BadValue,
    JsonStreamDecoder,
    Request,
    Response,
    classify,
    encode_request,
    encode_response,
)

CallbackHandler = Callable[[Any], Awaitable[Any]]


class RpcCallError(Exception):
    """The server answered with an error string (``str(exc)`` is that string)."""


class JsonRpcClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 callbacks: dict[str, CallbackHandler] | None = None) -> None:
        self.reader = reader
        self.writer = writer
        self.callbacks = dict(callbacks or {})
        self.received_calls: list[Request] = []
        self.call_event = asyncio.Event()
        self._ids = itertools.count(1)
        self._pending: dict[Any, asyncio.Future[Any]] = {}
        self._decoder = JsonStreamDecoder(64 * 1024 * 1024)
        self._reader_task = asyncio.get_running_loop().create_task(self._read_loop())

    @classmethod
    async def connect(cls, host: str, port: int, callbacks: dict[str, CallbackHandler] | None = None,
                      timeout: float = 5.0) -> "JsonRpcClient":
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        return cls(reader, writer, callbacks)

    async def call(self, method: str, param: Any = None, timeout: float = 30.0) -> Any:
        req_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        self.writer.write(encode_request(method, {} if param is None else param, req_id))
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._pending.pop(req_id, None)

    async def wait_call(self, method: str, timeout: float) -> Request:
        """Wait until the server has called ``method`` on us; return that request."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for req in self.received_calls:
                if req.method == method:
                    return req
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no {method} call within {timeout}s")
            self.call_event.clear()
            try:
                await asyncio.wait_for(self.call_event.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                for value in self._decoder.feed(data):
                    msg = classify(value)
                    if isinstance(msg, Response):
                        fut = self._pending.get(msg.id)
                        if fut is not None and not fut.done():
                            if msg.error:
                                fut.set_exception(RpcCallError(msg.error))
                            else:
                                fut.set_result(msg.result)
                    elif isinstance(msg, Request):
                        self.received_calls.append(msg)
                        self.call_event.set()
                        asyncio.get_running_loop().create_task(self._answer(msg))
                    elif isinstance(msg, BadValue):
                        break
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception as exc:  # protocol error from the server side: fail every waiter
            self._fail(exc)
            return
        self._fail(ConnectionError("connection closed by server"))

    def _fail(self, exc: Exception) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(exc)

    async def _answer(self, req: Request) -> None:
        handler = self.callbacks.get(req.method)
        if handler is None:
            result, error = None, "NOT_IMPLEMENTED"
        else:
            param = req.params[0] if isinstance(req.params, list) and req.params else req.params
            try:
                result, error = await handler(param), None
            except Exception as exc:
                result, error = None, str(exc)
        if req.id is not None and not self.writer.is_closing():
            self.writer.write(encode_response(req.id, result, error))

    async def close(self) -> None:
        self._reader_task.cancel()
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass
