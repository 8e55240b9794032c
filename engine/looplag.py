"""How long the event loop makes a newly arrived request wait: sampled, for operators.

Why: every agent's answer time is its own processing plus the time the loop needs to finish
what it is already doing before it reads the socket (a Kamailio CGR_AUTH_REQUEST, a CCR, a
RADIUS packet). CPU and rates do not show that wait; this does. Every ``interval`` a timer
fires and queues a probe behind everything the loop has ready to run; the probe records how
long it waited. Timers run at the start of a loop iteration, so that is the work a socket
event arriving then waits for (plus the probe's own call). Exposed by CoreSv1.Status as
``loop_wait_ms`` (p50/p99/max over the last minute) and logged at shutdown.

Timing uses ``time.perf_counter``: uvloop's loop clock has millisecond steps.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any


class LoopWaitMonitor:
    def __init__(self, interval: float = 0.01, keep: int = 6000) -> None:
        self.interval = interval
        self.samples: deque[float] = deque(maxlen=keep)  # seconds
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queued_at = 0.0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_later(self.interval, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._loop = None

    def _tick(self) -> None:
        loop = self._loop
        if loop is None:
            return
        self._queued_at = time.perf_counter()
        loop.call_soon(self._probe)

    def _probe(self) -> None:
        self.samples.append(time.perf_counter() - self._queued_at)
        if self._loop is not None:
            self._handle = self._loop.call_later(self.interval, self._tick)

    def summary(self) -> dict[str, Any]:
        """p50, p99 and max in milliseconds (3 decimals) and the sample count."""
        ordered = sorted(self.samples)
        if not ordered:
            return {"samples": 0}
        return {"samples": len(ordered),
                "p50": round(ordered[len(ordered) // 2] * 1e3, 3),
                "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3, 3),
                "max": round(ordered[-1] * 1e3, 3)}
