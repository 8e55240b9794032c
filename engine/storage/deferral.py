"""Writes no peer is waiting on may wait a few milliseconds to share a commit.

Why: a durable commit costs the same fsync and WAL pages whether it carries one write or
twenty. Most writes answer a peer (a Diameter CCA, a RADIUS Accounting-Response, an API
call) and must commit at once: the answer waits on it. Some answer nobody: Kamailio sends
CGR_CALL_START and CGR_CALL_END and expects no reply. At 1,000 calls/s those were ~2
commits of one or two writes each per call, the writer's biggest cost. Marked deferrable,
they wait up to ``deferred_commit_delay`` for company; a write that someone waits on still
commits at once and takes any waiting deferred writes with it.

Nothing is acknowledged earlier than before: the caller still awaits its own commit. What
changes is only how long an unacknowledged write may sit in memory, which a crash could
lose either way before its commit.
"""

from __future__ import annotations

from contextvars import ContextVar

_UNACKNOWLEDGED: ContextVar[bool] = ContextVar("chargeway_unacknowledged_writes", default=False)


class unacknowledged_writes:  # noqa: N801 - used like a function: ``with unacknowledged_writes():``
    """Storage writes made in this context (and tasks started from it) may be deferred.

    A class rather than a @contextmanager generator: it is entered twice per Kamailio call,
    and a generator-based one cost ~1.5 % of the event loop's time per call start and end."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _UNACKNOWLEDGED.set(True)

    def __exit__(self, *exc: object) -> None:
        _UNACKNOWLEDGED.reset(self._token)


def writes_are_unacknowledged() -> bool:
    return _UNACKNOWLEDGED.get()
