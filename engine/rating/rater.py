"""Rating with CGRateS rules: who pays what for a piece of usage, and how much usage a credit buys.

Pipeline per request (integer arithmetic on prices scaled to be whole, no per-increment objects):
1. rating profile ``tenant:category:subject`` (``*any`` subject if the subject has none active),
   RatesFallbackSubject up to depth 3; calls crossing an ActivationTime are split there;
2. longest-prefix destination match inside the plan, counting only destinations with a binding
   active at the start (the heaviest wins when several share the prefix), else the plan's
   ``*any`` DestinationRates;
3. voice is cut where the winning binding changes (timing starts, midnight): highest Weight,
   then the most recently started timing, then the lower price; other ToRs use the binding
   active at the start for the whole usage;
4. each span is cut at rate-group starts (GroupIntervalStart measured from the call start,
   ``RatingRequest.offset`` included) and charged ``ceil(len / RateIncrement)`` increments;
   an increment overhanging the span covers the start of the next one, as in CGRateS;
5. connect fee once (offset 0, first span's slot), MaxCost, then the DestinationRate rounding
   on the total.

A piece of a call (``offset > 0``) is priced as the difference of the call's cumulative rounded
totals: ``C(offset + usage) - C(offset)``, the call rated from its start (``start - offset`` for
voice). Pieces therefore add up exactly to the whole call, rounding, MaxCost and connect fee
included, so a prepaid call that the slices let run can always be settled within what they took.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from fractions import Fraction
from functools import partial
from operator import attrgetter
from typing import Any, NamedTuple

from engine.errors import (
    INSUFFICIENT_CREDIT,
    INVALID_ARGUMENT,
    RATING_PLAN_NOT_FOUND,
    UNAUTHORIZED_DESTINATION,
    ChargingError,
)
from engine.event import VOICE
from engine.fastinit import fast_init
from engine.memo import remember
from engine.rating.compiled import DAY_NS, Binding, CompiledPlan, CompiledSlot
from engine.rating.event_cost import build_event_cost
from engine.rating.rounding import max_scaled_within, round_scaled, to_decimal
from engine.tariffplan.model import (
    ANY,
    MAX_COST_DISCONNECT,
    MAX_COST_FREE,
    DestinationRate,
    RateSlot,
    TariffPlan,
    profile_key,
)
from engine.units import SECOND

MAX_COST = "MAX_COST"
FALLBACK_DEPTH = 3
MATCH_CACHE_SIZE = 100_000
RESULT_CACHE_SIZE = 2048
SHAPE_CACHE_SIZE = 4096
_ONE_DAY = timedelta(days=1)
_ONE_MICROSECOND = timedelta(microseconds=1)
# In a ``_compute`` trail: the price depends on the time of day/date (a timed destination
# match, a timeline with more than one binding, a call cut by an activation time).
_TIMED = None
# Rater._shapes entry of a shape whose price depended on the clock: see Rater._results.
_CLOCKED: tuple[None, None, None] = (None, None, None)


@fast_init
@dataclass(frozen=True, slots=True)
class RatingRequest:
    """One piece of usage to rate (a whole call, or one debit interval of it)."""

    tenant: str
    category: str
    subject: str
    destination: str
    start: datetime          # absolute time of the first unit of this piece
    usage: int               # ns (voice) / bytes (data) / units (sms) for this piece
    tor: str = VOICE
    offset: int = 0          # usage already rated earlier in the same call (picks rate groups;
                             # connect fee only when offset == 0); the call began at
                             # start - offset (voice) and the piece costs C(offset+usage) - C(offset)
    cost_so_far: Decimal = Decimal(0)   # informational: MaxCost and rounding count the call from
                                        # its start (derived from offset), not from this figure


@fast_init
@dataclass(frozen=True, slots=True)
class Match:
    """Which rating plan and destination priced a part of the call."""

    subject_key: str
    rating_plan_id: str
    destination_id: str
    prefix: str
    bindings: tuple[Binding, ...]


class Charge(NamedTuple):
    """A run of equal increments in one rate slot (CGRateS ChargingInterval, compressed).

    Money fields ending in ``_scaled`` are integers in units of ``1 / scale``. A named tuple,
    immutable like the other rating answers: every priced piece builds a few of these, and a
    tuple is built several times faster than a frozen dataclass (see ``_charge``).
    """

    start: datetime
    offset: int                # into the whole call, where these increments start
    increments: int
    increment: int             # size of one increment (ns or units)
    unit_scaled: int           # one increment (rounded per increment in compat mode)
    raw_scaled: int            # increments * unit_scaled
    charged_scaled: int        # after MaxCost *free
    scale: int
    binding: Binding
    match: Match

    def __repr__(self) -> str:
        return (f"Charge(start={self.start!r}, offset={self.offset!r}, increments={self.increments!r}, "
                f"increment={self.increment!r}, unit_scaled={self.unit_scaled!r}, "
                f"raw_scaled={self.raw_scaled!r}, charged_scaled={self.charged_scaled!r}, scale={self.scale!r})")

    @property
    def usage(self) -> int:
        return self.increments * self.increment

    @property
    def increment_cost(self) -> Fraction:
        return Fraction(self.unit_scaled, self.scale)

    @property
    def raw_cost(self) -> Fraction:
        return Fraction(self.raw_scaled, self.scale)

    @property
    def charged_cost(self) -> Fraction:
        return Fraction(self.charged_scaled, self.scale)

    @property
    def cost(self) -> Decimal:
        return to_decimal(self.charged_cost)

    @property
    def slot(self) -> RateSlot:
        return self.binding.slots[self.binding.slot_index(self.offset)].slot

    @property
    def rates_id(self) -> str:
        return self.binding.rate.id

    @property
    def destination_rate(self) -> DestinationRate:
        return self.binding.destination_rate

    @property
    def timing_id(self) -> str:
        return self.binding.timing.id


# Charge((start, offset, ...)) without the generated __new__'s argument handling (hot path).
_charge = partial(tuple.__new__, Charge)


@fast_init
@dataclass(frozen=True, slots=True)
class Affordable:
    """Answer of ``max_affordable``: how much of the request a credit buys, and why not more."""

    usage: int
    cost: Decimal
    reason: str = ""         # "" | INSUFFICIENT_CREDIT | MAX_COST


class Cumulative(NamedTuple):
    """The call from its start up to a point ``x``: ``C(x)`` and what extending it needs.

    ``raw`` is the exact total so far in ``1/scale`` units (connect fee and MaxCost *free
    included); ``rule`` the DestinationRate whose rounding applies (CGRateS GetLongestRounding:
    the most RoundingDecimals among the charges so far; None before any charge);
    ``cost_floor`` what the call had already reached under a coarser rule, so ``C`` never
    decreases when a finer rule takes over; ``cost`` is ``C(x)``.
    """

    raw: int
    cost: Decimal
    rule: DestinationRate | None
    cost_floor: Decimal


class Priced(NamedTuple):
    """What a piece of usage costs, apart from who asked: every CostResult field but ``request``.

    The Rater shares one Priced between the CostResults of all the requests it answers (equal
    shapes at other starts, other numbers of the same destination match); ``charges`` carry
    the start times of the call that began ``start`` (minus the offset for voice). A named
    tuple (built once per computed price, see ``_priced_of``); compare CostResults, not these
    (``rendered`` is a cache).
    """

    start: datetime            # ``request.start`` of the request this was computed for
    cost: Decimal
    usage: int
    rated_usage: int           # usage covered by the charged increments (>= usage)
    connect_fee: Decimal
    rating_plan_id: str
    destination_id: str
    prefix: str
    subject_key: str
    charges: tuple[Charge, ...]
    max_cost_reached: bool
    raw_scaled: int            # before rounding (after MaxCost *free), in 1/scale units
    scale: int
    rounding_method: str
    rounding_decimals: int
    cgrates_compat: bool
    disconnect_exceeded: bool
    prior: Cumulative          # the call before this piece (``C(offset)``): read by max_affordable
    # What to_event_cost rendered once (EventCosts of one Priced differ only in CGRID,
    # RunID and StartTime).
    rendered: list[bytes]


# Priced((start, cost, ...)) without the generated __new__'s argument handling (hot path).
_priced_of = partial(tuple.__new__, Priced)


# CostResult reads these from its Priced (one property each, defined below the class).
_PRICED_FIELDS = ("cost", "usage", "rated_usage", "connect_fee", "rating_plan_id", "destination_id",
                  "prefix", "subject_key", "max_cost_reached", "raw_scaled", "scale", "rounding_method",
                  "rounding_decimals", "cgrates_compat", "disconnect_exceeded", "prior", "rendered")
_COMPARED_FIELDS = tuple(name for name in _PRICED_FIELDS if name != "rendered")
_REPR_FIELDS = ("cost", "usage", "rated_usage", "connect_fee", "rating_plan_id", "destination_id", "prefix",
                "subject_key", "max_cost_reached", "raw_scaled", "scale", "rounding_method",
                "rounding_decimals", "cgrates_compat")


class CostResult:
    """The priced request; ``cost`` is rounded per the DestinationRate, the rest is the breakdown.

    Immutable. Its fields are those of its ``priced`` (shared with the other answers of the
    same price) plus the caller's ``request``; ``charges`` are moved to ``request.start``
    when first read (most callers read only the cost), so answering a request from a kept
    price builds three slots, not twenty fields and a tuple of charges.
    """

    __slots__ = ("_charges", "priced", "request")

    request: RatingRequest
    priced: Priced
    # the fields of Priced, as read-only properties (see _PRICED_FIELDS)
    cost: Decimal
    usage: int
    rated_usage: int
    connect_fee: Decimal
    rating_plan_id: str
    destination_id: str
    prefix: str
    subject_key: str
    max_cost_reached: bool
    raw_scaled: int
    scale: int
    rounding_method: str
    rounding_decimals: int
    cgrates_compat: bool
    disconnect_exceeded: bool
    prior: Cumulative
    rendered: list[bytes]

    def __init__(self, request: RatingRequest, priced: Priced) -> None:
        _set_request(self, request)
        _set_priced(self, priced)
        _set_charges(self, priced.charges if request.start is priced.start else None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"CostResult is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"CostResult is immutable: cannot delete {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (CostResult, (self.request, self.priced))

    @property
    def charges(self) -> tuple[Charge, ...]:
        """The charges, their start times those of this request's call."""
        charges = self._charges
        if charges is None:
            priced = self.priced
            shift = self.request.start - priced.start
            charges = priced.charges
            if shift:
                charges = tuple([_charge((c.start + shift,) + c[1:]) for c in charges])
            _set_charges(self, charges)
        return charges

    def _view(self) -> tuple[Any, ...]:
        """What equality and hashing compare: the request, its charges and the price fields."""
        priced = self.priced
        return (self.request, self.charges, *(getattr(priced, name) for name in _COMPARED_FIELDS))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CostResult):
            return NotImplemented
        return self._view() == other._view()

    def __hash__(self) -> int:
        return hash(self._view())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self.priced, name)!r}" for name in _REPR_FIELDS)
        return f"CostResult({shown})"

    @property
    def raw_cost(self) -> Fraction:
        """The exact cost before the DestinationRate rounding."""
        return Fraction(self.raw_scaled, self.scale)

    @property
    def unrounded_cost(self) -> Decimal:
        return to_decimal(self.raw_cost)

    def to_event_cost(self, cgrid: str = "", run_id: str = "") -> dict[str, Any]:
        """The CGRateS EventCost JSON shape (what GetCost returns and CDRs carry as CostDetails)."""
        return build_event_cost(self, cgrid, run_id)


