"""Method name -> async handler, with CGRateS naming rules and error strings.

One dispatcher serves the TCP, HTTP and BiRPC listeners. It owns the
compatibility details a CGRateS client relies on: ``ApierV1.*`` is the old
name of ``APIerSv1.*``; every registered service answers ``<Svc>.Ping`` with
``"Pong"``; an unknown method answers Go net/rpc's ``rpc: can't find method
X``; engine errors go out as their exact CGRateS string; anything unexpected
becomes ``SERVER_ERROR: ...`` for that request only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping

from engine.errors import INVALID_ARGUMENT, SERVER_ERROR, ChargingError

log = logging.getLogger("chargeway.api")

# Old or alternative service names CGRateS still registers.
SERVICE_ALIASES: dict[str, str] = {
    "ApierV1": "APIerSv1",
    "ApierV2": "APIerSv2",
    "APIerV1": "APIerSv1",
    "APIerV2": "APIerSv2",
    "CdrsV1": "CDRsV1",
    "CDRsv1": "CDRsV1",
}

UNAUTHORIZED = "UNAUTHORIZED"


@dataclass(slots=True)
class CallContext:
    """Who is calling: the BiRPC link (for callbacks), the peer address, auth state."""

    peer: str = ""
    link: Any = None
    authenticated: bool = True
    extras: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[dict[str, Any], CallContext], Awaitable[Any]]


class RpcError(Exception):
    """A reply error string that is not an engine ChargingError (protocol-level)."""


def canonical_method(name: str) -> str:
    service, dot, method = name.partition(".")
    if not dot:
        return name
    return f"{SERVICE_ALIASES.get(service, service)}.{method}"


def single_param(params: Any) -> dict[str, Any]:
    """CGRateS sends ``params`` as a one-element array holding the argument object.

    Be liberal: a bare object, an empty array or null mean the same thing.
    Anything else is a type error the client must see.
    """
    if isinstance(params, list):
        if not params:
            return {}
        if len(params) > 1:
            raise ChargingError(INVALID_ARGUMENT, "params must hold exactly one object")
        params = params[0]
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ChargingError(INVALID_ARGUMENT, f"params must be an object, got {type(params).__name__}")
    return params


class Dispatcher:
    """Registry of handlers; ``call`` never raises, it returns (result, error)."""

    def __init__(self, token: str | None = None) -> None:
        self._handlers: dict[str, Handler] = {}
        self._services: set[str] = set()
        self.token = token or None
        self.register("CoreSv1.Auth", self._auth)

    def register(self, name: str, handler: Handler) -> None:
        self._handlers[name] = handler
        self._services.add(name.partition(".")[0])

    def register_many(self, handlers: Mapping[str, Handler]) -> None:
        for name, handler in handlers.items():
            self.register(name, handler)

    @property
    def methods(self) -> list[str]:
        return sorted(self._handlers)

    def has(self, name: str) -> bool:
        name = canonical_method(name)
        return name in self._handlers or self._is_ping(name)

    def _is_ping(self, name: str) -> bool:
        service, _, method = name.partition(".")
        return method == "Ping" and service in self._services

    def check_token(self, opts: Any) -> bool:
        return isinstance(opts, dict) and self.token is not None and opts.get("*token") == self.token

    async def _auth(self, args: dict[str, Any], ctx: CallContext) -> str:
        token = args.get("Token", args.get("token"))
        if self.token is None or token == self.token:
            ctx.authenticated = True
            return "OK"
        raise RpcError(f"{UNAUTHORIZED}: invalid token")

    async def call(self, method: str, params: Any, ctx: CallContext) -> tuple[Any, str | None]:
        """Run one request; the error is the exact string for the reply's ``error`` member."""
        name = canonical_method(method)
        try:
            args = single_param(params)
            if not ctx.authenticated:
                if self.check_token(args.get("APIOpts")):
                    ctx.authenticated = True
                elif name != "CoreSv1.Auth":
                    return None, f"{UNAUTHORIZED}: API token required (CoreSv1.Auth or APIOpts *token)"
            handler = self._handlers.get(name)
            if handler is None:
                if self._is_ping(name):
                    return "Pong", None
                return None, f"rpc: can't find method {method}"
            return await handler(args, ctx), None
        except ChargingError as exc:
            return None, exc.wire()
        except RpcError as exc:
            return None, str(exc)
        except Exception as exc:  # one bad request must never take the listener down
            log.exception("API method %s failed", method)
            return None, f"{SERVER_ERROR}: {exc}"
