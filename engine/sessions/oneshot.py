"""One-shot charging: ProcessCDR, a terminate for a session never seen, ProcessMessage, refunds.

Each whole-call debit commits together with a ``charged:<CGRID>:<RunID>`` key, and each
CDR batch with ``term:<CGRID>``: a CDR or message delivered again (retransmission, an
agent retrying after a crash) is recorded at most once and debited at most once. Those keys
are read before the debit that writes them, so each operation runs inside the call's flight
(``engine.sessions.inflight``): a copy delivered at the same moment waits for the first.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Mapping

from engine.cdrs.model import COST_SOURCE_CDRS, cdr_from_event
from engine.errors import (
    ACCOUNT_DISABLED, ACCOUNT_NOT_FOUND, INSUFFICIENT_CREDIT, NOT_FOUND, ChargingError, mandatory_missing,
)
from engine.event import ACCOUNT, ORIGIN_ID, RATED, ChargingEvent
from engine.reply import Reply
from engine.sessions.billing import RATING_REFUSALS, Settled, charges_from_ledger
from engine.sessions.keys import CHARGED_TYPES, OPT_CHARGEABLE, charged_key, flag, term_key
from engine.sessions.session import RunState
from engine.storage.base import CdrFilter, MarkProcessed

if TYPE_CHECKING:
    from engine.sessions.manager import SessionManager


class OneShot:
    """The one-shot paths of a SessionManager (``m``)."""

    def __init__(self, manager: "SessionManager") -> None:
        self.m = manager

    async def process_cdr(self, fields: Mapping[str, Any], opts: Mapping[str, Any] | None = None) -> Reply:
        """Make a CDR per run: rated (unless *rated with Cost), postpaid/unknown prepaid debited;
        a CDR for a session already closed or a CDR already stored changes nothing."""
        event = self.m.event_of(fields)
        if not event.cgrid:
            raise mandatory_missing("OriginID")
        return await self.m.flights.run(event.cgrid, lambda: self._process_cdr(event, fields, opts or {}))

    async def _process_cdr(self, event: ChargingEvent, fields: Mapping[str, Any], opts: dict[str, Any]) -> Reply:
        """ProcessCDR's work, inside the call's flight."""
        if event.cgrid in self.m.sessions:
            # The agent skipped terminate: this CDR ends the session.
            return await self.m.end_call(event, fields, opts)
        if await self.m.already_closed(event.cgrid):
            return Reply()
        return await self.charge_and_record(event, opts, source=COST_SOURCE_CDRS)

    async def charge_and_record(self, event: ChargingEvent, opts: Mapping[str, Any], *, source: str) -> Reply:
        usage = event.usage if event.usage is not None else (event.total_usage or 0)
        missed = usage <= 0  # never answered: recorded (cost 0) only when store_missed_calls
        runs = self.m.runs_of(event, opts)
        start = self.m.start_time(event)
        existing = {(r.cgrid, r.run_id) for r in await self.m.cdrs.query_rows(CdrFilter(cgrids=(event.cgrid,)))}
        rows = []
        costs: dict[str, Decimal] = {}
        pre_rated = flag(event.extra.get("PreRated"), False)
        for run in runs:
            if (event.cgrid, run.run_id) in existing:
                continue
            if missed:
                if not self.m.config.store_missed_calls:
                    continue
                settled = Settled(cost=Decimal(0))
            elif pre_rated or run.event.request_type == RATED:
                settled = self.m.billing.rated_cost(run, start, usage)
            elif run.event.request_type in CHARGED_TYPES and flag(opts.get(OPT_CHARGEABLE)):
                settled = await self._charge_once(event.cgrid, run, start, usage)
            else:
                settled = Settled(cost=None)
            rows.append(cdr_from_event(run.event, run.run_id, usage=max(0, usage), cost=settled.cost,
                                       cost_source=source, cost_details=settled.details, extra_info=settled.error,
                                       pre_rated=pre_rated or run.event.request_type == RATED))
            if settled.cost is not None:
                costs[run.run_id] = settled.cost
        await self.m.storage.write([*self.m.cdrs.ops_for(rows), MarkProcessed(term_key(event.cgrid), str(usage))])
        self.m.cdrs.committed()
        self.m.remember_closed(event.cgrid)
        return Reply(cost=costs.get(runs[0].run_id), run_cost=costs)

    async def _charge_once(self, cgrid: str, run: RunState, start: datetime, usage: int) -> Settled:
        """Debit a whole call exactly once: the ``charged:`` key commits with the debit."""
        key = charged_key(cgrid, run.run_id)
        if await self.m.storage.get_processed(key) is not None:
            # Charged before a crash (or by ProcessMessage): record, never debit again.
            return self.m.billing.rated_cost(run, start, usage)
        try:
            return await self.m.billing.settle(cgrid, run, start, usage, extra_ops=[MarkProcessed(key, str(usage))])
        except ChargingError as err:
            if err.code in (ACCOUNT_NOT_FOUND, ACCOUNT_DISABLED, *RATING_REFUSALS):
                return Settled(cost=None, error=err.code)
            raise

    async def process_message(self, fields: Mapping[str, Any], opts: Mapping[str, Any] | None = None, *,
                              debit: bool = True) -> Reply:
        """One-shot charge (SMS, Diameter event): all of the requested units or nothing."""
        event = self.m.event_of(fields)
        self.m.need(event, ACCOUNT)
        if not debit:
            return await self.m.authorize(fields, opts)
        if not event.cgrid:
            raise mandatory_missing("OriginID")
        return await self.m.flights.run(event.cgrid, lambda: self._charge_message(event, opts or {}))

    async def _charge_message(self, event: ChargingEvent, opts: Mapping[str, Any]) -> Reply:
        """ProcessMessage's charge, inside the call's flight."""
        requested = self.m.requested(event)
        start = self.m.start_time(event)
        runs = self.m.runs_of(event, opts)
        charged = [r for r in runs if r.prepaid and flag(opts.get(OPT_CHARGEABLE))]
        done = [r for r in charged if await self.m.storage.get_processed(charged_key(event.cgrid, r.run_id))]
        if done:  # a retransmission: answer as before, debit nothing
            return Reply(max_usage=requested, balance=self.m.balance_of(event))
        # Check every run first (pure, no await in between with the debits below).
        for run in charged:
            usage, why = self.m.billing.max_usage(run.event, start, requested)
            if usage < requested:
                return Reply(max_usage=0, reason=why or INSUFFICIENT_CREDIT, balance=self.m.balance_of(event),
                             final_units=True)
        costs: dict[str, Decimal] = {}
        for run in charged:
            await self.m.billing.reserve(event.cgrid, run, start, requested,
                                       extra_ops=[MarkProcessed(charged_key(event.cgrid, run.run_id), str(requested))])
            costs[run.run_id] = run.cost
        return Reply(max_usage=requested, cost=costs.get(runs[0].run_id), run_cost=costs,
                     balance=self.m.balance_of(event))

    async def refund(self, fields: Mapping[str, Any], opts: Mapping[str, Any] | None = None) -> Reply:
        """Give back a one-shot charge (Diameter REFUND_ACCOUNT): ``Usage`` units of it, or all.

        Rebuilt from the ledger, so repeating a refund gives back nothing more."""
        event = self.m.event_of(fields)
        self.m.need(event, ORIGIN_ID, ACCOUNT)
        return await self.m.flights.run(event.cgrid, lambda: self._refund(event, opts or {}))

    async def _refund(self, event: ChargingEvent, opts: Mapping[str, Any]) -> Reply:
        """The refund's work, inside the call's flight."""
        refunded: dict[str, Decimal] = {}
        for run in self.m.runs_of(event, opts):
            charged = await self.m.storage.get_processed(charged_key(event.cgrid, run.run_id))
            if charged is None:
                continue
            view = charges_from_ledger(await self.m.storage.ledger(run.event.tenant, run.event.account),
                                       event.cgrid, run.run_id)
            run.charges = view.charges
            before = sum((c.amount for c in view.charges if c.balance_type == "*monetary"), Decimal(0))
            paid_usage = int(charged or 0)
            back = paid_usage if event.usage is None else min(paid_usage, max(0, event.usage))
            start = self.m.start_time(event)
            await self.m.billing.settle(event.cgrid, run, start, paid_usage - back)
            after = sum((c.amount for c in run.charges if c.balance_type == "*monetary"), Decimal(0))
            refunded[run.run_id] = before - after
        if not refunded:
            raise ChargingError(NOT_FOUND, reason=f"nothing charged for {event.cgrid}")
        first = next(iter(refunded.values()))
        return Reply(max_usage=0, cost=first, run_cost=refunded, balance=self.m.balance_of(event))
