"""Pure debit planning: which balances pay for a piece of usage, and how much.

No I/O and no mutation: ``plan_debit`` only reads an account and asks the
rater, so the service can run it, check the result and apply it in the same
synchronous step (nothing can interleave between the check and the change),
and ``settle`` can run it on a copy of the account as a "what if" to compute
the exact charge of a whole call.

Order, as in CGRateS: usable unit balances of the request's ToR first (highest
weight first, honouring destination and category filters; a unit balance pays
usage 1:1), then the rest of the usage is rated and paid from monetary balances
by weight (without allow_negative, only up to the net of the usable monetary balances:
a debt on one is paid before another buys usage). A ``blocker`` balance stops the
fall-through to later balances. A unit balance with a ``*zero<step>`` rating subject is
consumed in whole steps (minute bundles).
"""

from __future__ import annotations

import dataclasses
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from operator import attrgetter
from typing import Any, Protocol

from engine.accounts.model import ANY, DEFAULT_BALANCE_ID, MONETARY, VOICE, Account, Balance
from engine.errors import ACCOUNT_DISABLED, INSUFFICIENT_CREDIT, INVALID_ARGUMENT, ChargingError
from engine.fastinit import fast_init
from engine.units import parse_duration

REASON_INSUFFICIENT_CREDIT = INSUFFICIENT_CREDIT
_ZERO = Decimal(0)   # Decimals are immutable: one shared zero spares a construction per use


class RaterLike(Protocol):
    """What planning needs from ``engine.rating.rater.Rater``."""

    def rate(self, req: Any) -> Any: ...                        # -> CostResult (.cost)
    def max_affordable(self, req: Any, credit: Decimal | None) -> Any: ...  # .usage .cost .reason
    def destination_ids(self, number: str) -> frozenset[str]: ...


@fast_init
@dataclass(frozen=True, slots=True)
class BalanceCharge:
    """What one balance pays: ``amount`` in the balance's units (negative = given back).

    ``usage`` is the part of the request this balance covers (unit balances). ``create``
    marks a ``*default`` monetary balance that does not exist yet (an ``allow_negative``
    account with no monetary balance goes into debt on it).
    """

    balance_uuid: str
    balance_id: str
    balance_type: str
    amount: Decimal
    usage: int = 0
    create: bool = False


@dataclass(slots=True)
class DebitPlan:
    """The charge for one piece of usage. ``cost`` is the money part (monetary balances);
    ``unit_usage`` what unit balances covered; ``reason`` why ``usage`` is below the request."""

    usage: int
    cost: Decimal
    parts: list[BalanceCharge] = field(default_factory=list)
    reason: str = ""
    unit_usage: int = 0
    # What the rater said about the money part: a CostResult (``partial=False``, settle),
    # an Affordable (``partial=True``), or None when unit balances paid everything.
    rating: Any = None
    # What the plan was computed from, set by AccountService.plan_debit: (account, its
    # version, request, rater, partial). ``debit(plan=...)`` applies the plan only while
    # all of them are still the same objects, else it plans again.
    basis: tuple[Any, ...] | None = field(default=None, repr=False, compare=False)

    @property
    def monetary(self) -> Decimal:
        return sum((p.amount for p in self.parts if p.balance_type == MONETARY), Decimal(0))


