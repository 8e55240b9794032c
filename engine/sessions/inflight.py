"""Requests in flight, by idempotency key (the CGRID): a duplicate that arrives while the first
copy is still committing waits for it instead of charging again.

Why it is needed: the durable "already charged" keys (``term:<CGRID>``,
``charged:<CGRID>:<RunID>``) are read, then an ``await`` follows, and they are written only
in the debit's transaction. Two copies of one CDR, SMS or terminate delivered at the same
moment (an agent retransmitting on a timeout) would both read "not charged" and both debit.

Here the operations on one call run one at a time, in arrival order: the second copy starts
only once the first has committed (or failed, leaving nothing durable), so its own
idempotency check sees what the first did and it answers exactly what a later duplicate
would ("OK", the SMS's grant), whatever the timing. A failed or cancelled first copy leaves
the duplicate to charge the call itself, once. O(1) per request; the entry is freed as soon
as no operation on the key runs or waits.
"""

from __future__ import annotations

from typing import Awaitable, Callable, TypeVar

from engine.sessions.gate import Gate

T = TypeVar("T")


class _Key:
    """The gate of one key and how many operations hold or wait for it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = Gate()
        self.users = 0


class InFlight:
    """At most one operation per key at a time (arrival order); idle keys take no memory."""

    def __init__(self) -> None:
        self._keys: dict[str, _Key] = {}

    def __len__(self) -> int:
        """Keys with an operation running or waiting."""
        return len(self._keys)

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    async def run(self, key: str, operation: Callable[[], Awaitable[T]]) -> T:
        """Run ``operation`` once every earlier operation on ``key`` has finished."""
        entry = self._keys.get(key)
        if entry is None:
            entry = self._keys[key] = _Key()
        entry.users += 1
        try:
            async with entry.lock:
                return await operation()
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._keys[key]
