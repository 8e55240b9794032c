"""The three listeners (TCP 2012, HTTP 2080, BiRPC 2014) around one dispatcher.

Addresses are ``host:port``; port 0 picks a free port (tests) and the bound
ports are exposed afterwards. A listener whose address is empty is not started.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from agents.jsonrpc.codec import DEFAULT_MAX_MESSAGE_BYTES
from agents.jsonrpc.connection import RpcConnection
from agents.jsonrpc.dispatcher import Dispatcher
from agents.jsonrpc.http import build_app
from agents.jsonrpc.link import BiRPCLink

log = logging.getLogger("chargeway.api")

def parse_address(value: Any, default_host: str = "127.0.0.1") -> tuple[str, int] | None:
    """``"127.0.0.1:2012"`` -> (host, port); empty/false -> None (listener off)."""
    if value in (None, "", False):
        return None
    text = str(value).strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = default_host, text
    host = host.strip("[]") or default_host
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"invalid listen address {value!r}: port must be a number") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"invalid listen address {value!r}: port out of range")
    return host, number


@dataclass
class ListenConfig:
    tcp: tuple[str, int] | None = ("127.0.0.1", 2012)
    http: tuple[str, int] | None = ("127.0.0.1", 2080)
    birpc: tuple[str, int] | None = ("127.0.0.1", 2014)
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    client_protocol: str = "2.0"
    callback_timeout: float = 5.0


class ApiServer:
    """Owns the listening sockets and the BiRPC links registered with the engine."""

    def __init__(self, dispatcher: Dispatcher, config: ListenConfig, sessions: Any = None) -> None:
        self.dispatcher = dispatcher
        self.config = config
        self.sessions = sessions
        self._servers: list[asyncio.base_events.Server] = []
        self._runner: web.AppRunner | None = None
        self.connections: set[RpcConnection] = set()
        self.links: dict[RpcConnection, BiRPCLink] = {}
        self.tcp_port: int | None = None
        self.http_port: int | None = None
        self.birpc_port: int | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.config
        try:
            if cfg.tcp is not None:
                server = await loop.create_server(lambda: self._connection(birpc=False), *cfg.tcp,
                                                  reuse_address=True)
                self._servers.append(server)
                self.tcp_port = server.sockets[0].getsockname()[1]
            if cfg.birpc is not None:
                server = await loop.create_server(lambda: self._connection(birpc=True), *cfg.birpc,
                                                  reuse_address=True)
                self._servers.append(server)
                self.birpc_port = server.sockets[0].getsockname()[1]
            if cfg.http is not None:
                self._runner = web.AppRunner(build_app(self.dispatcher, cfg.max_message_bytes),
                                             access_log=None, handle_signals=False)
                await self._runner.setup()
                site = web.TCPSite(self._runner, cfg.http[0], cfg.http[1], reuse_address=True)
                await site.start()
                self.http_port = self._runner.addresses[0][1]
        except BaseException:
            await self.stop()
            raise
        log.info("API listening: tcp=%s http=%s birpc=%s", self.tcp_port, self.http_port, self.birpc_port)

    def _connection(self, *, birpc: bool) -> RpcConnection:
        conn = RpcConnection(self.dispatcher, max_message_bytes=self.config.max_message_bytes,
                             on_open=self._opened if birpc else self._opened_plain,
                             on_close=self._closed)
        return conn

    def _opened_plain(self, conn: RpcConnection) -> None:
        self.connections.add(conn)

    def _opened(self, conn: RpcConnection) -> None:
        self.connections.add(conn)
        link = BiRPCLink(conn, protocol=self.config.client_protocol, timeout=self.config.callback_timeout)
        conn.ctx.link = link
        self.links[conn] = link
        if self.sessions is not None:
            self.sessions.register_link(link)

    def _closed(self, conn: RpcConnection) -> None:
        self.connections.discard(conn)
        link = self.links.pop(conn, None)
        if link is not None and self.sessions is not None:
            self.sessions.unregister_link(link)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            conn.close()
        for server in self._servers:
            try:
                await asyncio.wait_for(server.wait_closed(), 2)
            except (asyncio.TimeoutError, Exception):
                pass
        self._servers.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
