"""HTTP POST /jsonrpc (CGRateS port 2080): one JSON-RPC object per request body.

The body limit is the same ``max_message_bytes`` as on TCP (aiohttp answers
413 above it). The optional API token is an ``Authorization: Bearer`` header.
HTTP status is 200 for every JSON-RPC answer, errors included, as CGRateS does;
only transport problems (bad token, unparseable body) change the status.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from agents.jsonrpc.codec import dumps
from agents.jsonrpc.dispatcher import UNAUTHORIZED, CallContext, Dispatcher

JSON = "application/json"


def _answer(id_: Any, result: Any, error: str | None, status: int = 200) -> web.Response:
    body = dumps({"id": id_, "result": None if error else result, "error": error or None})
    return web.Response(body=body, status=status, content_type=JSON)


def build_app(dispatcher: Dispatcher, max_message_bytes: int) -> web.Application:
    """The aiohttp application; listeners and tests share it."""

    async def jsonrpc(request: web.Request) -> web.Response:
        ctx = CallContext(peer=str(request.remote or ""), authenticated=dispatcher.token is None)
        if dispatcher.token is not None:
            header = request.headers.get("Authorization", "")
            if header == f"Bearer {dispatcher.token}":
                ctx.authenticated = True
        body = await request.read()
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return _answer(None, None, f"invalid JSON: {exc}", status=400)
        if not isinstance(message, dict) or not isinstance(message.get("method"), str):
            return _answer(None, None, "invalid JSON-RPC request: need an object with a method", 400)
        if not ctx.authenticated:
            args = message.get("params")
            opts = args[0].get("APIOpts") if isinstance(args, list) and args and isinstance(args[0], dict) else None
            if not dispatcher.check_token(opts):
                return _answer(message.get("id"), None, f"{UNAUTHORIZED}: API token required", 401)
            ctx.authenticated = True
        result, error = await dispatcher.call(message["method"], message.get("params"), ctx)
        return _answer(message.get("id"), result, error)

    app = web.Application(client_max_size=max_message_bytes)
    app.router.add_post("/jsonrpc", jsonrpc)
    return app
