"""SessionManager: the engine API every agent calls (authorize, initiate, update, terminate, CDR).

Money rules it keeps:
- A reservation IS a debit (through AccountService), so concurrent sessions on one
  account always see each other's reservations; terminate settles to the exact
  price of the whole call (refunding the unused part of the last reservation).
- Nothing is acknowledged before it is durable: every method returns only after
  storage committed the debit/CDR it made.
- Crash safety: the session snapshot commits in the same transaction as its first
  debit; every debit's ledger row names the session, run and granted usage, so
  after ``kill -9`` the ledger alone rebuilds what each run paid; a settle is
  idempotent given that; a ``term:<CGRID>`` key commits with the CDRs so a repeated
  terminate or CDR never charges twice; a copy delivered while the first is still
  committing waits for it (``self.flights``, one operation per CGRID at a time).

Timers (debit loop, credit cut-off, low-balance warning, TTL) live in
``engine.sessions.supervisor``; this module is the request side.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import OrderedDict
from datetime import datetime
from decimal import Decimal
from typing import Any, Mapping

from engine.agent_link import AgentLink
from engine.cdrs.model import COST_SOURCE_SESSIONS, cdr_from_session
from engine.cdrs.service import CdrService
from engine.errors import (
    ACCOUNT_NOT_FOUND, CAUSE_FORCED_DISCONNECT, EXISTS, INSUFFICIENT_CREDIT, NOT_FOUND,
    ChargingError, mandatory_missing,
)
from engine.event import (
    ACCOUNT, CGRID, ORIGIN_HOST, ORIGIN_ID, PSEUDOPREPAID, RATED, USAGE, VOICE,
    ChargingEvent, EventDefaults,
)
from engine.event import cgrid as make_cgrid
from engine.reply import Reply
from engine.sessions.billing import RATING_REFUSALS, Billing, Settled, event_cost_of
from engine.sessions.chargers import RunProfile, run_profiles, select_runs
from engine.sessions.clock import Clock, LoopClock
from engine.sessions.config import SessionsConfig
from engine.sessions.filters import compile_filters, match_all
from engine.sessions.inflight import InFlight
from engine.sessions.inputs import opt_duration, parse_event
from engine.sessions.keys import (
    CHARGED_TYPES, OPT_CHARGEABLE, OPT_DEBIT_INTERVAL, OPT_RUN_IDS, OPT_TTL, charged_key, flag, opts_of, term_key,
)
from engine.sessions.oneshot import OneShot
from engine.sessions.recovery import recover
from engine.sessions.session import ACTIVE, CLOSED, PREPAID_TYPES, RunState, Session, encode_session
from engine.sessions.supervisor import Supervisor
from engine.storage.base import DeleteSession, MarkProcessed, PutSession

__all__ = ["SessionManager", "SessionsConfig"]

log = logging.getLogger("chargeway.sessions")

_PROTECTED = frozenset({CGRID, ORIGIN_HOST, ORIGIN_ID, USAGE, "LastUsed", "TotalUsage"})
_CLOSED_MEMORY = 100_000
_NO_OPTS: dict[str, Any] = {}  # shared by sessions opened without session APIOpts (never mutated)


def _session_opts(opts: dict[str, Any]) -> dict[str, Any]:
    """The APIOpts a session must remember (``*sessions...``, RunIDs); the rest are per request."""
    kept = {k: v for k, v in opts.items() if k.startswith("*sessions") or k == OPT_RUN_IDS}
    return kept or _NO_OPTS


class SessionManager:
    """See module docstring. Construct, ``await start()``, register agent links, serve."""

    def __init__(self, accounts: Any, rater: Any, storage: Any, config: SessionsConfig | None = None,
                 defaults: EventDefaults = EventDefaults(), *, cdr_config: Mapping[str, Any] | None = None,
                 cdrs: CdrService | None = None, clock: Clock | None = None) -> None:
        self.accounts = accounts
        self.rater = rater
        self.storage = storage
        self.config = config or SessionsConfig()
        self.defaults = defaults
        self.clock: Clock = clock or LoopClock()
        self.billing = Billing(accounts, rater, storage)
        self.cdrs = cdrs or CdrService(storage, cdr_config)
        self.sessions: dict[str, Session] = {}
        self.links: dict[str, AgentLink] = {}
        self._closed: OrderedDict[str, None] = OrderedDict()
        # Terminates, CDRs, messages and refunds running, by CGRID: a concurrent duplicate waits.
        self.flights = InFlight()
        self._profiles_plan: Any = None
        self._profiles_cache: dict[str, list[RunProfile]] = {}
        self.supervisor = Supervisor(self)
        self.oneshot = OneShot(self)

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start exporters and recover the sessions a previous process left open."""
        await self.cdrs.start()
        await recover(self)

    async def stop(self) -> None:
        """Stop timers; open sessions stay persisted and are recovered by the next start."""
        for session in self.sessions.values():
            session.cancel_timers()
        await self.supervisor.stop()
        await self.cdrs.stop()

    async def idle(self) -> None:
        """Wait until no background work (loop debits, disconnects) is running (tests, shutdown)."""
        await self.supervisor.idle()

    def register_link(self, link: AgentLink) -> None:
        self.links[link.name] = link

    def unregister_link(self, link: AgentLink) -> None:
        """The agent went away: its sessions are checked again after ``recovery_ttl`` (closed
        unless the agent is back and still has them), so a lost switch cannot keep a debit
        loop running for hours."""
        if self.links.get(link.name) is not link:
            return
        del self.links[link.name]
        now = self.clock.monotonic()
        for session in self.sessions.values():
            if session.link_name == link.name and session.state == ACTIVE:
                session.unconfirmed = True
                session.last_seen = now
                self.supervisor.arm(session)

    # --- parsing helpers ---------------------------------------------------------------------

    def event_of(self, fields: Mapping[str, Any]) -> ChargingEvent:
        """The request's event, checked (no negative or non-finite usage) before it can charge."""
        return parse_event(fields, self.defaults)

    @staticmethod
    def need(event: ChargingEvent, *names: str) -> None:
        """Mandatory fields: the error names every one missing. Checked on every request,
        so the list is built only once one is found missing."""
        for name in names:
            if not getattr(event, _ATTR[name]):
                raise mandatory_missing(*[n for n in names if not getattr(event, _ATTR[n])])

    def requested(self, event: ChargingEvent) -> int:
        usage = event.usage if event.usage is not None and event.usage > 0 else self.config.usage_for(event.tor)
        return self.config.cap(event.tor, usage)

    def runs_of(self, event: ChargingEvent, opts: Mapping[str, Any]) -> list[RunState]:
        """One RunState per charging run (the ``*default`` run unless Chargers.csv adds others)."""
        only = opts.get(OPT_RUN_IDS)
        if isinstance(only, str):
            only = [only]
        selected = select_runs(self._profiles(event.tenant), event.to_fields, only)
        if not selected:
            raise ChargingError(NOT_FOUND, reason="no charging run matches the event")
        runs = []
        for profile in selected:
            if profile.overrides:
                run_event = ChargingEvent.from_fields(profile.apply(event.to_fields()), self.defaults)
                if run_event.cost is None:
                    run_event.cost = event.cost  # to_fields() leaves the given Cost out
            elif not runs:
                run_event = event  # the common case: the default run charges the event as is
            else:
                run_event = dataclasses.replace(event, extra=dict(event.extra))
            runs.append(RunState(run_id=profile.run_id, event=run_event))
        return runs

    def _profiles(self, tenant: str) -> list[RunProfile]:
        """Run profiles of a tenant, parsed once per loaded tariff plan."""
        plan = getattr(self.rater(), "plan", None)
        if plan is not self._profiles_plan:
            self._profiles_plan, self._profiles_cache = plan, {}
        profiles = self._profiles_cache.get(tenant)
        if profiles is None:
            profiles = self._profiles_cache[tenant] = run_profiles(plan, tenant)
        return profiles

    def _interval(self, event: ChargingEvent, opts: Mapping[str, Any]) -> int:
        """Debit-loop slice; only time is sliced by a clock (data/SMS sessions are manual)."""
        if event.tor != VOICE:
            return 0
        return opt_duration(opts, OPT_DEBIT_INTERVAL, self.config.debit_interval)

    def balance_of(self, event: ChargingEvent) -> Decimal | None:
        """Money left on the account's usable monetary balances (for agents that report it)."""
        account = self.accounts.get(event.tenant, event.account)
        if account is None:
            return None
        return account.total("*monetary", self.clock.now())

    def start_time(self, event: ChargingEvent) -> datetime:
        return event.start_time or self.clock.now()

    # --- authorize ---------------------------------------------------------------------------

    async def authorize(self, fields: Mapping[str, Any], opts: Mapping[str, Any] | None = None) -> Reply:
        """Max usage the account can afford now, capped at the requested (or default) usage.

        No credit is ``max_usage=0`` with the reason, not an error (agents refuse on 0)."""
        opts = opts_of(opts)
        event = self.event_of(fields)
        self.need(event, ACCOUNT)
        requested = self.requested(event)
        start = self.start_time(event)
        grants: dict[str, int] = {}
        reasons: dict[str, str] = {}
        for run in self.runs_of(event, opts):
            if run.event.request_type in (*PREPAID_TYPES, PSEUDOPREPAID) and flag(opts.get(OPT_CHARGEABLE)):
                grants[run.run_id], reasons[run.run_id] = self.billing.max_usage(run.event, start, requested)
            else:
                grants[run.run_id], reasons[run.run_id] = requested, ""
        return self._limited_reply(grants, reasons, requested, event)

    def _limited_reply(self, grants: dict[str, int], reasons: dict[str, str], requested: int,
                       event: ChargingEvent) -> Reply:
        if len(grants) == 1:  # one run (or the loop's one figure): no min() over a lambda
            run_id, usage = next(iter(grants.items()))
        else:
            run_id = min(grants, key=lambda r: grants[r])
            usage = grants[run_id]
        reason = reasons[run_id] if usage < requested else ""
        if usage < requested and not reason:
            reason = INSUFFICIENT_CREDIT
        # the balance is computed only if read (the Kamailio, RADIUS and Diameter templates don't)
        return Reply(max_usage=usage, reason=reason, run_max_usage=dict(grants),
                     final_units=usage < requested and reason != "",
                     balance_source=lambda: self.balance_of(event))

    # --- initiate ----------------------------------------------------------------------------

    async def initiate(self, fields: Mapping[str, Any], opts: Mapping[str, Any] | None = None,
                       link: AgentLink | None = None) -> Reply:
        """Open a session: reserve the first debit interval (loop mode) or the requested usage
        (manual mode, ``*sessionsDebitInterval: 0``) and return the max usage granted."""
        opts = opts_of(opts)
        event = self.event_of(fields)
        self.need(event, ORIGIN_ID, ACCOUNT)
        if event.cgrid in self.sessions or event.cgrid in self._closed or event.cgrid in self.flights:
            raise ChargingError(EXISTS, reason=f"session {event.cgrid} already exists")
        if link is not None and link.name not in self.links:
            self.register_link(link)
        runs = self.runs_of(event, opts)
        now_wall, now_mono = self.clock.now(), self.clock.monotonic()
        session = Session(
            cgrid=event.cgrid, event=event, opts=_session_opts(opts), runs=runs,
            started_wall=event.start_time or now_wall, initiated_wall=now_wall, started_mono=now_mono,
            debit_interval=self._interval(event, opts),
            ttl=opt_duration(opts, OPT_TTL, self.config.session_ttl),
            link_name=link.name if link is not None else "", tor=event.tor,
            chargeable=flag(opts.get(OPT_CHARGEABLE)), last_seen=now_mono,
        )
        self.sessions[session.cgrid] = session
        async with session.lock:
            try:
                reply = await self._first_grant(session, self.requested(event))
            except BaseException:
                self.sessions.pop(session.cgrid, None)
                await self._abandon(session)
                raise
            if reply.max_usage == 0:
                self.sessions.pop(session.cgrid, None)
                reply.freeze_balance()  # as it is now, before the refund below
                await self._abandon(session)
                return reply
            self.supervisor.arm(session)
        return reply

    async def _first_grant(self, session: Session, requested: int) -> Reply:
        snapshot = [PutSession(session.cgrid, encode_session(session))]
        grants: dict[str, int] = {}
        reasons: dict[str, str] = {}
        prepaid = [r for r in session.runs if r.prepaid] if session.chargeable else []
        if not prepaid:
            await self.storage.write(snapshot)
        first_slice = min(session.debit_interval, requested) if session.loop else requested
        for run in session.runs:
            if run in prepaid:
                got, why = await self.billing.reserve(session.cgrid, run, session.started_wall, first_slice,
                                                      extra_ops=snapshot, persist=session.snapshot_ops)
                snapshot = []
                grants[run.run_id], reasons[run.run_id] = got, why
            elif run.event.request_type == PSEUDOPREPAID and session.chargeable:
                grants[run.run_id], reasons[run.run_id] = self.billing.max_usage(
                    run.event, session.started_wall, requested)
            else:
                grants[run.run_id], reasons[run.run_id] = requested, ""
        if session.loop:
            granted = session.granted()
            if granted < first_slice:
                session.cut_at = granted
                why = next((reasons[r.run_id] for r in prepaid if r.reserved == granted), "")
                total, why = granted, why or INSUFFICIENT_CREDIT
            else:
                more, why = self.supervisor.affordable_after(session, requested - granted)
                total = min(requested, granted + more)  # a whole-increment slice may exceed the request
            others = {r: g for r, g in grants.items() if r not in {p.run_id for p in prepaid}}
            reply = self._limited_reply({"*loop": total, **others}, {"*loop": why, **reasons}, requested,
                                        _event_of(session))
            reply.run_max_usage = {r.run_id: grants.get(r.run_id, total) if r not in prepaid else total
                                   for r in session.runs}
            return reply
        reply = self._limited_reply(grants, reasons, requested, _event_of(session))
        session.last_grant = reply.max_usage or 0
        return reply

    async def _abandon(self, session: Session) -> None:
        """A refused or failed initiate: give back any reservation and forget the snapshot."""
        session.state = CLOSED
        session.cancel_timers()
        for run in session.runs:
            if run.charges and any(c.amount for c in run.charges):
                try:
                    await self.billing.settle(session.cgrid, run, session.started_wall, 0)
                except ChargingError:
                    log.exception("refund of refused session %s run %s failed", session.cgrid, run.run_id)
        await self.storage.write([DeleteSession(session.cgrid)])

    # --- update ------------------------------------------------------------------------------

    async def update(self, fields: Mapping[str, Any], opts: Mapping[str, Any] | None = None) -> Reply:
        """Next grant. ``LastUsed`` corrects the previous grant, ``TotalUsage`` gives the
        cumulative usage, ``Usage`` asks for the next slice (manual mode debits it now)."""
        opts = opts_of(opts)
        event = self.event_of(fields)
        self.need(event, ORIGIN_ID)
        session = self.sessions.get(event.cgrid)
        if session is None:
            if event.cgrid in self._closed or await self.storage.get_processed(term_key(event.cgrid)):
                return Reply(max_usage=0, reason=NOT_FOUND, final_units=True)
            # CGRateS creates a session on an update it does not know (e.g. after a restart).
            return await self.initiate(fields, opts)
        async with session.lock:
            if session.state != ACTIVE:
                return Reply(max_usage=0, reason=session.end_reason or INSUFFICIENT_CREDIT, final_units=True)
            session.last_seen = self.clock.monotonic()
            session.unconfirmed = False  # its agent is talking to us again: normal TTL from now on
            session.merge_event(event, fields, _PROTECTED)
            if event.total_usage is not None:
                session.used = event.total_usage
            elif event.last_used is not None:
                session.used += event.last_used
            else:
                session.used += session.last_grant
            requested = self.requested(event)
            if session.loop:
                remaining = max(0, session.granted() - session.elapsed(self.clock.monotonic()))
                if session.cut_at is not None:
                    grants = {"*loop": min(remaining, requested)}
                    reasons = {"*loop": INSUFFICIENT_CREDIT}
                else:
                    more, why = self.supervisor.affordable_after(session, max(0, requested - remaining))
                    grants, reasons = {"*loop": min(requested, remaining + more)}, {"*loop": why}
                await self.storage.write([PutSession(session.cgrid, encode_session(session))])
                self.supervisor.arm(session)
                reply = self._limited_reply(grants, reasons, requested, event)
                reply.run_max_usage = {}
                return reply
            reply = await self._manual_grant(session, requested)
            session.last_grant = reply.max_usage or 0
            self.supervisor.arm(session)
            return reply

    async def _manual_grant(self, session: Session, requested: int) -> Reply:
        grants: dict[str, int] = {}
        reasons: dict[str, str] = {}
        snapshot = [PutSession(session.cgrid, encode_session(session))]
        for run in session.runs:
            if run.prepaid and session.chargeable:
                need = session.used + requested - run.reserved
                why = ""
                if need > 0:
                    _, why = await self.billing.reserve(session.cgrid, run, session.started_wall, need,
                                                        extra_ops=snapshot, persist=session.snapshot_ops)
                    snapshot = []
                left = run.reserved - session.used
                grants[run.run_id] = requested if left >= requested else (left if left > 0 else 0)
                reasons[run.run_id] = why
            elif run.event.request_type == PSEUDOPREPAID and session.chargeable:
                grants[run.run_id], reasons[run.run_id] = self.billing.max_usage(
                    run.event, session.started_wall, requested, offset=session.used)
            else:
                grants[run.run_id], reasons[run.run_id] = requested, ""
        if snapshot:
            await self.storage.write(snapshot)
        return self._limited_reply(grants, reasons, requested, _event_of(session))

    # --- terminate ---------------------------------------------------------------------------

    async def terminate(self, fields: Mapping[str, Any], opts: Mapping[str, Any] | None = None) -> Reply:
        """Settle to the final usage, write one CDR per run, close. Repeating it is harmless,
        even while the first copy is still committing (it waits for it, then answers "OK")."""
        opts = opts_of(opts)
        event = self.event_of(fields)
        if not event.cgrid:
            raise mandatory_missing("OriginID")
        return await self.flights.run(event.cgrid, lambda: self.end_call(event, fields, opts))

    async def end_call(self, event: ChargingEvent, fields: Mapping[str, Any], opts: dict[str, Any]) -> Reply:
        """Terminate's work; the caller holds the call's flight (no other terminate, CDR,
        message or refund of this call runs meanwhile)."""
        session = self.sessions.get(event.cgrid)
        if session is None:
            if await self.already_closed(event.cgrid):
                return Reply()
            # CGRateS charges a terminate for a session it never saw as a one-shot call.
            self.need(event, ACCOUNT)
            return await self.oneshot.charge_and_record(event, opts, source=COST_SOURCE_SESSIONS)
        async with session.lock:
            if session.state == CLOSED:
                return Reply()
            current = session.merge_sent(event.to_fields(), fields, _PROTECTED)
            total = self._final_usage(session, event)
            costs = await self.close(session, total, cause=event.disconnect_cause, start_fields=current)
        return Reply(cost=costs.get(session.runs[0].run_id), run_cost=costs)

    def _final_usage(self, session: Session, event: ChargingEvent) -> int:
        """Terminate's Usage is the total; else TotalUsage; else LastUsed completes the
        confirmed usage; else what was granted (manual) or the time elapsed (loop)."""
        if event.usage is not None:
            return max(0, event.usage)
        if event.total_usage is not None:
            return max(0, event.total_usage)
        if event.last_used is not None:
            return session.used + max(0, event.last_used)
        return self.supervisor.estimated_usage(session)

    async def already_closed(self, cgrid: str) -> bool:
        if cgrid in self._closed:
            return True
        return bool(await self.storage.get_processed(term_key(cgrid)))

    async def close(self, session: Session, total: int, *, cause: str = "",
                    start_fields: dict[str, Any] | None = None) -> dict[str, Decimal]:
        """Settle every run at ``total`` usage, write its CDRs, forget the session (caller holds the lock).

        ``start_fields``: the session's current ``start_fields`` when the caller already built
        them (terminate does, to merge its fields); else they are built here."""
        session.cancel_timers()
        # Stays in ``sessions`` (state CLOSED) until durable: a duplicate terminate finds it,
        # waits for the lock and answers only once this close is committed.
        session.state = CLOSED
        if cause:
            start_fields = session.merge({"DisconnectCause": cause}, frozenset(), start_fields)
        try:
            costs = await self._settle_and_record(session, total, cause, start_fields)
        except BaseException:
            # Not durable: keep the session so a retry (or recovery) settles it again (idempotent).
            session.state = ACTIVE
            self.supervisor.arm(session)
            raise
        if self.sessions.get(session.cgrid) is session:
            del self.sessions[session.cgrid]
        self.remember_closed(session.cgrid)
        self.cdrs.committed()
        log.debug("session %s closed: usage=%d costs=%s cause=%s", session.cgrid, total, costs, cause or "-")
        return costs

    async def _settle_and_record(self, session: Session, total: int, cause: str,
                                 start_fields: dict[str, Any] | None = None) -> dict[str, Decimal]:
        """Settle every run and write the CDRs, in ONE transaction for the usual single-run call.

        Runs before the last charged one settle on their own; the last one's exact charge is
        previewed (pure, same state, no ``await`` before the settle plans it) so its CDR, the
        other runs' CDRs, the snapshot delete and the ``term:`` key ride in its settle."""
        charged = [r for r in session.runs if self._settles(session, r)]
        last = charged[-1] if charged else None
        results: dict[str, Settled] = {}
        for run in session.runs:
            if run is not last:
                results[run.run_id] = await self._settle_run(session, run, total)
        def ops_with(results_now: dict[str, Settled]) -> list[Any]:
            rows = []
            fields = start_fields if start_fields is not None else session.start_fields
            for run in session.runs:
                settled = results_now[run.run_id]
                if total == 0 and not self.config.store_missed_calls:
                    continue
                rows.append(self._cdr_of(session, run, cause, fields, total, settled))
            return [*self.cdrs.ops_for(rows), DeleteSession(session.cgrid),
                    MarkProcessed(term_key(session.cgrid), str(total))]

        if last is not None:
            def ops_for(plan: Any) -> list[Any]:
                results[last.run_id] = Settled(plan.cost, event_cost_of(plan, session.cgrid, last.run_id))
                return ops_with(results)
            try:
                await self.billing.settle(session.cgrid, last, session.started_wall, total,
                                          extra_ops=[MarkProcessed(charged_key(session.cgrid, last.run_id), str(total))],
                                          extra_ops_for=ops_for)
            except ChargingError as err:
                if last.run_id in results:
                    raise
                results[last.run_id] = self._unsettled(last, err)
                await self.storage.write(ops_with(results))
        else:
            await self.storage.write(ops_with(results))
        return {r: v.cost for r, v in results.items() if v.cost is not None}

    def _settles(self, session: Session, run: RunState) -> bool:
        return session.chargeable and run.event.request_type in CHARGED_TYPES

    @staticmethod
    def _unsettled(run: RunState, err: ChargingError) -> Settled:
        """The account was removed (or the plan changed) mid-call: what was debited stays in
        the ledger; the CDR records it and why it could not be settled."""
        if err.code in (ACCOUNT_NOT_FOUND, *RATING_REFUSALS):
            return Settled(cost=run.cost if run.charges else None, error=err.code)
        raise err

    @staticmethod
    def _cdr_of(session: Session, run: RunState, cause: str, fields: dict[str, Any], total: int,
                settled: Settled) -> Any:
        """The run's CDR, with the extra fields the session gathered (ExtraFields); ``fields``
        is the session's ``start_fields``."""
        event = run.event
        answer_time = event.answer_time
        if answer_time is None and event.setup_time is None:
            # The agent sent no times (e.g. a NAS without Event-Timestamp): the call was
            # rated from when we opened it, so the CDR says so instead of the zero time.
            answer_time = session.started_wall
        return cdr_from_session(event, run.run_id, fields, cause or str(fields.get("DisconnectCause", "")),
                                answer_time, usage=total, cost=settled.cost, cost_source=COST_SOURCE_SESSIONS,
                                cost_details=settled.details, extra_info=settled.error)

    async def _settle_run(self, session: Session, run: RunState, total: int) -> Settled:
        """Exact charge of one run; *rated uses the given Cost, unchargeable runs cost nothing."""
        request_type = run.event.request_type
        if request_type == RATED:
            if run.event.cost is None and session.event.cost is not None:
                run.event.cost = session.event.cost
            return self.billing.rated_cost(run, session.started_wall, total)
        if not session.chargeable or request_type not in CHARGED_TYPES:
            return Settled(cost=Decimal(0))
        try:
            return await self.billing.settle(session.cgrid, run, session.started_wall, total,
                                              extra_ops=[MarkProcessed(charged_key(session.cgrid, run.run_id),
                                                                       str(total))])
        except ChargingError as err:
            return self._unsettled(run, err)

    def remember_closed(self, cgrid: str) -> None:
        self._closed[cgrid] = None
        while len(self._closed) > _CLOSED_MEMORY:
            self._closed.popitem(last=False)

    # --- one-shot charging (engine.sessions.oneshot) ------------------------------------------

    async def process_cdr(self, fields: Mapping[str, Any], opts: Mapping[str, Any] | None = None) -> Reply:
        """Make a CDR per run: rated (unless *rated with Cost), postpaid/unknown prepaid debited;
        a CDR for a session already closed or a CDR already stored changes nothing."""
        return await self.oneshot.process_cdr(fields, opts_of(opts))

    async def process_message(self, fields: Mapping[str, Any], opts: Mapping[str, Any] | None = None, *,
                              debit: bool = True) -> Reply:
        """One-shot charge (SMS, Diameter event): all of the requested units or nothing."""
        return await self.oneshot.process_message(fields, opts_of(opts), debit=debit)

    async def refund(self, fields: Mapping[str, Any], opts: Mapping[str, Any] | None = None) -> Reply:
        """Give back a one-shot charge (Diameter REFUND_ACCOUNT): ``Usage`` units of it, or all."""
        return await self.oneshot.refund(fields, opts_of(opts))

    async def get_cost(self, fields: Mapping[str, Any]) -> Reply:
        """Rating only (no balance changes): cost of Usage from AnswerTime/SetupTime/now."""
        event = self.event_of(fields)
        usage = self.requested(event)
        result = self.billing.price(event, self.start_time(event), usage)
        return Reply(max_usage=usage, cost=result.cost, attributes={"EventCost": result.to_event_cost()})

    # --- inspection and control --------------------------------------------------------------

    def active_sessions(self, filters: Any = None) -> list[dict[str, Any]]:
        """CGRateS ExternalSession dicts, one per run; ``filters`` inline rules or a field mapping."""
        compiled = compile_filters(filters)
        now = self.clock.monotonic()
        out = []
        for session in self._candidates(filters):
            if session.state == CLOSED:
                continue
            for external in self.supervisor.external(session, now):
                if match_all(compiled, external):
                    out.append(external)
        return out

    def _candidates(self, filters: Any) -> list[Session]:
        """Sessions worth matching: one lookup when the filter names the session (agents ask
        "is this call still open?" per request; scanning 100k sessions each time would not do)."""
        if isinstance(filters, Mapping):
            cgrid_value = filters.get(CGRID)
            if not cgrid_value and ORIGIN_ID in filters and ORIGIN_HOST in filters:
                cgrid_value = make_cgrid(str(filters[ORIGIN_ID]), str(filters[ORIGIN_HOST]))
            if cgrid_value:
                found = self.sessions.get(str(cgrid_value))
                return [found] if found is not None else []
        return list(self.sessions.values())

    async def force_disconnect(self, filters: Any, reason: str = CAUSE_FORCED_DISCONNECT) -> int:
        """Close matching sessions (charged for what was used, CDRs written) and tell their agents."""
        compiled = compile_filters(filters)
        now = self.clock.monotonic()
        targets = [s for s in list(self.sessions.values()) if s.state != CLOSED
                   and any(match_all(compiled, e) for e in self.supervisor.external(s, now))]
        results = await asyncio.gather(*(self.supervisor.force_end(s, reason) for s in targets),
                                       return_exceptions=True)
        for session, result in zip(targets, results):
            if isinstance(result, BaseException):
                log.error("force disconnect of %s failed: %s", session.cgrid, result)
        return sum(1 for r in results if r is True)

_ATTR = {ACCOUNT: "account", ORIGIN_ID: "origin_id", "Destination": "destination"}


def _event_of(session: Session) -> ChargingEvent:
    return session.runs[0].event


