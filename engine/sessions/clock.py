"""Time for the session manager: monotonic ns for timers, wall time for rating.

Injected so the debit loop, TTLs and cut-offs are testable without sleeping:
tests pass a manual clock they advance; production uses the event loop's clock.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Callable, Protocol


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """What sessions need from time."""

    def monotonic(self) -> int:
        """Monotonic nanoseconds (timer base)."""
        ...

    def now(self) -> datetime:
        """Aware UTC wall time (rating start times, persisted timestamps)."""
        ...

    def call_at(self, when: int, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` (sync, on the loop) when ``monotonic() >= when``."""
        ...


class LoopClock:
    """The asyncio loop's monotonic clock and the system wall clock."""

    def monotonic(self) -> int:
        return int(asyncio.get_running_loop().time() * 1_000_000_000)

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def call_at(self, when: int, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_at(when / 1_000_000_000, callback)
