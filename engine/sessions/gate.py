"""``Gate``: one operation at a time on a session (or on a call's in-flight requests).

What ``asyncio.Lock`` gives (mutual exclusion, waiters served in arrival order, a waiter
cancelled while queued never holds it, one cancelled just as it was handed the gate passes it
on), for less per use: every Kamailio call takes a session's gate twice and a call's
in-flight gate once, and every Diameter CCR-U once, almost always free. ``async with
asyncio.Lock()`` runs three coroutines (``__aenter__``, ``acquire``, ``__aexit__``) and, once
the lock has ever had a waiter, an ``all()`` over its waiters on every free acquisition;
entering a free gate is one flag.

The gate is handed straight to the next waiter on release (it stays held in between), so a
newcomer that finds it free can never overtake a waiter.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any


class Gate:
    """A FIFO async mutex; ``async with gate:``."""

    __slots__ = ("_held", "_waiters")

    def __init__(self) -> None:
        self._held = False
        self._waiters: deque[asyncio.Future[None]] | None = None

    def locked(self) -> bool:
        return self._held

    async def __aenter__(self) -> None:
        if not self._held:
            self._held = True
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = deque()
        self._waiters.append(fut)
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                self._release()  # handed the gate as it was cancelled: pass it on
            raise                # (a waiter cancelled while queued is skipped by _release)

    async def __aexit__(self, *exc: Any) -> None:
        self._release()

    def _release(self) -> None:
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the next waiter holds it now
                return
        self._held = False