for _name in _PRICED_FIELDS:
    setattr(CostResult, _name, property(attrgetter(f"priced.{_name}")))
del _name
_set_request = CostResult.__dict__["request"].__set__
_set_priced = CostResult.__dict__["priced"].__set__
_set_charges = CostResult.__dict__["_charges"].__set__


def _ns(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * SECOND + delta.microseconds * 1_000


def _after(start: datetime, ns: int) -> datetime:
    return start + _delta(ns)


def _delta(ns: int) -> timedelta:
    """``ns`` as a timedelta (microsecond precision, truncated). Remembered: the same few
    offsets (rate group starts, debit slices) recur in every call, and building a timedelta
    costs more than the addition it is for. Bounded; cleared when full."""
    delta = _DELTAS.get(ns)
    if delta is None:
        delta = remember(_DELTAS, _DELTAS_MAX, ns, timedelta(0, 0, ns // 1_000))
    return delta


_DELTAS: dict[int, timedelta] = {}
_DELTAS_MAX = 4096


class Rater:
    """Rates requests against one compiled tariff plan. Immutable; build a new one per plan load.

    ``cgrates_compat`` rounds each increment's price *middle to ``compat_decimals``
    (CGRateS ``general.rounding_decimals``, 5 by default) before multiplying, so bills
    match a CGRateS installation; the default is exact. ``tz`` is the zone Timings.csv
    wall-clock times are read in (CGRateS uses ``general.default_timezone``).
    """

    def __init__(self, plan: TariffPlan, *, cgrates_compat: bool = False,
                 compat_decimals: int = 5, tz: tzinfo = timezone.utc) -> None:
        self.plan = plan
        self.cgrates_compat = cgrates_compat
        self.tz = tz
        fixed = tz.utcoffset(None)   # None for zones with daylight saving (zoneinfo)
        self._fixed_offset = None if fixed is None else _ns(fixed)
        self._c = CompiledPlan(plan, compat_decimals)
        # (profile key, activation index, number) -> Match, for matches that hold at any
        # instant. The plan is immutable and a new plan gets a new Rater, so the cache
        # never outlives the data it came from; it is bounded by clearing when full.
        self._matches: dict[tuple[str, int, str], Match] = {}
        self._same_matches: dict[tuple[str, str, str, str], Match] = {}
        # (id of an all-day Match, tor, usage, offset) -> (that Match, an answer priced by it)
        self._by_match: dict[tuple[int, str, int, int], tuple[Match, CostResult]] = {}
        # see _priced: answers that hold for any start in a window, and answers for one start
        self._shapes: dict[tuple[Any, ...], tuple[datetime | None, datetime | None, CostResult]] = {}
        self._results: dict[RatingRequest, CostResult] = {}

    # --- public API ------------------------------------------------------------------

    def destination_ids(self, number: str) -> frozenset[str]:
        """Destination ids matching ``number`` by any prefix (for balance destination filters)."""
        return self._c.destination_ids(number)

    def rate(self, req: RatingRequest) -> CostResult:
        """Price ``req``. Raises ChargingError RATING_PLAN_NOT_FOUND / UNAUTHORIZED_DESTINATION."""
        return self._rated(req)

    def _rated(self, req: RatingRequest) -> CostResult:
        """The answer to hand out for ``req``: ``_priced`` re-based onto ``req`` itself."""
        return _rebased(self._priced(req), req)

    def _priced(self, req: RatingRequest) -> CostResult:
        """``_compute`` remembered: a session prices the same piece several times (authorize,
        then initiate's plan, grant check and debit; terminate's preview and settle), and calls
        of the same subject, destination and length differ only in their start.

        The Rater and its plan are immutable, so the answer is a function of the request. Most
        answers do not depend on the start at all (one all-day rate, no activation time near):
        ``_compute`` then reports the window of starts it holds for, and the answer is kept
        per shape (the request without its start and ``cost_so_far``, which is informational)
        and re-based for any start in that window (only the charges' start times move). Other
        answers are kept per equal request. Only UTC starts are kept (the tzinfo of ``start``
        shows in the charges). Errors are not kept.

        The answer may be the one kept for another request of the same shape or destination
        match (its ``request`` and its charges' start times are then that request's):
        everything else in it is ``req``'s, which is all max_affordable reads; ``_rated``
        re-bases it for callers. A shape never seen is computed without probing the per-request
        memo (hashing a request costs ~1 µs); a shape found to depend on the clock leaves a
        marker so that its requests are looked up there."""
        start = req.start
        if start.tzinfo is not timezone.utc:
            return self._compute(req)
        shape = (req.tenant, req.category, req.subject, req.destination, req.tor, req.usage, req.offset)
        entry = self._shapes.get(shape)
        results = self._results
        if entry is not None:
            low, high, found = entry
            if found is not None and (low is None or low <= start) and (high is None or start < high):
                return found
            found = results.get(req)
            if found is not None:
                return found
        trail: list[tuple[datetime | None, datetime | None] | None] = []
        found = self._compute(req, trail)
        if _TIMED in trail:
            remember(results, RESULT_CACHE_SIZE, req, found)
            if entry is None:
                remember(self._shapes, SHAPE_CACHE_SIZE, shape, _CLOCKED)
        else:
            low, high = _window(trail, req)
            remember(self._shapes, SHAPE_CACHE_SIZE, shape, (low, high, found))
        return found

    def max_affordable(self, req: RatingRequest, credit: Decimal | None) -> Affordable:
        """The largest increment-aligned usage <= req.usage costing at most ``credit``.

        Same cost definition as ``rate``: the piece of usage ``u`` costs
        ``C(offset + u) - C(offset)``, so the answer is the largest ``u`` whose cumulative
        rounded total exceeds what the call has already cost by at most ``credit``.
        ``credit`` None means unlimited (only MaxCost ``*disconnect`` can cut). The answer
        is found per charge with division, never by trying increments.
        """
        priced = self._priced(req).priced     # its charges' start times are not read here
        if req.usage == 0:
            return Affordable(0, Decimal(0), "")
        if (credit is None or priced.cost <= credit) and not priced.disconnect_exceeded:
            return Affordable(req.usage, priced.cost, "")
        scale = priced.scale
        compat = self.cgrates_compat
        prior = priced.prior
        assert prior is not None
        raw, rule, floor_cost = prior.raw, prior.rule, prior.cost_floor
        if req.offset == 0:
            raw = _scaled(priced.connect_fee, scale)   # any usage at all pays the connect fee
        target: tuple[int, int] | None = None     # credit + C(offset), as numerator, denominator
        if credit is not None:
            credit_num, credit_den = credit.as_integer_ratio()
            prior_num, prior_den = prior.cost.as_integer_ratio()
            target = (credit_num * prior_den + prior_num * credit_den, credit_den * prior_den)
        limit: int | None = None   # a raw scaled total x is affordable iff x <= limit
        limit_rule: DestinationRate | None = None
        for charge in priced.charges:
            rate = charge.binding.destination_rate
            rule, floor_cost = _governing_rule(rule, rate, raw, scale, floor_cost, compat)
            if target is not None and rule is not limit_rule:
                limit = max_scaled_within(*target, rule.rounding_decimals, rule.rounding_method, scale)
                limit_rule = rule
            unit = charge.unit_scaled
            strategy = rate.max_cost_strategy
            cap = charge.binding.max_cost
            allowed = charge.increments
            reason = ""
            if limit is not None and raw > limit:
                allowed, reason = 0, INSUFFICIENT_CREDIT
            elif strategy == MAX_COST_DISCONNECT and raw > cap:
                allowed, reason = 0, MAX_COST
            elif unit > 0:
                if limit is not None:
                    free_rest = strategy == MAX_COST_FREE and raw + allowed * unit > cap
                    if not (free_rest and max(raw, cap) <= limit):
                        by_credit = (limit - raw) // unit
                        if by_credit < allowed:
                            allowed, reason = by_credit, INSUFFICIENT_CREDIT
                if strategy == MAX_COST_DISCONNECT:
                    by_cap = (cap - raw) // unit
                    if by_cap < allowed:
                        allowed, reason = by_cap, MAX_COST
            if allowed < charge.increments:
                usage = min(req.usage, charge.offset - req.offset + allowed * charge.increment)
                if usage <= 0:
                    return Affordable(0, Decimal(0), reason)
                part = allowed * unit
                if strategy == MAX_COST_FREE and raw + part > cap:
                    part = max(0, cap - raw)
                total = max(floor_cost, round_scaled(raw + part, scale, rule.rounding_decimals,
                                                     rule.rounding_method, compat=compat))
                return Affordable(usage, total - prior.cost, reason)
            raw += charge.charged_scaled
        return Affordable(req.usage, priced.cost, "")

    # --- lookup ----------------------------------------------------------------------

    def _resolve(self, req: RatingRequest, key: str, when: datetime, depth: int,
                 trail: list[Any] | None = None) -> Match | bool:
        """Match for ``key`` at ``when``; False if the profile is missing, True if it has no rate.

        ``trail`` (optional) collects what the answer depends on: per profile consulted, the
        activation period ``when`` fell in (from, until), and ``_TIMED`` if a timing was."""
        times = self._c.activation_times.get(key)
        if not times:
            return False
        index = bisect_right(times, when) - 1
        if trail is not None:
            trail.append((times[index] if index >= 0 else None,
                          times[index + 1] if index + 1 < len(times) else None))
        if index < 0:
            return False
        cache_key = (key, index, req.destination)
        cached = self._matches.get(cache_key)
        if cached is not None:
            return cached
        profile = self._c.profiles[key][index]
        found, timeless = self._c.match_timed(profile.rating_plan_id, req.destination, when, self.tz)
        if trail is not None and not timeless:
            trail.append(_TIMED)
        if found is not None:
            dest_id, prefix, bindings = found
            match = Match(key, profile.rating_plan_id, dest_id, prefix, bindings)
            if timeless:
                if len(self._matches) >= MATCH_CACHE_SIZE:
                    self._matches.clear()
                    self._same_matches.clear()
                # one object per (profile, plan, destination, prefix): numbers matched alike
                # share it, and _compute re-uses prices by it
                match = self._same_matches.setdefault((key, profile.rating_plan_id, dest_id, prefix), match)
                self._matches[cache_key] = match
            return match
        if depth < FALLBACK_DEPTH:
            for subject in profile.fallback_subjects:
                sub = self._resolve(req, profile_key(req.tenant, req.category, subject), when, depth + 1,
                                    trail)
                if isinstance(sub, Match):
                    return sub
        return True

    def _segments(self, req: RatingRequest, start: datetime, length: int,
                  trail: list[Any] | None = None) -> list[tuple[int, int, Match]]:
        """Activation periods of the first ``length`` of the call that began at ``start``:
        (start ns, end ns, match), relative to ``start``. ``trail``: see ``_resolve``; a call
        in one period also needs the next activation time to stay beyond its end."""
        key = profile_key(req.tenant, req.category, req.subject)
        found = self._resolve(req, key, start, 1, trail)
        if found is False:
            key = profile_key(req.tenant, req.category, ANY)
            found = self._resolve(req, key, start, 1, trail)
            if found is False:
                raise ChargingError(RATING_PLAN_NOT_FOUND)
        if found is True:
            raise ChargingError(UNAUTHORIZED_DESTINATION)
        assert isinstance(found, Match)
        times = self._c.activation_times[key]
        if req.tor != VOICE or length == 0 or times[-1] <= start:
            return [(0, length, found)]
        segments: list[tuple[int, int, Match]] = []
        seg_start, match = 0, found
        for when in times[bisect_right(times, start):]:
            at = _ns(when - start)
            if at >= length:
                if trail is not None and not segments:
                    # the same single period for any start up to ``length`` before ``when``
                    trail.append((None, when - timedelta(microseconds=-(-length // 1_000)) + _ONE_MICROSECOND))
                break
            segments.append((seg_start, at, match))
            nxt = self._resolve(req, key, when, 1)
            if not isinstance(nxt, Match):
                raise ChargingError(UNAUTHORIZED_DESTINATION)
            seg_start, match = at, nxt
        segments.append((seg_start, length, match))
        return segments

    # --- timings ---------------------------------------------------------------------

    def _timeline(self, start: datetime, rel_start: int, rel_end: int,
                  bindings: tuple[Binding, ...], voice: bool) -> list[tuple[int, int, Binding]]:
        """Cut [rel_start, rel_end) where the winning binding changes (voice) or pick one (others)."""
        if _all_day(bindings):
            return [(rel_start, rel_end, bindings[0])]
        local = _after(start, rel_start).astimezone(self.tz)
        if not voice or rel_end == rel_start:
            best = self._winner(bindings, local.date(), _time_of_day(local))
            if best is None:
                raise ChargingError(UNAUTHORIZED_DESTINATION)
            return [(rel_start, rel_end, best)]
        spans: list[tuple[int, int, Binding]] = []
        origin = start.astimezone(timezone.utc)
        pos = rel_start
        while pos < rel_end:
            # Timings are wall-clock times in self.tz; cuts are turned into instants so a
            # daylight-saving day (23 h or 25 h) is cut where its clocks say.
            day = local.date()
            day_end = min(rel_end, self._since(origin, day + _ONE_DAY, 0))
            wall = _time_of_day(local)
            candidates = [b for b in bindings if b.timing.matches_day(day)]
            cuts = sorted({b.timing.start_ns for b in candidates if b.timing.start_ns > wall})
            cursor = pos
            for cut in [*cuts, None]:
                piece_end = day_end if cut is None else min(day_end, self._since(origin, day, cut))
                if piece_end > cursor:
                    best = _best([b for b in candidates if b.timing.start_ns <= wall])
                    if best is None:
                        raise ChargingError(UNAUTHORIZED_DESTINATION)
                    if spans and spans[-1][2] is best and spans[-1][1] == cursor:
                        spans[-1] = (spans[-1][0], piece_end, best)
                    else:
                        spans.append((cursor, piece_end, best))
                    cursor = piece_end
                if cursor >= day_end or cut is None:
                    break
                wall = cut
            pos = day_end
            local = datetime.combine(day + _ONE_DAY, time(0), tzinfo=self.tz)
        return spans

    def _since(self, origin: datetime, day: date, wall_ns: int) -> int:
        """ns from ``origin`` (UTC) to wall-clock ``wall_ns`` after local midnight of ``day``."""
        if self._fixed_offset is not None:
            days = day.toordinal() - origin.toordinal()
            into_day = _time_of_day(origin)
            return days * DAY_NS + wall_ns - self._fixed_offset - into_day
        seconds, rest = divmod(wall_ns, SECOND)
        moment = datetime.combine(day, time(seconds // 3600, seconds // 60 % 60, seconds % 60,
                                            rest // 1000), tzinfo=self.tz)
        return _ns(moment.astimezone(timezone.utc) - origin)

    @staticmethod
    def _winner(bindings: tuple[Binding, ...], day: date, tod: int) -> Binding | None:
        return _best([b for b in bindings if b.timing.matches_day(day) and b.timing.start_ns <= tod])

    # --- pricing ---------------------------------------------------------------------

    def _compute(self, req: RatingRequest, trail: list[Any] | None = None) -> CostResult:
        """Price the piece as the difference of the call's cumulative rounded totals.

        The call is rated from its start (``req.start - offset`` for voice, whose pieces are
        contiguous in time; ``req.start`` for other ToRs, rated whole at the slot active then)
        through ``offset + usage``; the piece costs ``C(offset + usage) - C(offset)`` where
        ``C(x)`` is the rounded (MaxCost-capped, connect-fee-including) cost of the first ``x``
        of the call. Pieces therefore add up exactly to the whole call, rounding included, and
        each piece is priced at what settling the whole call will charge for it.

        ``trail`` (optional, from ``_priced``) receives the windows of call starts the answer
        holds for (the activation periods consulted), or ``_TIMED`` when the answer depends on
        the time of day or date, or on an activation time inside the call. With a trail, the
        answer may be one priced earlier for another number of the same destination match, as
        ``_priced`` allows.
        """
        if req.usage < 0:
            raise ChargingError(INVALID_ARGUMENT, f"negative usage {req.usage}")
        if req.offset < 0:
            raise ChargingError(INVALID_ARGUMENT, f"negative offset {req.offset}")
        start = req.start if req.start.tzinfo is not None else req.start.replace(tzinfo=timezone.utc)
        voice = req.tor == VOICE
        offset = req.offset
        if voice and offset:
            start -= _delta(offset)
        end = offset + req.usage
        segments = self._segments(req, start, end, trail)
        steady: tuple[int, str, int, int] | None = None
        if trail is not None:
            if len(segments) > 1 or not _all_day(segments[0][2].bindings):
                trail.append(_TIMED)
            elif _TIMED not in trail:
                # One all-day rate for the whole call: the price depends only on the match, not
                # on the number that reached it nor on the start. Another number of the same
                # destination (same profile, plan and prefix) may have been priced already.
                match = segments[0][2]
                steady = (id(match), req.tor, req.usage, offset)
                known = self._by_match.get(steady)
                if known is not None and known[0] is match:
                    return known[1]
        compat = self.cgrates_compat
        scale = self._c.scale
        charges: list[Charge] = []
        covered = 0
        capped = False            # a binding with a MaxCost strategy priced part of the call
        first_slot: CompiledSlot | None = None   # the slot of the first charge (connect fee)
        for seg_start, seg_end, match in segments:
            for rel_start, rel_end, binding in self._timeline(start, seg_start, seg_end, match.bindings, voice):
                if binding.destination_rate.max_cost_strategy:
                    capped = True
                pos = max(rel_start, covered)
                slots = binding.slots
                starts = binding.group_starts
                last = len(slots) - 1
                while pos < rel_end:
                    index = last
                    while index > 0 and starts[index] > pos:
                        index -= 1
                    slot: CompiledSlot = slots[index]
                    if first_slot is None:
                        first_slot = slot
                    piece_end = rel_end if index == last or starts[index + 1] >= rel_end else starts[index + 1]
                    count = -((pos - piece_end) // slot.increment)
                    unit = slot.unit_cost_compat if compat else slot.unit_cost
                    before = -((pos - offset) // slot.increment) if pos < offset else 0
                    if 0 < before < count:
                        # the increments starting before ``offset`` were paid by C(offset)
                        raw = unit * before
                        charges.append(_charge((_after(start, pos), pos, before, slot.increment, unit,
                                                raw, raw, scale, binding, match)))
                        pos += before * slot.increment
                        count -= before
                    raw = unit * count
                    charges.append(_charge((_after(start, pos), pos, count, slot.increment, unit,
                                            raw, raw, scale, binding, match)))
                    pos += count * slot.increment
                covered = max(covered, pos)
        first_match = segments[0][2]
        connect_fee = Decimal(0)
        fee = 0
        if end > 0 and first_slot is not None:
            connect_fee = first_slot.slot.connect_fee
            fee = first_slot.connect_fee
        reached = exceeded = False
        if capped and charges:
            reached, exceeded = _apply_max_cost(charges, fee)
        head = 0                       # charges[:head] are the call before this piece
        while head < len(charges) and charges[head].offset < offset:
            head += 1
        prior = _cumulative(charges, head, fee, scale, compat)
        total = _cumulative(charges, len(charges), fee, scale, compat)
        rule = total.rule or first_match.bindings[0].destination_rate
        rated = covered - offset if req.usage else 0
        # positional (hot path): start, cost, usage, rated_usage, connect_fee, rating_plan_id,
        # destination_id, prefix, subject_key, charges, max_cost_reached, raw_scaled, scale,
        # rounding_method, rounding_decimals, cgrates_compat, disconnect_exceeded, prior, rendered
        result = CostResult(req, _priced_of((
            req.start, total.cost - prior.cost, req.usage, rated, connect_fee if offset == 0 else Decimal(0),
            first_match.rating_plan_id, first_match.destination_id, first_match.prefix, first_match.subject_key,
            tuple(charges[head:]), reached, total.raw - prior.raw, scale, rule.rounding_method,
            rule.rounding_decimals, compat, exceeded, prior, [])))
        if steady is not None:
            remember(self._by_match, SHAPE_CACHE_SIZE, steady, (first_match, result))
        return result


def _all_day(bindings: tuple[Binding, ...]) -> bool:
    """One binding active at every instant: ``_timeline`` needs no clock (its first case)."""
    return len(bindings) == 1 and bindings[0].always


def _window(trail: list[Any], req: RatingRequest) -> tuple[datetime | None, datetime | None]:
    """The starts ``[low, high)`` (None: unbounded) for which ``req`` costs the same: the
    intersection of the call-start windows in ``trail``, moved by the offset for voice
    (whose call began ``offset`` before ``req.start``)."""
    low: datetime | None = None
    high: datetime | None = None
    for since, until in trail:
        if since is not None and (low is None or since > low):
            low = since
        if until is not None and (high is None or until < high):
            high = until
    if req.tor == VOICE and req.offset:
        shift = timedelta(microseconds=req.offset // 1_000)
        low = None if low is None else low + shift
        high = None if high is None else _later(high, shift)
    return low, high


def _later(moment: datetime, shift: timedelta) -> datetime | None:
    """``moment + shift``, or None (no bound) past the last representable datetime."""
    try:
        return moment + shift
    except OverflowError:
        return None


def _rebased(found: CostResult, req: RatingRequest) -> CostResult:
    """``found`` (an answer for an equal shape or destination match) as the answer to ``req``:
    the same Priced, ``req`` as its request (the charges move to its start when read)."""
    if found.request is req:
        return found
    return CostResult(req, found.priced)


def _time_of_day(moment: datetime) -> int:
    return ((moment.hour * 60 + moment.minute) * 60 + moment.second) * SECOND + moment.microsecond * 1_000


def _best(active: list[Binding]) -> Binding | None:
    if not active:
        return None
    if len(active) == 1:
        return active[0]
    return max(active, key=Binding.selection_key)


def _apply_max_cost(charges: list[Charge], fee: int) -> tuple[bool, bool]:
    """Apply each charge's MaxCost to the running total of the call (from ``fee``), in place:
    ``*free`` charges nothing past the cap. Returns (cap reached, ``*disconnect`` cap exceeded)."""
    reached = exceeded = False
    running = fee
    for i, charge in enumerate(charges):
        strategy = charge.binding.destination_rate.max_cost_strategy
        cap = charge.binding.max_cost
        cost = charge.raw_scaled
        if strategy and running + cost >= cap:
            reached = True
            if strategy == MAX_COST_FREE:
                cost = max(0, cap - running)
                charges[i] = charge._replace(charged_scaled=cost)
            elif running + cost > cap:
                exceeded = True
        running += cost
    return reached, exceeded


def _governing_rule(rule: DestinationRate | None, rate: DestinationRate, raw: int, scale: int,
                    floor_cost: Decimal, compat: bool) -> tuple[DestinationRate, Decimal]:
    """The rounding rule once a span priced by ``rate`` starts at raw total ``raw``: the finest
    rule seen so far governs the call; what it cost up to here under the coarser one it
    replaces stays a floor (a call's price never goes down as it gets longer)."""
    if rule is None:
        return rate, floor_cost
    if rate.rounding_decimals > rule.rounding_decimals:
        return rate, max(floor_cost, round_scaled(raw, scale, rule.rounding_decimals,
                                                  rule.rounding_method, compat=compat))
    return rule, floor_cost


def _cumulative(charges: list[Charge], count: int, fee: int, scale: int, compat: bool) -> Cumulative:
    """``C`` at the end of ``charges[:count]``: the rounded total of the call so far.

    Rounding uses the rule of the charges so far (the most decimals wins); where a finer rule
    takes over, the value reached under the coarser one is kept as a floor, so ``C`` is
    non-decreasing and every piece ``C(b) - C(a)`` is >= 0.
    """
    if count == 0:
        return _NOTHING
    raw = fee
    rule: DestinationRate | None = None
    floor_cost = Decimal(0)
    for charge in charges[:count]:
        rate = charge.binding.destination_rate
        rule, floor_cost = _governing_rule(rule, rate, raw, scale, floor_cost, compat)
        raw += charge.charged_scaled
    assert rule is not None
    cost = round_scaled(raw, scale, rule.rounding_decimals, rule.rounding_method, compat=compat)
    return Cumulative(raw, max(cost, floor_cost), rule, floor_cost)


_NOTHING = Cumulative(0, Decimal(0), None, Decimal(0))   # C(0): the call before it began


def _scaled(amount: Decimal, scale: int) -> int:
    """``amount`` in 1/scale units (exact: the caller's scale already absorbed its denominator)."""
    if not amount:
        return 0
    numerator, denominator = amount.as_integer_ratio()
    whole = abs(numerator) * scale // denominator
    return whole if numerator > 0 else -whole
