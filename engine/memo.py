"""The bounded-memo rule shared by the hot-path caches (parsed times, CGRIDs, row JSON...).

Each cache is a plain dict probed inline by its owner (a ``dict.get`` is the cheapest
lookup there is); on a miss the owner computes the value and stores it here. When a cache
is full it is emptied rather than trimmed: the entries are cheap to recompute, the working
set refills in a few calls, and clearing costs nothing per hit.
"""

from __future__ import annotations

from typing import Any, TypeVar

V = TypeVar("V")


def remember(memo: dict[Any, Any], limit: int, key: Any, value: V) -> V:
    """Store ``value`` under ``key`` (emptying ``memo`` first when it holds ``limit``); return it."""
    if len(memo) >= limit:
        memo.clear()
    memo[key] = value
    return value
