"""Test doubles shared by the RADIUS unit tests: a scripted template runner and a UDP client."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from typing import Any

from engine.reply import Reply
from engine.templating.replybuilder import ReplyItem


@dataclass
class FakeOutcome:
    matched: bool = True
    processor_id: str | None = "P"
    call: str | None = None
    engine_reply: Reply | None = None
    reply: list = field(default_factory=list)
    request: dict = field(default_factory=dict)
    vars: dict = field(default_factory=dict)


class ScriptedRunner:
    """Stands in for TemplateRunner: records each call, answers with ``respond(view, vars)``."""

    def __init__(self, respond, delay: float = 0.0) -> None:
        self.respond = respond
        self.delay = delay
        self.calls: list[tuple[Any, dict]] = []

    async def run(self, view, vars_, *, dry_run: bool = False):
        self.calls.append((view, vars_))
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.respond(view, vars_)


def items(**attrs) -> list[ReplyItem]:
    return [ReplyItem((name.replace("_", "-"),), value) for name, value in attrs.items()]


class UdpClient:
    """A plain socket client: send bytes, receive with timeout."""

    def __init__(self, target: tuple[str, int], bind: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((bind, 0))
        self.sock.setblocking(False)
        self.target = target

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.target)

    async def recv(self, timeout: float = 1.0) -> bytes | None:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.sock_recv(self.sock, 4096), timeout)
        except asyncio.TimeoutError:
            return None

    def close(self) -> None:
        self.sock.close()
