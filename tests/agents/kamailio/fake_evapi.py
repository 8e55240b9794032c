"""A fake Kamailio evapi server for unit tests: we listen, chargeway connects.

Real Kamailio never emits corrupt frames, so tests that need them (bad length,
bad JSON, unknown events) write raw bytes from here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agents.kamailio.codec import EvapiCodec, Frame


class FakeEvapi:
    def __init__(self, *, netstrings: bool = True) -> None:
        self.netstrings = netstrings
        self.server: asyncio.base_events.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.connections = 0
        self.closed_connections = 0
        self.connected = asyncio.Event()
        self.port = 0

    async def start(self, port: int = 0) -> "FakeEvapi":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port or self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        self.connected.set()
        codec = EvapiCodec(netstrings=self.netstrings)
        try:
            while data := await reader.read(65536):
                for item in codec.feed(data):
                    assert isinstance(item, Frame), item
                    await self.received.put(item.message)
        except ConnectionError:
            pass
        finally:
            # Closed here too, not only by stop(): Python 3.12's Server.wait_closed() waits
            # for every transport the server made, including one chargeway already dropped.
            writer.close()
            self.closed_connections += 1
            if writer in self.writers:
                self.writers.remove(writer)
            if not self.writers:
                self.connected.clear()

    async def wait_connections(self, n: int, timeout: float = 5.0) -> None:
        async def poll() -> None:
            while self.connections < n or not self.writers:
                await asyncio.sleep(0.01)
        await asyncio.wait_for(poll(), timeout)

    def send_raw(self, data: bytes) -> None:
        self.writers[-1].write(data)

    def send(self, message: dict[str, Any]) -> None:
        self.send_raw(EvapiCodec(netstrings=self.netstrings).encode(message))

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.received.get(), timeout)

    async def drop_clients(self) -> None:
        for writer in list(self.writers):
            writer.close()

    async def stop(self) -> None:
        """Close the listener and every connection (a Kamailio going down)."""
        if self.server is not None:
            self.server.close()
            for writer in list(self.writers):
                writer.close()
            await self.server.wait_closed()
            self.server = None
