"""A TariffPlan compiled for rating: prefix index, per-plan destination bindings, timings.

Compiled once per loaded plan so that a rating call does dictionary probes and
integer arithmetic only. The prefix index maps every prefix to its
destination id(s); a lookup probes the number's prefixes longest-first, so
its cost depends on the number's length, not on how many prefixes exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from fractions import Fraction
from math import lcm

from engine.rating.rounding import half_up
from engine.tariffplan.model import (
    ANY,
    DestinationRate,
    Rate,
    RateSlot,
    RatingProfile,
    TariffPlan,
    Timing,
)
from engine.units import SECOND

DAY_NS = 86_400 * SECOND


@dataclass(frozen=True, slots=True)
class CompiledTiming:
    """A Timings.csv row as sets; a timing is active from ``start_ns`` to midnight on matching days."""

    id: str
    years: frozenset[int]
    months: frozenset[int]
    month_days: frozenset[int]
    week_days: frozenset[int]
    start_ns: int
    source: Timing

    @property
    def all_days(self) -> bool:
        return not (self.years or self.months or self.month_days or self.week_days)

    def matches_day(self, day: date) -> bool:
        if self.years and day.year not in self.years:
            return False
        if self.months and day.month not in self.months:
            return False
        if self.month_days and day.day not in self.month_days:
            return False
        if self.week_days and day.isoweekday() % 7 not in self.week_days:
            return False
        return True


ANY_TIMING = CompiledTiming(ANY, frozenset(), frozenset(), frozenset(), frozenset(), 0,
                            Timing(ANY, (), (), (), (), "00:00:00"))


@dataclass(frozen=True, slots=True)
class CompiledSlot:
    """A rate slot with its per-increment price precomputed in both modes.

    Prices are integers in units of ``1 / CompiledPlan.scale`` so that rating adds
    and multiplies plain ints; ``scale`` is chosen so every price is exact.
    """

    slot: RateSlot
    group_start: int
    increment: int
    unit_cost: int          # exact: increment * rate / rate_unit, scaled
    unit_cost_compat: int   # CGRateS: the same rounded *middle to N decimals, scaled
    connect_fee: int        # scaled


@dataclass(frozen=True, slots=True)
class Binding:
    """One RatingPlans.csv row resolved: timing + DestinationRate + Rate."""

    rating_plan_id: str
    destination_rate: DestinationRate
    rate: Rate
    slots: tuple[CompiledSlot, ...]
    group_starts: tuple[int, ...]
    timing: CompiledTiming
    weight: Decimal
    price_key: tuple[Fraction, Decimal]
    max_cost: int           # scaled like CompiledSlot prices
    always: bool = False    # its timing is active at every instant (all days, from 00:00)

    def slot_index(self, offset: int) -> int:
        """Index of the slot with the greatest GroupIntervalStart <= offset."""
        starts = self.group_starts
        index = len(starts) - 1
        while index > 0 and starts[index] > offset:
            index -= 1
        return index

    def selection_key(self) -> tuple[Decimal, int, Fraction, Decimal]:
        """Higher wins: weight, then the latest-started timing, then the lower price."""
        price, fee = self.price_key
        return (self.weight, self.timing.start_ns, -price, -fee)


@dataclass(frozen=True, slots=True)
class PlanDestinations:
    """Bindings of one rating plan grouped by destination id (``*any`` included).

    ``always`` holds the destinations with a binding active at every instant (an
    all-days timing from 00:00), which spares the time check in the common case;
    ``weight`` is CGRateS's RateIntervalList weight (the highest of the bindings).
    """

    plan_id: str
    by_destination: dict[str, tuple[Binding, ...]]
    always: frozenset[str]
    weight: dict[str, Decimal]


def clock_to_ns(text: str) -> int:
    if text in ("", "*asap", ANY):
        return 0
    hours, minutes, seconds = (int(part) for part in text.split(":"))
    return ((hours * 60 + minutes) * 60 + seconds) * SECOND


def compile_timing(timing: Timing) -> CompiledTiming:
    return CompiledTiming(timing.id, frozenset(timing.years), frozenset(timing.months),
                          frozenset(timing.month_days), frozenset(timing.week_days),
                          clock_to_ns(timing.start_time), timing)


def _unit_costs(slot: RateSlot, compat_decimals: int) -> tuple[Fraction, Fraction]:
    if slot.rate == 0:
        return Fraction(0), Fraction(0)
    exact = Fraction(slot.rate) * slot.rate_increment / slot.rate_unit
    return exact, half_up(exact, compat_decimals)


def plan_scale(plan: TariffPlan, compat_decimals: int) -> int:
    """Smallest integer that makes every price, fee, MaxCost and rounded total of the plan whole."""
    scale = 10 ** max([compat_decimals, *(dr.rounding_decimals for drs in plan.destination_rates.values()
                                           for dr in drs)])
    for rate in plan.rates.values():
        for slot in rate.slots:
            for value in (*_unit_costs(slot, compat_decimals), Fraction(slot.connect_fee)):
                scale = lcm(scale, value.denominator)
    for drs in plan.destination_rates.values():
        for dr in drs:
            scale = lcm(scale, Fraction(dr.max_cost).denominator)
    return scale


def compile_slot(slot: RateSlot, compat_decimals: int, scale: int) -> CompiledSlot:
    exact, compat = _unit_costs(slot, compat_decimals)
    return CompiledSlot(slot, slot.group_interval_start, slot.rate_increment, int(exact * scale),
                        int(compat * scale), int(Fraction(slot.connect_fee) * scale))


class CompiledPlan:
    """Everything the rater needs, derived once from a TariffPlan."""

    def __init__(self, plan: TariffPlan, compat_decimals: int = 5) -> None:
        self.plan = plan
        self.prefixes: dict[str, str | tuple[str, ...]] = {}
        self.max_prefix_len = 0
        self._index_prefixes(plan)
        timings = {tid: compile_timing(t) for tid, t in plan.timings.items()}
        timings[ANY] = ANY_TIMING
        self.scale = scale = plan_scale(plan, compat_decimals)
        slots_cache: dict[str, tuple[CompiledSlot, ...]] = {
            rid: tuple(compile_slot(s, compat_decimals, scale) for s in rate.slots)
            for rid, rate in plan.rates.items()
        }
        self.plans: dict[str, PlanDestinations] = {}
        for plan_id, rows in plan.rating_plans.items():
            grouped: dict[str, list[Binding]] = {}
            for row in rows:
                timing = timings[row.timing_id]
                for dr in plan.destination_rates[row.destination_rates_id]:
                    rate = plan.rates[dr.rates_id]
                    slots = slots_cache[dr.rates_id]
                    first = rate.slots[0]
                    binding = Binding(
                        rating_plan_id=plan_id,
                        destination_rate=dr,
                        rate=rate,
                        slots=slots,
                        group_starts=tuple(s.group_start for s in slots),
                        timing=timing,
                        weight=row.weight,
                        price_key=(Fraction(first.rate) / first.rate_unit if first.rate else Fraction(0),
                                   first.connect_fee),
                        max_cost=int(Fraction(dr.max_cost) * scale),
                        always=timing.all_days and timing.start_ns == 0,
                    )
                    grouped.setdefault(dr.destination_id, []).append(binding)
            self.plans[plan_id] = PlanDestinations(
                plan_id,
                {k: tuple(v) for k, v in grouped.items()},
                frozenset(k for k, v in grouped.items() if any(b.always for b in v)),
                {k: max(b.weight for b in v) for k, v in grouped.items()},
            )
        self.profiles: dict[str, tuple[RatingProfile, ...]] = plan.rating_profiles
        self.activation_times: dict[str, tuple[datetime, ...]] = {
            key: tuple(p.activation_time for p in profiles) for key, profiles in plan.rating_profiles.items()
        }

    def _index_prefixes(self, plan: TariffPlan) -> None:
        index = self.prefixes
        longest = 0
        for dest_id, destination in plan.destinations.items():
            for prefix in destination.prefixes:
                current = index.get(prefix)
                if current is None:
                    index[prefix] = dest_id
                elif isinstance(current, str):
                    if current != dest_id:
                        index[prefix] = tuple(sorted((current, dest_id)))
                elif dest_id not in current:
                    index[prefix] = tuple(sorted((*current, dest_id)))
                if len(prefix) > longest:
                    longest = len(prefix)
        self.max_prefix_len = longest

    def destination_ids(self, number: str) -> frozenset[str]:
        """Every destination id one of whose prefixes starts ``number``."""
        found: set[str] = set()
        index = self.prefixes
        for length in range(min(len(number), self.max_prefix_len), 0, -1):
            ids = index.get(number[:length])
            if ids is None:
                continue
            if isinstance(ids, str):
                found.add(ids)
            else:
                found.update(ids)
        return frozenset(found)

    def match(self, plan_id: str, number: str, when: datetime,
              tz: tzinfo) -> tuple[str, str, tuple[Binding, ...]] | None:
        """``match_timed`` without the time-independence flag."""
        return self.match_timed(plan_id, number, when, tz)[0]

    def match_timed(self, plan_id: str, number: str, when: datetime,
                    tz: tzinfo) -> tuple[tuple[str, str, tuple[Binding, ...]] | None, bool]:
        """CGRateS destination match of ``number`` in one plan: (destination id, prefix, bindings).

        Prefixes are tried longest first. Among the destinations of a prefix that the
        plan rates, only those with a binding active at ``when`` count, and the one
        with the highest weight wins (so a holiday-only destination sharing a prefix
        steps aside on ordinary days); if none counts, the next shorter prefix is
        tried. Last comes the plan's ``*any`` DestinationRates. None if nothing applies.
        The flag is True when no timing was consulted, so the answer holds at any instant
        (callers may cache it per plan and number).
        """
        compiled = self.plans.get(plan_id)
        if compiled is None:
            return None, True
        by_dest = compiled.by_destination
        always = compiled.always
        index = self.prefixes
        moment: list[tuple[date, int]] = []

        def active(dest_id: str) -> bool:
            if dest_id in always:
                return True
            if not moment:
                local = when.astimezone(tz)
                moment.append((local.date(), _wall_ns(local)))
            day, wall = moment[0]
            return any(b.timing.start_ns <= wall and b.timing.matches_day(day) for b in by_dest[dest_id])

        if number:
            for length in range(min(len(number), self.max_prefix_len), 0, -1):
                prefix = number[:length]
                ids = index.get(prefix)
                if ids is None:
                    continue
                if isinstance(ids, str):
                    bindings = by_dest.get(ids)
                    if bindings is not None and active(ids):
                        return (ids, prefix, bindings), not moment
                    continue
                best: str | None = None
                for dest_id in ids:
                    if dest_id in by_dest and active(dest_id) and (
                            best is None or compiled.weight[dest_id] > compiled.weight[best]):
                        best = dest_id
                if best is not None:
                    return (best, prefix, by_dest[best]), not moment
        bindings = by_dest.get(ANY)
        if bindings is not None:
            return (ANY, "", bindings), not moment
        return None, not moment


def _wall_ns(moment: datetime) -> int:
    return ((moment.hour * 60 + moment.minute) * 60 + moment.second) * SECOND + moment.microsecond * 1_000