def plan_debit(account: Account, req: Any, rater: RaterLike | None, *, partial: bool,
               force: bool = False) -> DebitPlan:
    """Plan the charge of ``req`` (a RatingRequest) on ``account``.

    ``partial=True``: the largest affordable usage (increment-granular) with the reason
    it is short; rating errors become the reason too. ``partial=False``: all of it, or
    ``ChargingError(INSUFFICIENT_CREDIT)``. ``force=True`` (settling usage already
    consumed): all of it, the shortfall going negative on the top monetary balance.
    """
    if account.disabled:
        raise ChargingError(ACCOUNT_DISABLED)
    when = req.start
    usage = int(req.usage)
    if usage < 0:
        raise ChargingError(INVALID_ARGUMENT, f"negative usage {usage}")
    parts: list[BalanceCharge] = []
    dest_cache: list[frozenset[str]] = []  # the call's destination ids, looked up if a filter needs them

    covered = 0
    blocked = False
    units = account.balances.get(req.tor) if req.tor != MONETARY else None
    if units:
        for b in _by_weight(units):
            if covered >= usage:
                break
            if b.disabled or (b.expiry is not None and b.expiry <= when):  # Balance.usable_at
                continue
            if (b.categories or b.timing_ids or b.destination_ids) and not _filters_allow(
                    b, req, rater, when, dest_cache):
                continue
            take, consumed = _unit_take(b, usage - covered)
            if take > 0:
                parts.append(BalanceCharge(b.uuid, b.id, b.type, Decimal(consumed), usage=take))
                covered += take
            if b.blocker and covered < usage:
                blocked = True
                break

    remaining = usage - covered
    if remaining == 0 and covered > 0:
        return DebitPlan(usage=usage, cost=Decimal(0), parts=parts, unit_usage=covered)

    # The usable monetary balances by weight, up to and including the first blocker.
    payers: list[Balance] = []
    for b in _by_weight(account.balances.get(MONETARY, ())):
        if b.disabled or (b.expiry is not None and b.expiry <= when):  # Balance.usable_at
            continue
        if (b.categories or b.timing_ids or b.destination_ids) and not _filters_allow(
                b, req, rater, when, dest_cache):
            continue
        payers.append(b)
        if b.blocker:
            break
    if blocked and not force:
        return _short(covered, parts, partial)

    rest = _advance(req, covered, remaining)
    unlimited = account.allow_negative or force
    credit: Decimal | None = None
    if not unlimited:
        # A debt on one balance is paid before new usage: the credit is the net of the usable
        # monetary balances, negative ones included, and nothing while that net is below zero.
        credit = _ZERO
        for b in payers:
            credit += b.value
        if credit < 0:
            credit = _ZERO
    if rater is None:
        raise ChargingError(INSUFFICIENT_CREDIT, reason="no rater to price the usage")
    if partial:
        try:
            aff = rater.max_affordable(rest, credit)
        except ChargingError as err:
            return DebitPlan(usage=covered, cost=Decimal(0), parts=parts, reason=err.code,
                             unit_usage=covered)
        # an Affordable holds an int and a Decimal already: no int()/Decimal() copies
        paid_usage, cost, reason, rating = aff.usage, aff.cost, aff.reason, aff
    else:
        result = rater.rate(rest)
        paid_usage, cost, reason, rating = remaining, result.cost, "", result
        if credit is not None and cost > credit:
            raise ChargingError(INSUFFICIENT_CREDIT,
                                reason=f"costs {cost}, {account.key} can pay {credit}")
    parts.extend(_pay(account, payers, cost, unlimited))
    # positional, in DebitPlan's field order (usage, cost, parts, reason, unit_usage, rating):
    # built for every plan, about four per call
    return DebitPlan(covered + paid_usage, cost, parts, reason, covered, rating)


def _filters_allow(b: Balance, req: Any, rater: Any, when: datetime,
                   dest_cache: list[frozenset[str]]) -> bool:
    """The balance's category, timing and destination filters admit the request. Callers
    skip the call for a balance without filters (the common case: it runs per balance of
    every plan); the call's destination ids are looked up once per plan, and only if a
    balance filters on them."""
    if b.categories and not b.matches_category(req.category):
        return False
    if b.timing_ids and not timing_active(b.timing_ids, rater, when):
        return False
    if not b.destination_ids or not b.has_destination_filter:
        return True
    if not dest_cache:
        dest_cache.append(rater.destination_ids(req.destination) if rater else frozenset())
    return b.matches_destination(dest_cache[0])


def timing_active(timing_ids: frozenset[str], rater: Any, when: datetime) -> bool:
    """A balance with TimingIDs (e.g. weekend minutes) is usable only while one of those
    Timings.csv rows is active: its years/months/month days/week days match the local date
    and the local time is at or after its start (until midnight), as CGRateS evaluates them.
    Unknown timing ids never match; ``*any`` always does."""
    if ANY in timing_ids:
        return True
    plan = getattr(rater, "plan", None)
    timings = getattr(plan, "timings", None) or {}
    local = when.astimezone(getattr(rater, "tz", None) or timezone.utc)
    for timing_id in timing_ids:
        t = timings.get(timing_id)
        if t is None:
            continue
        if t.years and local.year not in t.years and local.year % 100 not in t.years:
            continue
        if t.months and local.month not in t.months:
            continue
        if t.month_days and local.day not in t.month_days:
            continue
        if t.week_days and local.isoweekday() % 7 not in t.week_days:
            continue
        if _seconds_of_day(t.start_time) <= local.hour * 3600 + local.minute * 60 + local.second:
            return True
    return False


