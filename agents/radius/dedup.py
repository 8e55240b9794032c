"""Duplicate detection for retransmitted requests (RFC 5080 section 2.2.2), sans-IO.

A request is identified by (client address, source port, Identifier,
Request Authenticator). While the first copy is being processed the entry is
*in flight*: a retransmission then gets nothing (the reply is on its way) and
is never processed a second time. Once answered, the reply bytes are kept for
``ttl`` seconds and a retransmission is answered from the cache, so the engine
never charges the same packet twice. ``now`` is passed in; no clock here.
"""

from __future__ import annotations

from collections import deque
from enum import Enum

RequestKey = tuple[str, int, int, bytes]


class Seen(Enum):
    NEW = "new"
    IN_FLIGHT = "in_flight"
    ANSWERED = "answered"


_IN_FLIGHT_ENTRY: tuple[float, bytes] = (float("inf"), b"")
_SEEN_NEW = (Seen.NEW, b"")
_SEEN_IN_FLIGHT = (Seen.IN_FLIGHT, b"")


class DuplicateCache:
    """Bounded by time (``ttl``) and size (``max_entries``, oldest answer evicted first).

    Entries live in a plain dict (in-flight marks and answers); answers are also queued
    in the order they expire, so sweeping pops from the queue's front and never walks
    the dict. A queued key whose entry was replaced since (answered again, forgotten)
    is skipped: its expiry no longer matches.
    """

    def __init__(self, ttl: float = 5.0, max_entries: int = 1_000_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        # key -> (expiry, reply bytes) or _IN_FLIGHT_ENTRY
        self._entries: dict[RequestKey, tuple[float, bytes]] = {}
        self._expiry_order: deque[tuple[float, RequestKey]] = deque()
        # Expired answers are swept at most every ``sweep_every`` seconds (and whenever the
        # size bound is passed), not on every answer: ``check`` ignores an expired entry
        # anyway, so sweeping only bounds memory.
        self.sweep_every = min(1.0, ttl / 5)
        self._next_sweep = 0.0

    def __len__(self) -> int:
        return len(self._entries)

    def check(self, key: RequestKey, now: float) -> tuple[Seen, bytes]:
        """Classify a request and, when new, mark it in flight."""
        entries = self._entries
        entry = entries.get(key)
        if entry is not None:
            if entry is _IN_FLIGHT_ENTRY:
                return _SEEN_IN_FLIGHT
            if entry[0] > now:
                return Seen.ANSWERED, entry[1]
        entries[key] = _IN_FLIGHT_ENTRY
        return _SEEN_NEW

    def answered(self, key: RequestKey, reply: bytes, now: float) -> None:
        """Remember the reply sent for ``key`` until ``now + ttl``."""
        expiry = now + self.ttl
        self._entries[key] = (expiry, reply)
        self._expiry_order.append((expiry, key))
        if now >= self._next_sweep or len(self._entries) > self.max_entries:
            self._next_sweep = now + self.sweep_every
            self.expire(now)

    def forget(self, key: RequestKey) -> None:
        """Processing ended without a reply (dropped): a retransmission is processed anew."""
        self._entries.pop(key, None)

    def expire(self, now: float) -> None:
        """Drop expired answers (and the oldest ones past ``max_entries``); in-flight entries stay."""
        entries = self._entries
        order = self._expiry_order
        while order:
            expiry, key = order[0]
            if expiry > now and len(entries) <= self.max_entries:
                break
            order.popleft()
            entry = entries.get(key)
            if entry is not None and entry[0] == expiry:
                del entries[key]
