"""Listeners on port 0 in front of a recording session manager.

The fake stands in for ``engine.sessions.SessionManager`` at the contract
boundary (docs/contracts.md §3) so these tests check what this package owns:
bytes on the wire, reply shapes, error strings, isolation between clients and
the BiRPC callbacks. The real engine is exercised in tests/integration/api/.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

import pytest

from agents.jsonrpc.service import ApiService, start
from engine.errors import mandatory_missing
from engine.reply import Reply
from engine.runtime import AgentContext


class RecordingSessions:
    """Answers like the engine would for a 1001 account with 60 s of credit."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.links: list[Any] = []
        self.initiated_links: list[Any] = []
        self.slow = asyncio.Event()
        self.completed: list[str] = []

    def register_link(self, link: Any) -> None:
        self.links.append(link)

    def unregister_link(self, link: Any) -> None:
        self.links.remove(link)

    def _record(self, name: str, fields: Mapping[str, Any], opts: Mapping[str, Any] | None) -> None:
        if not fields.get("Account"):
            raise mandatory_missing("Account")
        self.calls.append((name, dict(fields), dict(opts or {})))

    async def authorize(self, fields, opts=None) -> Reply:
        self._record("authorize", fields, opts)
        if fields.get("Account") == "broke":
            return Reply(max_usage=0, reason="INSUFFICIENT_CREDIT")
        if fields.get("Account") == "slow":
            await self.slow.wait()
            self.completed.append("slow")
        return Reply(max_usage=60_000_000_000, reason="INSUFFICIENT_CREDIT")

    async def initiate(self, fields, opts=None, link=None) -> Reply:
        self._record("initiate", fields, opts)
        self.initiated_links.append(link)
        return Reply(max_usage=30_000_000_000)

    async def update(self, fields, opts=None) -> Reply:
        self._record("update", fields, opts)
        return Reply(max_usage=30_000_000_000)

    async def terminate(self, fields, opts=None) -> Reply:
        self._record("terminate", fields, opts)
        return Reply()

    async def process_message(self, fields, opts=None, *, debit=True) -> Reply:
        self._record("message", fields, opts)
        return Reply(max_usage=1, cost=Decimal("0.01"))

    async def process_cdr(self, fields, opts=None) -> Reply:
        self._record("cdr", fields, opts)
        return Reply()

    def active_sessions(self, filters=None) -> list[dict]:
        return []

    async def force_disconnect(self, filters, reason="FORCED_DISCONNECT") -> int:
        return 0


@pytest.fixture
def sessions() -> RecordingSessions:
    return RecordingSessions()


def make_ctx(sessions: Any, tmp_path: Path) -> AgentContext:
    return AgentContext(sessions=sessions, accounts=None, rater=lambda: None, storage=None,
                        config={}, root_dir=tmp_path, data_dir=tmp_path, templates_dir=tmp_path)


@pytest.fixture
async def api(sessions: RecordingSessions, tmp_path: Path):
    service: ApiService = await start(make_ctx(sessions, tmp_path), {
        "tcp": "127.0.0.1:0", "http": "127.0.0.1:0", "birpc": "127.0.0.1:0",
        "max_message_bytes": 65536, "callback_timeout": "500ms"})
    yield service
    await service.stop()


async def raw_exchange(port: int, payload: bytes, *, replies: int = 1, timeout: float = 3.0) -> list[bytes]:
    """Send raw bytes, read ``replies`` newline-terminated answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    out = []
    try:
        for _ in range(replies):
            out.append(await asyncio.wait_for(reader.readline(), timeout))
    finally:
        writer.close()
    return out