def _seconds_of_day(text: str) -> int:
    if not text or text.startswith("*"):
        return 0
    parts = [int(p) for p in text.split(":")] + [0, 0]
    return parts[0] * 3600 + parts[1] * 60 + parts[2]


def zero_increment(rating_subject: str) -> int:
    """Increment of a CGRateS ``*zero<duration>`` rating subject on a unit balance
    (``*zero1s``, ``*zero60s``, ``*zero1024`` for data); 1 (exact) otherwise."""
    if not rating_subject.startswith("*zero"):
        return 1
    try:
        step = parse_duration(rating_subject[len("*zero"):])
    except ChargingError:
        return 1
    return step if step > 0 else 1


def _unit_take(b: Balance, need: int) -> tuple[int, int]:
    """(usage covered, units consumed) of a unit balance: 1:1, or whole increments of its
    ``*zeroX`` rating subject (a 61 s call on ``*zero60s`` minutes consumes 120 s)."""
    available = int(max(b.value, Decimal(0)))
    step = zero_increment(b.rating_subject)
    if step == 1:
        take = min(need, available)
        return take, take
    steps = min(available // step, -(-need // step))
    consumed = steps * step
    return min(need, consumed), consumed


def _short(covered: int, parts: list[BalanceCharge], partial: bool) -> DebitPlan:
    if not partial:
        raise ChargingError(INSUFFICIENT_CREDIT, reason="a blocker balance stops the debit")
    return DebitPlan(usage=covered, cost=Decimal(0), parts=parts,
                     reason=REASON_INSUFFICIENT_CREDIT, unit_usage=covered)


_weight = attrgetter("weight")


def _by_weight(balances: Any) -> list[Balance]:
    # stable: equal weights keep creation order, as CGRateS keeps insertion order
    if len(balances) < 2:
        return list(balances)
    return sorted(balances, key=_weight, reverse=True)


def _advance(req: Any, covered: int, remaining: int) -> Any:
    """The request for what unit balances left: later start (voice) and a larger offset,
    so the rater picks the right rate group and charges no second connect fee."""
    if covered == 0:
        return req
    start = req.start + timedelta(microseconds=covered // 1000) if req.tor == VOICE else req.start
    return dataclasses.replace(req, start=start, usage=remaining, offset=req.offset + covered)


def _pay(account: Account, payers: list[Balance], cost: Decimal, unlimited: bool) -> list[BalanceCharge]:
    """Split ``cost`` over ``payers`` by weight; a shortfall (only when ``unlimited``) goes
    negative on the highest-weight balance, or on a new ``*default`` one."""
    parts: list[BalanceCharge] = []
    left = cost
    for b in payers:
        if left <= 0:
            break
        value = b.value
        if value <= 0:  # nothing to take (a debt is not spent further)
            continue
        take = value if value < left else left  # min(left, value): left when equal
        parts.append(BalanceCharge(b.uuid, b.id, b.type, take))
        left -= take
    if left > 0:
        if not unlimited:
            raise ChargingError(INSUFFICIENT_CREDIT, reason=f"{account.key} is short of {left}")
        if payers:
            top = payers[0]
            for i, p in enumerate(parts):
                if p.balance_uuid == top.uuid:
                    parts[i] = dataclasses.replace(p, amount=p.amount + left)
                    break
            else:
                parts.append(BalanceCharge(top.uuid, top.id, top.type, left))
        else:
            parts.append(BalanceCharge(str(uuidlib.uuid4()), DEFAULT_BALANCE_ID, MONETARY, left,
                                       create=True))
    return parts


def net_by_balance(parts: list[BalanceCharge]) -> dict[str, BalanceCharge]:
    """Sum charges per balance uuid (amount and usage), keeping the first part's identity."""
    out: dict[str, BalanceCharge] = {}
    for p in parts:
        prev = out.get(p.balance_uuid)
        if prev is None:
            out[p.balance_uuid] = p
        else:
            out[p.balance_uuid] = BalanceCharge(prev.balance_uuid, prev.balance_id, prev.balance_type,
                                                prev.amount + p.amount, prev.usage + p.usage,
                                                prev.create)
    return out
