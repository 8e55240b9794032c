"""Properties that must hold for any rate: a longer call never costs less, a credit is never
overspent, the credit that paid for a call buys at least that call again, pieces add up."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.rating import Rater, RatingRequest
from engine.tariffplan.model import (
    Destination,
    DestinationRate,
    Rate,
    RateSlot,
    RatingPlanBinding,
    RatingProfile,
    TariffPlan,
)

SECOND = 1_000_000_000
START = datetime(2025, 1, 6, 10, 0, tzinfo=timezone.utc)
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

money = st.decimals(min_value=0, max_value=5, places=3, allow_nan=False, allow_infinity=False)
seconds = st.sampled_from([1, 2, 5, 6, 10, 15, 30, 60])


@st.composite
def plans(draw: st.DrawFn, *, groups: bool = True, methods: tuple[str, ...] = ("*up", "*down", "*middle"),
          decimals: st.SearchStrategy[int] = st.integers(0, 6)) -> TariffPlan:
    count = draw(st.integers(1, 3)) if groups else 1
    starts = sorted(draw(st.sets(st.sampled_from([30, 60, 90, 120, 300]), min_size=count - 1,
                                 max_size=count - 1)))
    slots = []
    for index, start in enumerate([0, *starts]):
        slots.append(RateSlot(draw(money) if index == 0 else Decimal(0), draw(money),
                              draw(seconds) * SECOND, draw(seconds) * SECOND, start * SECOND))
    dr = DestinationRate("DR", "DST", "RT", draw(st.sampled_from(methods)), draw(decimals), Decimal(0), "")
    return TariffPlan(
        destinations={"DST": Destination("DST", ("1002",))},
        rates={"RT": Rate("RT", tuple(slots))},
        destination_rates={"DR": (dr,)},
        rating_plans={"RP": (RatingPlanBinding("RP", "DR", "*any", Decimal(10)),)},
        rating_profiles={"cgrates.org:call:1001": (
            RatingProfile("cgrates.org", "call", "1001", datetime(2014, 1, 1, tzinfo=timezone.utc), "RP", ()),)},
    )


def req(usage: int, offset: int = 0) -> RatingRequest:
    return RatingRequest("cgrates.org", "call", "1001", "1002", START, usage, offset=offset)


@SETTINGS
@given(plans(), st.integers(0, 900), st.integers(0, 900), st.booleans())
def test_cost_is_monotone_in_usage(plan: TariffPlan, a: int, b: int, compat: bool) -> None:
    rater = Rater(plan, cgrates_compat=compat)
    short, long = sorted((a, b))
    assert rater.rate(req(short * SECOND)).cost <= rater.rate(req(long * SECOND)).cost


@SETTINGS
@given(plans(), st.integers(1, 900), st.integers(0, 900), st.booleans())
def test_credit_that_paid_for_a_call_buys_it_again(plan: TariffPlan, used: int, extra: int, compat: bool) -> None:
    rater = Rater(plan, cgrates_compat=compat)
    paid = rater.rate(req(used * SECOND))
    aligned = paid.rated_usage
    answer = rater.max_affordable(req(aligned + extra * SECOND), rater.rate(req(aligned)).cost)
    assert answer.usage >= aligned


@SETTINGS
@given(plans(), st.integers(1, 3600), money, st.booleans())
def test_affordable_usage_never_overspends_and_is_maximal(plan: TariffPlan, asked: int, credit: Decimal,
                                                         compat: bool) -> None:
    rater = Rater(plan, cgrates_compat=compat)
    answer = rater.max_affordable(req(asked * SECOND), credit)
    assert 0 <= answer.usage <= asked * SECOND
    if answer.usage:
        assert rater.rate(req(answer.usage)).cost == answer.cost <= credit
    if answer.usage < asked * SECOND:
        # one more nanosecond needs one more increment, which the credit cannot pay
        assert rater.rate(req(answer.usage + 1)).cost > credit


def piece(offset: int, usage: int) -> RatingRequest:
    """The piece of a call started at START that begins ``offset`` into it (as sessions ask)."""
    return RatingRequest("cgrates.org", "call", "1001", "1002", START + timedelta(microseconds=offset // 1000),
                         usage, offset=offset)


@SETTINGS
@given(plans(), st.lists(st.integers(0, 400), min_size=1, max_size=5), st.booleans())
def test_pieces_add_up_to_the_whole_call(plan: TariffPlan, lengths: list[int], compat: bool) -> None:
    """Any rounding, any cut points (aligned or not): the pieces' rounded costs sum exactly to
    the whole call's rounded cost, and no piece costs less than nothing."""
    rater = Rater(plan, cgrates_compat=compat)
    offset = 0
    costs = []
    raws = []
    for length in lengths:
        result = rater.rate(piece(offset, length * SECOND))
        assert result.cost >= 0
        costs.append(result.cost)
        raws.append(result.raw_cost)
        offset += length * SECOND
    whole = rater.rate(req(offset))
    assert sum(costs) == whole.cost
    assert sum(raws) == whole.raw_cost


