"""CoreSv1: Ping and Status (CGRateS master's snake_case keys)."""

from __future__ import annotations

import os
import platform
import socket
import time
from typing import Any, Callable

from agents.jsonrpc.dispatcher import CallContext, Handler
from engine.units import format_duration, format_time, utcnow

import chargeway


class CoreApi:
    def __init__(self, active_sessions: Callable[[], int] | None = None, *,
                 loop_wait: Callable[[], dict[str, Any]] | None = None) -> None:
        self.started = utcnow()
        self.loop_wait = loop_wait
        self._t0 = time.monotonic()
        self.active_sessions = active_sessions
        self.node_id = f"{socket.gethostname()}-{os.getpid()}"

    def handlers(self) -> dict[str, Handler]:
        return {"CoreSv1.Ping": self.ping, "CoreSv1.Status": self.status}

    async def ping(self, args: dict[str, Any], ctx: CallContext) -> Any:
        return "Pong"

    async def status(self, args: dict[str, Any], ctx: CallContext) -> Any:
        uptime_ns = int((time.monotonic() - self._t0) * 1e9)
        out: dict[str, Any] = {
            "node_id": self.node_id,
            "version": f"chargeway {getattr(chargeway, '__version__', '')}".strip(),
            "python_version": platform.python_version(),
            "running_since": format_time(self.started),
            "uptime": format_duration(uptime_ns - uptime_ns % 1_000_000_000),
            "pid": os.getpid(),
        }
        if self.active_sessions is not None:
            out["active_sessions"] = self.active_sessions()
        if self.loop_wait is not None:
            # How long a request arriving now waits for the event loop (engine/looplag.py).
            out["loop_wait_ms"] = self.loop_wait()
        return out
