"""Timers of live sessions: the prepaid debit loop, the credit cut-off, the low-balance
warning, the TTL, and disconnecting through the owning agent.

A timer callback never charges money itself: it spawns a task that takes the
session lock, so a tick, an update and a terminate of one session never interleave.
All times are monotonic ns from the injected clock, so tests drive it without sleeping.

Why the cut-off is exact: each tick reserves (debits) the next slice; when a slice
is short, the session knows the usage at which credit ends (``cut_at``) and one timer
fires at exactly that point, not at the next tick.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from typing import TYPE_CHECKING, Any, Coroutine

from engine.errors import (
    CAUSE_INSUFFICIENT_CREDIT, CAUSE_SERVER_ERROR, CAUSE_SESSION_TIMEOUT, CAUSE_UNAUTHORIZED_DESTINATION,
    UNAUTHORIZED_DESTINATION, ChargingError,
)
from engine.sessions.keys import OPT_TTL
from engine.sessions.session import ACTIVE, CLOSED, DISCONNECTING, Session
from engine.units import MILLISECOND, format_time

if TYPE_CHECKING:
    from engine.sessions.manager import SessionManager

log = logging.getLogger("chargeway.sessions")

_FIRST_BACKOFF = 10 * MILLISECOND
_COMPACT_MIN = 1024  # heap entries below which stale ones are simply left to expire
# Session attribute of each deadline kind (arming one is a dict lookup, not an f-string)
_AT = {kind: f"at_{kind}" for kind in ("cut", "tick", "warn", "ttl", "grace")}


class Supervisor:
    """Owns every session timer and the background tasks they start."""

    def __init__(self, manager: "SessionManager") -> None:
        self.m = manager
        self._tasks: set[asyncio.Task[Any]] = set()
        # One timer for all sessions: a heap of (deadline, seq, CGRID) and one clock callback;
        # seq keeps deadlines at the same instant in the order they were set (first come, first served).
        self._heap: list[tuple[int, int, str]] = []
        self._compact_at = _COMPACT_MIN
        self._seq = itertools.count()
        self._handle: Any = None
        self._armed_at: int | None = None
        self._handlers = (("warn", self._on_warn), ("cut", self._on_cut), ("tick", self._on_tick),
                          ("ttl", self._on_ttl), ("grace", self._on_grace))

    # --- task plumbing -----------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("session task %s failed", task.get_name(), exc_info=task.exception())

    async def idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._armed_at = None
        self._heap.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _timer(self, session: Session, kind: str, when: int) -> None:
        """Set one of the session's deadlines (``cut``/``tick``/``warn``/``ttl``/``grace``)."""
        setattr(session, _AT[kind], when)
        if len(self._heap) >= self._compact_at:
            self._compact()
        heapq.heappush(self._heap, (when, next(self._seq), session.cgrid))
        if self._armed_at is None or when < self._armed_at:
            self._wake_at(when)

    def _compact(self) -> None:
        """Drop the heap entries that can no longer fire anything.

        A session that closes, or whose deadline moves, leaves its entry behind (popping it
        from the middle of a heap is O(n)). A debit-loop call's TTL entry lies 3 h ahead, so
        without this the heap holds every call of the last 3 h (10 M entries at 1,000 calls/s,
        each keeping its CGRID alive for the garbage collector to walk). Rebuilding once the
        heap has doubled since the last rebuild keeps the cost amortised O(1) per timer set."""
        sessions = self.m.sessions
        live = []
        for entry in self._heap:
            session = sessions.get(entry[2])
            if session is not None and entry[0] in _deadlines(session):
                live.append(entry)
        heapq.heapify(live)
        self._heap = live
        self._compact_at = max(_COMPACT_MIN, 2 * len(live))

    @staticmethod
    def _cancel(session: Session, kind: str) -> None:
        setattr(session, _AT[kind], None)

    def _wake_at(self, when: int) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed_at = when
        self._handle = self.m.clock.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        """The one clock callback: run every deadline now due, then sleep until the next.

        Heap entries name a CGRID, not a session, so a closed session is not kept alive by
        a stale entry; an entry whose deadline was moved or cleared does nothing."""
        self._handle = None
        self._armed_at = None
        now = self.m.clock.monotonic()
        while self._heap and self._heap[0][0] <= now:
            _, _, cgrid = heapq.heappop(self._heap)
            session = self.m.sessions.get(cgrid)
            if session is None:
                continue
            for kind, handler in self._handlers:
                due = getattr(session, f"at_{kind}")
                if due is not None and due <= now:
                    setattr(session, _AT[kind], None)
                    self.spawn(handler(session), f"{kind}:{cgrid[:8]}")
        if self._heap:
            self._wake_at(self._heap[0][0])

    def next_deadline(self, session: Session) -> int | None:
        """The earliest armed deadline of a session (tests, inspection)."""
        times = [t for t in _deadlines(session) if t is not None]
        return min(times) if times else None

    # --- arming ------------------------------------------------------------------------------

    def arm(self, session: Session) -> None:
        """(Re)arm the TTL and, for loop sessions, the next tick or the cut-off and warning."""
        if session.state != ACTIVE:
            return
        ttl = self.ttl_of(session)
        if ttl > 0:
            extra = session.last_grant if not session.loop else 0
            self._timer(session, "ttl", session.last_seen + ttl + extra)
        else:
            self._cancel(session, "ttl")
        if not session.loop:
            return
        if session.cut_at is not None:
            self._cancel(session, "tick")
            self._timer(session, "cut", session.started_mono + session.cut_at)
            self._arm_warning(session, session.cut_at)
        else:
            self._timer(session, "tick", session.started_mono + session.granted())

    def ttl_of(self, session: Session) -> int:
        """Session TTL; a debit-loop session with none still gets ``session_ttl_debit_loop``;
        an unconfirmed one (recovered after a crash, or its agent went away) is checked with
        its agent after ``recovery_ttl``."""
        if session.loop and OPT_TTL not in session.opts:
            ttl = self.m.config.session_ttl_debit_loop  # loop sessions get no updates to re-arm session_ttl
        else:
            ttl = session.ttl
        if session.unconfirmed:
            ttl = min(ttl, self.m.config.recovery_ttl) if ttl else self.m.config.recovery_ttl
        return ttl

    def _arm_warning(self, session: Session, cut_at: int) -> None:
        """Warn ``min_dur_low_balance`` before the credit runs out (once per session)."""
        if session.warned or self.m.config.min_dur_low_balance <= 0:
            return
        session.predicted_cut = cut_at
        when = session.started_mono + cut_at - self.m.config.min_dur_low_balance
        self._timer(session, "warn", max(when, self.m.clock.monotonic()))

    def affordable_after(self, session: Session, usage: int) -> tuple[int, str]:
        """What every prepaid run could still afford beyond its reservation (pure)."""
        if usage <= 0:
            return 0, ""
        best: tuple[int, str] | None = None
        for run in session.runs:
            if not run.prepaid:
                continue
            try:
                got = self.m.billing.max_usage(run.event, session.started_wall, usage, offset=run.reserved,
                                               cost_so_far=run.cost)
            except ChargingError as err:
                got = (0, err.code)
            if best is None or got[0] < best[0]:
                best = got
        return best or (usage, "")

    def estimated_usage(self, session: Session) -> int:
        """Usage when the agent does not say: time elapsed up to what was granted (loop),
        or the confirmed usage plus the last grant (manual)."""
        if session.loop:
            return min(session.elapsed(self.m.clock.monotonic()), session.granted())
        return session.used + session.last_grant

    # --- timer handlers ----------------------------------------------------------------------

    async def _on_tick(self, session: Session) -> None:
        async with session.lock:
            if session.state != ACTIVE or session.cut_at is not None:
                return
            before = session.granted()
            slice_ = session.debit_interval
            reason = ""
            try:
                for run in session.runs:
                    if run.prepaid and run.reserved < before + slice_:
                        _, why = await self.m.billing.reserve(session.cgrid, run, session.started_wall,
                                                              before + slice_ - run.reserved,
                                                              persist=session.snapshot_ops)
                        reason = reason or why
            except ChargingError as err:
                log.warning("debit of session %s failed: %s", session.cgrid, err)
                session.cut_at = session.granted()
                session.end_reason = (CAUSE_UNAUTHORIZED_DESTINATION if err.code == UNAUTHORIZED_DESTINATION
                                      else CAUSE_SERVER_ERROR)
                self.arm(session)
                return
            granted = session.granted()
            if granted < before + slice_:
                session.cut_at = granted
                session.end_reason = CAUSE_INSUFFICIENT_CREDIT
            else:
                # Look ahead: if the next slice will be short, warn before this one ends.
                more, _ = self.affordable_after(session, slice_)
                if more < slice_:
                    self._arm_warning(session, granted + more)
            self.arm(session)

    async def _on_warn(self, session: Session) -> None:
        if session.state != ACTIVE or session.warned:
            return
        session.warned = True
        link = self.m.links.get(session.link_name)
        if link is None:
            return
        end = session.cut_at if session.cut_at is not None else (session.predicted_cut or session.granted())
        remaining = max(0, end - session.elapsed(self.m.clock.monotonic()))
        try:
            await link.warn_disconnect(dict(session.start_fields), remaining)
        except Exception as exc:  # a warning is advisory; the cut still happens on time
            log.warning("low-balance warning for %s failed: %s", session.cgrid, exc)

    async def _on_cut(self, session: Session) -> None:
        await self.end(session, session.end_reason or CAUSE_INSUFFICIENT_CREDIT)

    async def _on_ttl(self, session: Session) -> None:
        """TTL expiry: keep the session if its agent still has it, close it if the agent says
        it is gone. When the agent cannot tell, a debit-loop session that was only unconfirmed
        (crash recovery, agent reconnecting) falls back to its normal TTL instead: closing a call
        that is still up would leave the rest of it unbilled when its terminate arrives."""
        if session.state != ACTIVE:
            return
        verdict = await self._agent_verdict(session)
        if verdict is True or (verdict is None and session.unconfirmed and session.loop):
            async with session.lock:
                session.last_seen = self.m.clock.monotonic()
                session.unconfirmed = False
                self.arm(session)
            return
        await self.force_end(session, CAUSE_SESSION_TIMEOUT)

    async def _on_grace(self, session: Session) -> None:
        """The agent accepted the disconnect but never sent terminate: end it ourselves."""
        async with session.lock:
            if session.state == CLOSED:
                return
            await self.m.close(session, self.estimated_usage(session), cause=session.end_reason)

    async def _agent_verdict(self, session: Session) -> bool | None:
        """Does the owning agent still have this call? None when it cannot say (or is gone)."""
        link = self.m.links.get(session.link_name)
        if link is None:
            return None
        try:
            ids = await link.active_session_ids()
        except Exception as exc:
            log.warning("agent %s could not list sessions: %s", session.link_name, exc)
            return None
        if ids is None:
            return None
        return tuple(session.origin) in {tuple(i) for i in ids}

    # --- ending ------------------------------------------------------------------------------

    async def end(self, session: Session, reason: str) -> None:
        """Ask the owning agent to hang up (``terminate_attempts`` tries with back-off); if it
        cannot, end the session ourselves, charged for what was used."""
        async with session.lock:
            if session.state != ACTIVE:
                return
            session.state = DISCONNECTING
            session.end_reason = reason
            for name in ("tick", "warn", "cut", "ttl"):
                self._cancel(session, name)
        if await self.disconnect(session, reason):
            if session.state != CLOSED:  # the agent's terminate may already have closed it
                grace = self.m.config.terminate_grace
                self._timer(session, "grace", self.m.clock.monotonic() + grace)
            return
        async with session.lock:
            if session.state != CLOSED:
                await self.m.close(session, self.estimated_usage(session), cause=reason)

    async def force_end(self, session: Session, reason: str) -> bool:
        """ForceDisconnect: close now (CDRs written), then tell the agent."""
        async with session.lock:
            if session.state == CLOSED:
                return False
            session.end_reason = reason
            await self.m.close(session, self.estimated_usage(session), cause=reason)
        self.spawn(self.disconnect(session, reason), f"disconnect:{session.cgrid[:8]}")
        return True

    async def disconnect(self, session: Session, reason: str) -> bool:
        link = self.m.links.get(session.link_name)
        if link is None:
            return False
        event = dict(session.start_fields)
        event["DisconnectCause"] = reason
        event["Usage"] = self.estimated_usage(session)
        delays = _fibonacci(self.m.config.terminate_attempts)
        for attempt, delay in enumerate(delays):
            try:
                await link.disconnect_session(event, reason)
                return True
            except Exception as exc:
                log.warning("disconnect %s via %s attempt %d failed: %s", session.cgrid, link.name,
                            attempt + 1, exc)
            if attempt + 1 < len(delays):
                await asyncio.sleep(delay / 1e9)
        return False

    # --- views -------------------------------------------------------------------------------

    def external(self, session: Session, now: int) -> list[dict[str, Any]]:
        """CGRateS ExternalSession entries (one per run)."""
        out = []
        elapsed = session.elapsed(now) if session.loop else session.used
        for run in session.runs:
            e = run.event
            extra = {k: v for k, v in session.start_fields.items() if k not in _MAIN_FIELDS}
            next_debit = session.started_mono + run.reserved - now if session.loop and session.cut_at is None else 0
            out.append({
                "CGRID": session.cgrid, "RunID": run.run_id, "ToR": e.tor, "OriginID": e.origin_id,
                "OriginHost": e.origin_host, "Source": e.source, "RequestType": e.request_type,
                "Tenant": e.tenant, "Category": e.category, "Account": e.account, "Subject": e.subject,
                "Destination": e.destination, "SetupTime": format_time(e.setup_time),
                "AnswerTime": format_time(e.answer_time), "Usage": elapsed, "ExtraFields": extra,
                "NodeID": "chargeway", "LoopIndex": run.debits, "DurationIndex": run.reserved,
                "MaxCostSoFar": float(run.cost), "DebitInterval": session.debit_interval,
                "NextAutoDebit": max(0, next_debit), "State": session.state,
            })
        return out


_MAIN_FIELDS = frozenset({
    "CGRID", "RunID", "ToR", "OriginID", "OriginHost", "Source", "RequestType", "Tenant", "Category",
    "Account", "Subject", "Destination", "SetupTime", "AnswerTime", "Usage",
})


def _fibonacci(attempts: int) -> list[int]:
    """Back-off delays (ns) between disconnect attempts: 10ms, 10ms, 20ms, 30ms, 50ms..."""
    out, a, b = [], _FIRST_BACKOFF, _FIRST_BACKOFF
    for _ in range(max(1, attempts)):
        out.append(a)
        a, b = b, a + b
    return out


def _deadlines(session: Session) -> tuple[int | None, ...]:
    """The session's five deadline slots (``at_<kind>``; None: not armed)."""
    return session.at_cut, session.at_tick, session.at_warn, session.at_ttl, session.at_grace
