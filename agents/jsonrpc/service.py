"""Entry point the composition root calls for the ``api:`` config section.

```yaml
api:
  enabled: true
  tcp: 127.0.0.1:2012        # empty string disables a listener
  http: 127.0.0.1:2080
  birpc: 127.0.0.1:2014
  token: ""                  # optional shared secret, see below
  max_message_bytes: 1048576
  birpc_client_protocol: "2.0"   # "1.0" = OpenSIPS-style SessionSv1.DisconnectSession callbacks
  callback_timeout: 5s           # how long the engine waits for a BiRPC client's answer
```

API token (when set): HTTP clients send ``Authorization: Bearer <token>``;
TCP/BiRPC clients either call ``CoreSv1.Auth {"Token": "<token>"}`` first or
put ``"*token": "<token>"`` in the ``APIOpts`` of any request. Either way the
whole connection is authenticated from then on. Without a token every
request is refused with ``UNAUTHORIZED: ...``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.jsonrpc.codec import DEFAULT_MAX_MESSAGE_BYTES
from agents.jsonrpc.dispatcher import Dispatcher
from agents.jsonrpc.methods.apier import ApierApi
from agents.jsonrpc.methods.cdrs import CdrsApi
from agents.jsonrpc.methods.core import CoreApi
from agents.jsonrpc.methods.sessions import SessionsApi
from agents.jsonrpc.methods.smgeneric import SMGenericApi
from agents.jsonrpc.server import ApiServer, ListenConfig, parse_address
from engine.runtime import AgentContext
from engine.units import SECOND, parse_duration

_KNOWN_KEYS = frozenset({"enabled", "tcp", "http", "birpc", "token", "max_message_bytes",
                         "birpc_client_protocol", "callback_timeout"})


class ApiConfigError(ValueError):
    """A wrong ``api:`` setting, named so start-up fails with a clear message."""


def listen_config(section: dict[str, Any]) -> ListenConfig:
    unknown = sorted(set(section) - _KNOWN_KEYS)
    if unknown:
        raise ApiConfigError(f"api: unknown key(s) {', '.join(unknown)}")
    try:
        max_bytes = int(section.get("max_message_bytes") or DEFAULT_MAX_MESSAGE_BYTES)
        timeout_ns = parse_duration(section.get("callback_timeout") or "5s")
        return ListenConfig(
            tcp=parse_address(section.get("tcp", "127.0.0.1:2012")),
            http=parse_address(section.get("http", "127.0.0.1:2080")),
            birpc=parse_address(section.get("birpc", "127.0.0.1:2014")),
            max_message_bytes=max_bytes,
            client_protocol=str(section.get("birpc_client_protocol") or "2.0"),
            callback_timeout=timeout_ns / SECOND,
        )
    except (ValueError, TypeError) as exc:
        raise ApiConfigError(f"api: {exc}") from None


@dataclass
class ApiService:
    """What ``start`` returns: the bound ports (useful with port 0) and ``stop``."""

    server: ApiServer
    dispatcher: Dispatcher

    @property
    def tcp_port(self) -> int | None:
        return self.server.tcp_port

    @property
    def http_port(self) -> int | None:
        return self.server.http_port

    @property
    def birpc_port(self) -> int | None:
        return self.server.birpc_port

    async def stop(self) -> None:
        await self.server.stop()


def build_dispatcher(ctx: AgentContext, token: str | None = None) -> Dispatcher:
    """All CGRateS services wired to the engine objects in ``ctx``."""
    from engine.cdrs.service import CdrService

    general = ctx.config.get("general") or {}
    dispatcher = Dispatcher(token=token)
    sessions = ctx.sessions
    cdr_reader = ctx.extras.get("cdrs") or getattr(sessions, "cdrs", None) or CdrService(ctx.storage)
    dispatcher.register_many(SessionsApi(sessions).handlers())
    dispatcher.register_many(SMGenericApi(sessions).handlers())
    dispatcher.register_many(ApierApi(
        ctx.accounts, ctx.rater, ctx.extras.get("load_tariffplan"),
        default_tenant=str(general.get("default_tenant", "cgrates.org")),
        default_category=str(general.get("default_category", "call")),
    ).handlers())
    dispatcher.register_many(CdrsApi(sessions, cdr_reader).handlers())
    dispatcher.register_many(CoreApi(
        (lambda: len(sessions.active_sessions())) if sessions is not None else None,
        loop_wait=ctx.extras.get("loop_wait")).handlers())
    return dispatcher


async def start(ctx: AgentContext, section: dict) -> ApiService:
    section = section or {}
    config = listen_config(section)
    token = str(section.get("token") or "") or None
    dispatcher = build_dispatcher(ctx, token)
    server = ApiServer(dispatcher, config, sessions=ctx.sessions)
    await server.start()
    return ApiService(server, dispatcher)