@SETTINGS
@given(plans(), st.integers(0, 600), st.integers(1, 1800), money, st.booleans())
def test_affordable_piece_never_overspends_and_is_maximal(plan: TariffPlan, offset: int, asked: int,
                                                          credit: Decimal, compat: bool) -> None:
    """A later piece of a call: what max_affordable grants costs exactly what rating that piece
    says (the cumulative difference), within the credit, and one nanosecond more would not be."""
    rater = Rater(plan, cgrates_compat=compat)
    start = offset * SECOND
    answer = rater.max_affordable(piece(start, asked * SECOND), credit)
    assert 0 <= answer.usage <= asked * SECOND
    if answer.usage:
        assert rater.rate(piece(start, answer.usage)).cost == answer.cost <= credit
    if answer.usage < asked * SECOND:
        assert rater.rate(piece(start, answer.usage + 1)).cost > credit


@SETTINGS
@given(plans(methods=("*up",)), st.integers(0, 900))
def test_rounding_modes_bracket_the_exact_cost(plan: TariffPlan, used: int) -> None:
    base = plan.destination_rates["DR"][0]
    results = {}
    for method in ("*down", "*middle", "*up"):
        variant = TariffPlan(**{**{f: getattr(plan, f) for f in plan.__dataclass_fields__},
                               "destination_rates": {"DR": (DestinationRate(
                                   "DR", "DST", "RT", method, base.rounding_decimals, Decimal(0), ""),)}})
        results[method] = Rater(variant).rate(req(used * SECOND))
    exact = Decimal(results["*up"].raw_cost.numerator) / Decimal(results["*up"].raw_cost.denominator)
    step = Decimal(1).scaleb(-base.rounding_decimals)
    assert results["*down"].cost <= results["*middle"].cost <= results["*up"].cost
    assert results["*down"].cost <= exact <= results["*up"].cost
    assert results["*up"].cost - results["*down"].cost <= step


# --- timing selection against a second-by-second oracle ----------------------------------------

def _timed_plan() -> TariffPlan:
    from engine.tariffplan.model import Timing

    def slot(rate: str) -> tuple[RateSlot, ...]:
        return (RateSlot(Decimal(0), Decimal(rate), SECOND, SECOND, 0),)

    timings = {
        "ALWAYS": Timing("ALWAYS", (), (), (), (), "00:00:00"),
        "WORK": Timing("WORK", (), (), (), (1, 2, 3, 4, 5), "08:00:00"),
        "EVE": Timing("EVE", (), (), (), (1, 2, 3, 4, 5), "19:30:00"),
        "SUN": Timing("SUN", (), (), (), (0,), "12:00:00"),
        "FEST": Timing("FEST", (), (1,), (1, 2), (), "06:00:00"),
    }
    rows = [("ALWAYS", "3", 10), ("WORK", "7", 10), ("EVE", "2", 10), ("SUN", "1", 10), ("FEST", "5", 20)]
    return TariffPlan(
        destinations={"DST": Destination("DST", ("1002",))},
        rates={f"RT_{t}": Rate(f"RT_{t}", slot(price)) for t, price, _ in rows},
        destination_rates={f"DR_{t}": (DestinationRate(f"DR_{t}", "DST", f"RT_{t}", "*up", 6, Decimal(0), ""),)
                           for t, _, _ in rows},
        timings=timings,
        rating_plans={"RP": tuple(RatingPlanBinding("RP", f"DR_{t}", t, Decimal(w)) for t, _, w in rows)},
        rating_profiles={"cgrates.org:call:1001": (
            RatingProfile("cgrates.org", "call", "1001", datetime(2014, 1, 1, tzinfo=timezone.utc), "RP", ()),)},
    )


