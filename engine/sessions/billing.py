"""The money side of a session run: price, reserve, settle — through AccountService only.

Every debit carries a ledger reference ``(cgrid, run_id, ref)`` so the ledger
alone tells what a session has paid: after a crash, ``charges_from_ledger``
rebuilds each run's charges and ``settle`` (which charges only the difference to
the exact price of the whole call) can then never debit twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Callable, Iterable, Sequence

from engine.accounts.debit import BalanceCharge, net_by_balance
from engine.accounts.actions import LedgerRef
from engine.cdrs.details import cost_details
from engine.errors import ACCOUNT_NOT_FOUND, INSUFFICIENT_CREDIT, RATING_PLAN_NOT_FOUND, UNAUTHORIZED_DESTINATION, ChargingError
from engine.event import VOICE, ChargingEvent
from engine.rating.rater import RatingRequest
from engine.sessions.session import RunState

# Ledger ``ref`` prefixes written by sessions.
REF_DEBIT = "debit"
REF_SETTLE = "settle"
REF_REFUND = "refund"

# Rating failures that refuse a call (reply MaxUsage 0 with this reason).
RATING_REFUSALS = frozenset({UNAUTHORIZED_DESTINATION, RATING_PLAN_NOT_FOUND})


@dataclass(slots=True)
class Settled:
    """Outcome of charging a whole run: money it cost and the CGRateS EventCost (a dict, or
    its JSON as ``msgspec.Raw``: see ``engine.cdrs.details``)."""

    cost: Decimal | None
    details: Any = None
    error: str = ""


def piece_request(event: ChargingEvent, start: datetime, usage: int, offset: int = 0,
                  cost_so_far: Decimal = Decimal(0)) -> RatingRequest:
    """The rating request for ``usage`` starting ``offset`` into a call that began at ``start``."""
    when = start + timedelta(microseconds=offset // 1000) if event.tor == VOICE and offset else start
    # positional, in RatingRequest's field order (tenant, category, subject, destination,
    # start, usage, tor, offset, cost_so_far): built about three times per session
    return RatingRequest(event.tenant, event.category, event.subject, event.destination, when,
                         usage, event.tor, offset, cost_so_far)


class Billing:
    """Thin policy over AccountService and the current Rater for session runs."""

    def __init__(self, accounts: Any, rater: Callable[[], Any], storage: Any) -> None:
        self.accounts = accounts
        self.rater = rater
        self.storage = storage

    def account(self, event: ChargingEvent) -> Any:
        account = self.accounts.get(event.tenant, event.account)
        if account is None:
            raise ChargingError(ACCOUNT_NOT_FOUND, reason=f"no account {event.tenant}:{event.account}")
        return account

    def max_usage(self, event: ChargingEvent, start: datetime, requested: int, *, offset: int = 0,
                  cost_so_far: Decimal = Decimal(0)) -> tuple[int, str]:
        """What the account can afford of ``requested`` now, and why it is less (pure)."""
        account = self.account(event)
        plan = self.accounts.plan_debit(account, piece_request(event, start, requested, offset, cost_so_far),
                                        partial=True)
        usage = plan.usage  # an int
        return (usage if usage < requested else requested), plan.reason

    async def reserve(self, cgrid: str, run: RunState, start: datetime, usage: int,
                      extra_ops: Sequence[Any] = (),
                      persist: Callable[[], Sequence[Any]] | None = None) -> tuple[int, str]:
        """Debit the next ``usage`` of a prepaid run (or what is affordable of it).

        Returns (granted, reason). Reservations ARE debits, so every other session
        on the account sees them at once. The grant is planned first and the ledger
        reference records it (``debit:<seq>:<usage>``), so the ledger alone can
        rebuild a run after a crash; planning and debiting happen without an
        ``await`` in between, so the debit takes exactly the planned grant.

        A grant that costs nothing (past MaxCost ``*free``, a free rate) moves no balance and
        so leaves no ledger row: ``persist`` (the session snapshot as it is now) is then
        written instead, or a restart would rebuild the run with less usage than it holds."""
        if usage <= 0:
            return 0, ""
        account = self.account(run.event)
        req = piece_request(run.event, start, usage, run.reserved, run.cost)
        plan = self.accounts.plan_debit(account, req, partial=True)
        granted = plan.usage if plan.usage < usage else usage  # a plan's usage is an int
        if granted <= 0:
            if extra_ops:
                await self.storage.write(list(extra_ops))
            return 0, plan.reason or INSUFFICIENT_CREDIT
        seq = run.debits + 1
        planned = plan  # the plan of ``req``: the debit applies it instead of planning again
        if granted < usage:
            req = piece_request(run.event, start, granted, run.reserved, run.cost)
            planned = None
        granted, req, planned = self._whole_increments(account, run, start, granted, req, plan, planned)
        done = await self.accounts.debit(account, req, partial=True, extra_ops=extra_ops, plan=planned,
                                         ref=LedgerRef("session debit", cgrid, run.run_id,
                                                       f"{REF_DEBIT}:{seq}:{granted}"))
        run.debits = seq
        run.reserved += granted
        run.cost += done.cost  # a plan's cost is a Decimal
        # kept netted per balance: a 3h call of 30s slices stays one entry per balance
        run.charges = list(net_by_balance([*run.charges, *done.parts]).values())
        if persist is not None and not _moves_money(done.parts):
            await self.storage.write(list(persist()))
        return granted, plan.reason

    def _whole_increments(self, account: Any, run: RunState, start: datetime, granted: int, req: Any,
                          plan: Any, planned: Any) -> tuple[int, Any, Any]:
        """Extend a grant to the end of the increment it pays for (CGRateS ExtraDuration).

        A 30 s slice of a rate billed per 60 s increment pays for 60 s; recording only 30 s
        would make the next slice pay for the same minute again and cut a low-balance
        call early. The extension costs nothing more, which is checked (pure) here.
        Returns the grant, its request and the plan of that request (``planned`` when the
        grant stays, the check's plan when it is extended; None: plan it again)."""
        if plan.unit_usage or plan.rating is None:
            return granted, req, planned
        try:
            paid = int(self.rater().rate(req).rated_usage)
        except ChargingError:
            return granted, req, planned
        if paid <= granted:
            return granted, req, planned
        longer = piece_request(run.event, start, paid, run.reserved, run.cost)
        check = self.accounts.plan_debit(account, longer, partial=True)
        if int(check.usage) >= paid and Decimal(check.cost) == Decimal(plan.cost):
            return paid, longer, check
        return granted, req, planned

    async def settle(self, cgrid: str, run: RunState, start: datetime, total: int,
                     extra_ops: Sequence[Any] = (), extra_ops_for: Any = None) -> Settled:
        """Charge the run exactly for ``total`` usage: refund or debit the difference to what
        it paid (postpaid: it paid nothing yet, so the whole call is debited)."""
        account = self.account(run.event)
        whole = piece_request(run.event, start, total)
        result = await self.accounts.settle(account, whole, list(run.charges),
                                            LedgerRef("session settle", cgrid, run.run_id, f"{REF_SETTLE}:{total}"),
                                            extra_ops=extra_ops, extra_ops_for=extra_ops_for)
        run.charges = list(result.plan.parts)
        cost = result.cost  # the plan's Decimal (immutable: shared, not copied)
        run.cost = cost
        run.reserved = total
        if extra_ops_for is not None:
            return Settled(cost)
        return Settled(cost, event_cost_of(result.plan, cgrid, run.run_id))

    def rated_cost(self, run: RunState, start: datetime, usage: int) -> Settled:
        """Cost of a run without any debit: the given Cost (``*rated``), else the rater's price."""
        if run.event.cost is not None:
            return Settled(cost=run.event.cost)
        try:
            result = self.price(run.event, start, usage)
        except ChargingError as err:
            return Settled(cost=None, error=err.code)
        return Settled(cost=result.cost, details=cost_details(result, run.event.cgrid, run.run_id))

    def price(self, event: ChargingEvent, start: datetime, usage: int) -> Any:
        """Rate only (GetCost, *rated checks): the rater's CostResult."""
        return self.rater().rate(piece_request(event, start, usage))


def _moves_money(parts: Sequence[BalanceCharge]) -> bool:
    """Some part changes a balance (asked after every slice: a loop, not ``any()`` over a
    generator)."""
    for part in parts:
        if part.amount:
            return True
    return False


def event_cost_of(plan: Any, cgrid: str, run_id: str) -> Any:
    """CGRateS EventCost of what a plan rated (None when unit balances paid all of it), for a
    CDR's CostDetails: raw JSON once the price was rendered (``engine.cdrs.details``)."""
    rating = getattr(plan, "rating", None)
    if rating is None or not hasattr(rating, "to_event_cost"):
        return None
    return cost_details(rating, cgrid, run_id)


@dataclass(slots=True)
class LedgerView:
    """What one run paid according to the ledger (the truth after a crash)."""

    charges: list[BalanceCharge]
    debits: int = 0          # highest debit sequence number seen
    reserved: int = 0        # usage those debits granted
    settled_usage: int | None = None  # total usage of a settle already applied


def charges_from_ledger(entries: Iterable[Any], cgrid: str, run_id: str) -> LedgerView:
    """Rebuild a run from its ledger rows. Ledger amounts are signed from the balance's
    side (a debit is negative); a charge is the opposite. Unit balances carry usage 1:1."""
    view = LedgerView(charges=[])
    grants: dict[str, int] = {}
    for e in entries:
        if e.cgrid != cgrid or e.run_id != run_id:
            continue
        kind, _, rest = e.ref.partition(":")
        if kind == REF_DEBIT:
            seq, _, usage = rest.partition(":")
            grants[seq] = int(usage or 0)
        elif kind == REF_SETTLE:
            view.settled_usage = int(rest or 0)
        amount = -Decimal(e.amount)
        usage_part = int(amount) if e.balance_type != "*monetary" else 0
        view.charges.append(BalanceCharge(e.balance_uuid, e.balance_id, e.balance_type, amount, usage=usage_part))
    view.debits = max((int(seq) for seq in grants if seq.isdigit()), default=0)
    view.reserved = sum(grants.values())
    return view
