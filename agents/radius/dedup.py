"""Duplicate detection for retransmitted requests (RFC 5080 section 2.2.2), sans-IO.

A request is identified by (client address, source port, Identifier,
Request Authenticator). While the first copy is being processed the entry is
*in flight*: a retransmission then gets nothing (the reply is on its way) and
is never processed a second time. Once answered, the reply bytes are kept for
``ttl`` seconds and a retransmission is answered from the cache, so the engine
never charges the same packet twice. ``now`` is passed in; no clock here.
"""

from __future__ import annotations

from collections import OrderedDict
from enum import Enum

RequestKey = tuple[str, int, int, bytes]


class Seen(Enum):
    NEW = "new"
    IN_FLIGHT = "in_flight"
    ANSWERED = "answered"


_IN_FLIGHT = b""


class DuplicateCache:
    """Bounded by time (``ttl``) and size (``max_entries``, oldest evicted first)."""

    def __init__(self, ttl: float = 5.0, max_entries: int = 1_000_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        # Expired answers are swept at most every ``sweep_every`` seconds (and whenever the
        # size bound is passed), not on every answer: ``check`` ignores an expired entry
        # anyway, so sweeping only bounds memory.
        self.sweep_every = min(1.0, ttl / 5)
        self._next_sweep = 0.0
        # key -> (expiry, reply bytes or _IN_FLIGHT); insertion order = expiry order
        self._entries: OrderedDict[RequestKey, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def check(self, key: RequestKey, now: float) -> tuple[Seen, bytes]:
        """Classify a request and, when new, mark it in flight."""
        entry = self._entries.get(key)
        if entry is not None:
            expiry, reply = entry
            if reply is _IN_FLIGHT:
                return Seen.IN_FLIGHT, b""
            if expiry > now:
                return Seen.ANSWERED, reply
            del self._entries[key]
        self._entries[key] = (float("inf"), _IN_FLIGHT)
        return Seen.NEW, b""

    def answered(self, key: RequestKey, reply: bytes, now: float) -> None:
        """Remember the reply sent for ``key`` until ``now + ttl``."""
        entries = self._entries
        entries.pop(key, None)
        entries[key] = (now + self.ttl, reply)
        if now >= self._next_sweep or len(entries) > self.max_entries:
            self._next_sweep = now + self.sweep_every
            self.expire(now)

    def forget(self, key: RequestKey) -> None:
        """Processing ended without a reply (dropped): a retransmission is processed anew."""
        self._entries.pop(key, None)

    def expire(self, now: float) -> None:
        """Drop expired answers from the front; in-flight entries stay until resolved."""
        entries = self._entries
        while entries:
            key, (expiry, reply) = next(iter(entries.items()))
            if expiry > now and len(entries) <= self.max_entries:
                break
            if reply is _IN_FLIGHT and len(entries) <= self.max_entries:
                entries.move_to_end(key)
                break
            del entries[key]