def _oracle_price(moment: datetime) -> Decimal:
    """Price per second from the rules, written the slow obvious way."""
    weekday = moment.isoweekday() % 7
    clock = moment.hour * 3600 + moment.minute * 60 + moment.second
    active = [("3", 10, 0)]
    if weekday in (1, 2, 3, 4, 5) and clock >= 8 * 3600:
        active.append(("7", 10, 8 * 3600))
    if weekday in (1, 2, 3, 4, 5) and clock >= 19 * 3600 + 1800:
        active.append(("2", 10, 19 * 3600 + 1800))
    if weekday == 0 and clock >= 12 * 3600:
        active.append(("1", 10, 12 * 3600))
    if moment.month == 1 and moment.day in (1, 2) and clock >= 6 * 3600:
        active.append(("5", 20, 6 * 3600))
    price, _, _ = max(active, key=lambda a: (a[1], a[2], -Decimal(a[0])))
    return Decimal(price)


TIMED = _timed_plan()


@settings(max_examples=40, deadline=None)
@given(st.datetimes(min_value=datetime(2025, 12, 26), max_value=datetime(2026, 1, 8)),
       st.integers(1, 4 * 3600))
def test_voice_cost_matches_a_second_by_second_oracle(start: datetime, used: int) -> None:
    from datetime import timedelta

    start = start.replace(microsecond=0, tzinfo=timezone.utc)
    expected = sum((_oracle_price(start + timedelta(seconds=s)) for s in range(used)), Decimal(0))
    result = Rater(TIMED).rate(RatingRequest("cgrates.org", "call", "1001", "1002", start, used * SECOND))
    assert result.cost == expected


@st.composite
def capped_plans(draw: st.DrawFn) -> TariffPlan:
    plan = draw(plans())
    base = plan.destination_rates["DR"][0]
    strategy = draw(st.sampled_from(["*free", "*disconnect"]))
    cap = draw(st.decimals(min_value=Decimal("0.01"), max_value=5, places=2))
    capped = DestinationRate("DR", "DST", "RT", base.rounding_method, base.rounding_decimals, cap, strategy)
    return TariffPlan(**{**{f: getattr(plan, f) for f in plan.__dataclass_fields__},
                         "destination_rates": {"DR": (capped,)}})


@SETTINGS
@given(capped_plans(), st.integers(1, 3600), st.none() | money, st.booleans())
def test_max_cost_is_never_exceeded_and_affordable_stays_maximal(plan: TariffPlan, asked: int,
                                                                 credit: Decimal | None, compat: bool) -> None:
    rater = Rater(plan, cgrates_compat=compat)
    dr = plan.destination_rates["DR"][0]
    answer = rater.max_affordable(req(asked * SECOND), credit)
    assert 0 <= answer.usage <= asked * SECOND
    if answer.usage:
        priced = rater.rate(req(answer.usage))
        assert priced.cost == answer.cost
        assert credit is None or priced.cost <= credit
        if dr.max_cost_strategy == "*disconnect":
            assert priced.raw_cost <= dr.max_cost
        else:
            assert priced.raw_cost <= max(dr.max_cost, Decimal(priced.connect_fee))
    if answer.usage < asked * SECOND:
        more = rater.rate(req(answer.usage + 1))
        too_dear = credit is not None and more.cost > credit
        over_cap = dr.max_cost_strategy == "*disconnect" and more.raw_cost > dr.max_cost
        assert too_dear or over_cap
