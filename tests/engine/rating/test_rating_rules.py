"""Each CGRateS rating rule on its own: lookup, timings, groups, connect fee, MaxCost, affordability."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import orjson
import pytest

from engine.errors import (
    INSUFFICIENT_CREDIT,
    INVALID_ARGUMENT,
    RATING_PLAN_NOT_FOUND,
    UNAUTHORIZED_DESTINATION,
    ChargingError,
)
from engine.rating import MAX_COST, Rater
from engine.tariffplan.model import TariffPlan
from tests.engine.rating.ratinghelpers import MONDAY_10H, SECOND, PlanBuilder, call, cost, one_rate_plan

D = Decimal


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# --- destination matching --------------------------------------------------------------------

@pytest.fixture
def germany(build_plan: PlanBuilder) -> TariffPlan:
    return build_plan(
        Destinations="""
            DST_DE,+49
            DST_DE_MOBILE,+4915
            DST_DE_MOBILE,+4917
            DST_DE_VODAFONE,+49172
        """,
        Rates="""
            RT_DE,0,0.05,60s,60s,0s
            RT_MOB,0,0.15,60s,60s,0s
            RT_REST,0,1,60s,60s,0s
        """,
        DestinationRates="""
            DR_DE,DST_DE,RT_DE,*up,4,0,
            DR_MOB,DST_DE_MOBILE,RT_MOB,*up,4,0,
            DR_REST,*any,RT_REST,*up,4,0,
        """,
        RatingPlans="""
            RP_FULL,DR_DE,*any,10
            RP_FULL,DR_MOB,*any,10
            RP_FULL,DR_REST,*any,10
            RP_LANDLINE,DR_DE,*any,10
        """,
        RatingProfiles="""
            cgrates.org,call,full,2014-01-01T00:00:00Z,RP_FULL,
            cgrates.org,call,landline,2014-01-01T00:00:00Z,RP_LANDLINE,
        """,
    )


def test_longest_prefix_wins(germany: TariffPlan) -> None:
    result = Rater(germany).rate(call("full", "+4917012345", 60))
    assert (result.destination_id, result.prefix, result.cost) == ("DST_DE_MOBILE", "+4917", D("0.15"))
    assert Rater(germany).rate(call("full", "+493012345", 60)).destination_id == "DST_DE"


def test_prefix_of_a_destination_the_plan_does_not_rate_falls_to_shorter_prefix(germany: TariffPlan) -> None:
    # +49172 belongs to DST_DE_VODAFONE (not in RP_FULL), +4917 to DST_DE_MOBILE (rated)
    result = Rater(germany).rate(call("full", "+4917212345", 60))
    assert (result.destination_id, result.prefix) == ("DST_DE_MOBILE", "+4917")
    landline = Rater(germany).rate(call("landline", "+4917212345", 60))
    assert (landline.destination_id, landline.prefix, landline.cost) == ("DST_DE", "+49", D("0.05"))


def test_any_destination_rate_when_no_prefix_matches(germany: TariffPlan) -> None:
    result = Rater(germany).rate(call("full", "+33123", 60))
    assert (result.destination_id, result.cost) == ("*any", D(1))
    with pytest.raises(ChargingError) as err:
        Rater(germany).rate(call("landline", "+33123", 60))
    assert err.value.code == UNAUTHORIZED_DESTINATION


def test_destination_ids_lists_every_matching_destination(germany: TariffPlan) -> None:
    assert Rater(germany).destination_ids("+4917212345") == {"DST_DE", "DST_DE_MOBILE", "DST_DE_VODAFONE"}
    assert Rater(germany).destination_ids("+33") == frozenset()


def test_many_prefixes_still_match_exactly(build_plan: PlanBuilder) -> None:
    rows = "\n".join(f"DST_{i % 97},{1000000 + i * 7}" for i in range(20000))
    plan = build_plan(
        Destinations=rows + "\nDST_TARGET,1000000999999",
        Rates="RT,0,1,60s,60s,0s",
        DestinationRates="DR,DST_TARGET,RT,*up,4,0,",
        RatingPlans="RP,DR,*any,10",
        RatingProfiles="cgrates.org,call,1001,2014-01-01T00:00:00Z,RP,",
    )
    result = Rater(plan).rate(call("1001", "10000009999995555", 60))
    assert (result.destination_id, result.prefix) == ("DST_TARGET", "1000000999999")


# --- rating profiles ----------------------------------------------------------------------------

@pytest.fixture
def chain(build_plan: PlanBuilder) -> TariffPlan:
    return build_plan(
        Destinations="""
            DST_A,100
            DST_D,400
        """,
        Rates="RT,0,1,60s,60s,0s",
        DestinationRates="""
            DR_A,DST_A,RT,*up,4,0,
            DR_D,DST_D,RT,*up,4,0,
        """,
        RatingPlans="""
            RP_A,DR_A,*any,10
            RP_D,DR_D,*any,10
        """,
        RatingProfiles="""
            cgrates.org,call,a,2014-01-01T00:00:00Z,RP_A,b
            cgrates.org,call,b,2014-01-01T00:00:00Z,RP_A,c
            cgrates.org,call,c,2014-01-01T00:00:00Z,RP_A,d
            cgrates.org,call,d,2014-01-01T00:00:00Z,RP_D,
            cgrates.org,call,x,2014-01-01T00:00:00Z,RP_A,y;d
            cgrates.org,call,future,2030-01-01T00:00:00Z,RP_D,
            cgrates.org,call,*any,2014-01-01T00:00:00Z,RP_A,
        """,
    )


def test_fallback_subject_within_depth_3(chain: TariffPlan) -> None:
    result = Rater(chain).rate(call("b", "400", 60))   # b -> c -> d: depth 3
    assert (result.subject_key, result.rating_plan_id) == ("cgrates.org:call:d", "RP_D")


def test_fallback_stops_after_depth_3(chain: TariffPlan) -> None:
    with pytest.raises(ChargingError) as err:
        Rater(chain).rate(call("a", "400", 60))        # a -> b -> c -> d would be depth 4
    assert err.value.code == UNAUTHORIZED_DESTINATION


def test_fallback_subjects_are_tried_in_order(chain: TariffPlan) -> None:
    result = Rater(chain).rate(call("x", "400", 60))   # y has no profile, d rates 400
    assert result.subject_key == "cgrates.org:call:d"


def test_subject_with_a_profile_but_no_rate_does_not_use_any(chain: TariffPlan) -> None:
    with pytest.raises(ChargingError) as err:
        Rater(chain).rate(call("d", "100", 60))
    assert err.value.code == UNAUTHORIZED_DESTINATION


def test_profile_not_active_yet_uses_any_subject(chain: TariffPlan) -> None:
    result = Rater(chain).rate(call("future", "100", 60))
    assert result.subject_key == "cgrates.org:call:*any"


def test_unknown_category_is_rating_plan_not_found(chain: TariffPlan) -> None:
    with pytest.raises(ChargingError) as err:
        Rater(chain).rate(call("a", "100", 60, category="sms"))
    assert err.value.code == RATING_PLAN_NOT_FOUND


def test_activation_time_splits_a_call(build_plan: PlanBuilder) -> None:
    plan = build_plan(
        Destinations="DST,1002",
        Rates="""
            RT_OLD,0.5,1,60s,1s,0s
            RT_NEW,9,2,60s,1s,0s
        """,
        DestinationRates="""
            DR_OLD,DST,RT_OLD,*up,4,0,
            DR_NEW,DST,RT_NEW,*up,4,0,
        """,
        RatingPlans="""
            RP_OLD,DR_OLD,*any,10
            RP_NEW,DR_NEW,*any,10
        """,
        RatingProfiles="""
            cgrates.org,call,1001,2014-01-01T00:00:00Z,RP_OLD,
            cgrates.org,call,1001,2025-01-06T10:01:00Z,RP_NEW,
        """,
    )
    result = Rater(plan).rate(call(seconds=120, start=MONDAY_10H))
    # first minute old price + old connect fee, second minute new price
    assert result.cost == D("0.5") + D(1) + D(2)
    assert [c.match.rating_plan_id for c in result.charges] == ["RP_OLD", "RP_NEW"]
    assert Rater(plan).rate(call(seconds=60, start=MONDAY_10H)).cost == D("1.5")


# --- timings -------------------------------------------------------------------------------

@pytest.fixture
def timed(build_plan: PlanBuilder) -> TariffPlan:
    return build_plan(
        Destinations="DST,1002",
        Timings="""
            ALWAYS,*any,*any,*any,*any,00:00:00
            DAYTIME,*any,*any,*any,1;2;3;4;5,08:00:00
            EVENING,*any,*any,*any,1;2;3;4;5,19:00:00
            NEWYEAR,*any,1,1,*any,00:00:00
            Y2030,2030,*any,*any,*any,00:00:00
        """,
        Rates="""
            RT_BASE,0,0.6,60s,1s,0s
            RT_DAY,0,1.2,60s,1s,0s
            RT_EVE,0,0.3,60s,1s,0s
            RT_FEST,0,0,60s,1s,0s
            RT_CHEAP,0,0.06,60s,1s,0s
        """,
        DestinationRates="""
            DR_BASE,DST,RT_BASE,*up,4,0,
            DR_DAY,DST,RT_DAY,*up,4,0,
            DR_EVE,DST,RT_EVE,*up,4,0,
            DR_FEST,DST,RT_FEST,*up,4,0,
            DR_CHEAP,DST,RT_CHEAP,*up,4,0,
        """,
        RatingPlans="""
            RP,DR_BASE,ALWAYS,10
            RP,DR_DAY,DAYTIME,10
            RP,DR_EVE,EVENING,10
            RP,DR_FEST,NEWYEAR,20
            RP,DR_CHEAP,Y2030,10
        """,
        RatingProfiles="cgrates.org,call,1001,2014-01-01T00:00:00Z,RP,",
    )


@pytest.mark.parametrize(("start", "rate_id"), [
    (utc(2025, 1, 6, 7, 0), "RT_BASE"),      # Monday before 08:00: only ALWAYS
    (utc(2025, 1, 6, 10, 0), "RT_DAY"),      # DAYTIME started later than ALWAYS
    (utc(2025, 1, 6, 20, 0), "RT_EVE"),      # EVENING is the most recently started
    (utc(2025, 1, 11, 10, 0), "RT_BASE"),    # Saturday
    (utc(2026, 1, 1, 10, 0), "RT_FEST"),     # weight 20 beats every later start
])
def test_highest_weight_then_latest_start(timed: TariffPlan, start: datetime, rate_id: str) -> None:
    result = Rater(timed).rate(call(seconds=60, start=start))
    assert [c.rates_id for c in result.charges] == [rate_id]


def test_equal_weight_and_start_prefers_the_lower_price(timed: TariffPlan) -> None:
    # in 2030 ALWAYS and Y2030 both start at 00:00 with weight 10: RT_CHEAP is cheaper
    result = Rater(timed).rate(call(seconds=60, start=utc(2030, 3, 4, 3, 0)))
    assert [c.rates_id for c in result.charges] == ["RT_CHEAP"]


def test_voice_split_at_timing_boundaries(timed: TariffPlan) -> None:
    result = Rater(timed).rate(call(seconds=3 * 3600, start=utc(2025, 1, 6, 6, 30)))
    assert [(c.rates_id, c.usage // SECOND) for c in result.charges] == [
        ("RT_BASE", 5400), ("RT_DAY", 5400)]
    assert result.cost == D("0.6") * 90 + D("1.2") * 90


def test_voice_split_at_midnight_into_a_holiday(timed: TariffPlan) -> None:
    # Wednesday 31 Dec 23:59 is EVENING; from midnight NEWYEAR (weight 20) is free
    result = Rater(timed).rate(call(seconds=120, start=utc(2025, 12, 31, 23, 59)))
    assert [(c.rates_id, c.start) for c in result.charges] == [
        ("RT_EVE", utc(2025, 12, 31, 23, 59)), ("RT_FEST", utc(2026, 1, 1, 0, 0))]
    assert result.cost == D("0.3")


def test_timings_in_a_configured_timezone(timed: TariffPlan) -> None:
    from zoneinfo import ZoneInfo

    # 07:30 UTC is 08:30 in Berlin (winter): daytime there
    rater = Rater(timed, tz=ZoneInfo("Europe/Berlin"))
    assert [c.rates_id for c in rater.rate(call(seconds=60, start=utc(2025, 1, 6, 7, 30))).charges] == ["RT_DAY"]


def test_gap_in_timings_is_unauthorized(build_plan: PlanBuilder) -> None:
    plan = build_plan(
        Destinations="DST,1002",
        Timings="WORK,*any,*any,*any,1;2;3;4;5,08:00:00",
        Rates="RT,0,1,60s,60s,0s",
        DestinationRates="DR,DST,RT,*up,4,0,",
        RatingPlans="RP,DR,WORK,10",
        RatingProfiles="cgrates.org,call,1001,2014-01-01T00:00:00Z,RP,",
    )
    assert cost(plan, 60, start=utc(2025, 1, 6, 9, 0)) == D(1)
    with pytest.raises(ChargingError) as err:
        Rater(plan).rate(call(seconds=60, start=utc(2025, 1, 6, 7, 0)))
    assert err.value.code == UNAUTHORIZED_DESTINATION
    with pytest.raises(ChargingError):   # runs into Saturday
        Rater(plan).rate(call(seconds=7200, start=utc(2025, 1, 10, 23, 0)))


# --- groups, increments, connect fee ------------------------------------------------------------

@pytest.fixture
def rt20(build_plan: PlanBuilder) -> TariffPlan:
    return one_rate_plan(build_plan, """
        0.4,0.2,60s,60s,0s
        0,0.1,60s,1s,60s
    """)


def test_group_chosen_by_offset_into_the_whole_call(rt20: TariffPlan) -> None:
    later = Rater(rt20).rate(call(seconds=30, offset=60 * SECOND))
    assert later.cost == D("0.05")            # per-second group, no connect fee
    assert later.connect_fee == 0
    first = Rater(rt20).rate(call(seconds=30))
    assert first.cost == D("0.6")             # connect fee + a whole first minute
    assert first.rated_usage == 60 * SECOND


def test_pieces_of_a_call_add_up_to_the_whole_call(rt20: TariffPlan) -> None:
    rater = Rater(rt20)
    whole = rater.rate(call(seconds=150)).cost
    parts = [rater.rate(call(seconds=60)).cost,
             rater.rate(call(seconds=60, offset=60 * SECOND, start=utc(2025, 1, 6, 10, 1))).cost,
             rater.rate(call(seconds=30, offset=120 * SECOND, start=utc(2025, 1, 6, 10, 2))).cost]
    assert sum(parts) == whole == D("0.75")


def test_zero_usage_costs_nothing_not_even_the_connect_fee(rt20: TariffPlan) -> None:
    result = Rater(rt20).rate(call(seconds=0))
    assert (result.cost, result.connect_fee, result.charges) == (0, 0, ())
    assert result.rating_plan_id == "RP"


def test_negative_usage_is_rejected(rt20: TariffPlan) -> None:
    with pytest.raises(ChargingError) as err:
        Rater(rt20).rate(call(usage=-1))
    assert err.value.code == INVALID_ARGUMENT


def test_long_call_is_one_charge_per_slot_not_per_increment(build_plan: PlanBuilder) -> None:
    plan = one_rate_plan(build_plan, "0,0.01,1s,1ns,0s")
    result = Rater(plan).rate(call(seconds=72 * 3600))
    assert len(result.charges) == 1
    assert result.charges[0].increments == 72 * 3600 * SECOND
    assert result.cost == D("2592")


def test_naive_start_is_taken_as_utc(rt20: TariffPlan) -> None:
    naive = Rater(rt20).rate(call(seconds=90, start=datetime(2025, 1, 6, 10, 0)))
    assert naive.cost == D("0.65")


# --- rounding ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "seconds", "expected"), [
    ("*up", 61, "0.06"), ("*down", 61, "0.05"), ("*middle", 61, "0.05"),
    ("*up", 90, "0.08"), ("*down", 90, "0.07"), ("*middle", 90, "0.08"),
])
def test_rounding_methods_on_the_total(build_plan: PlanBuilder, method: str, seconds: int, expected: str) -> None:
    plan = one_rate_plan(build_plan, "0,0.05,60s,1s,0s", method=method, decimals=2)
    assert cost(plan, seconds) == D(expected)     # 61 s = 0.050833.., 90 s = 0.075


# --- MaxCost -----------------------------------------------------------------------------------

def test_max_cost_free_caps_the_cost(build_plan: PlanBuilder) -> None:
    plan = one_rate_plan(build_plan, "0,0.01,1s,1s,0s", max_cost="0.12", strategy="*free")
    rater = Rater(plan)
    capped = rater.rate(call(seconds=60))
    assert (capped.cost, capped.max_cost_reached) == (D("0.12"), True)
    below = rater.rate(call(seconds=10))
    assert (below.cost, below.max_cost_reached) == (D("0.1"), False)
    later = rater.rate(call(seconds=60, offset=10 * SECOND, cost_so_far=D("0.1")))
    assert later.cost == D("0.02")
    assert rater.max_affordable(call(seconds=3600), D("0.12")) .usage == 3600 * SECOND


def test_max_cost_free_with_connect_fee_is_capped_in_total(build_plan: PlanBuilder) -> None:
    plan = one_rate_plan(build_plan, "0.05,0.01,1s,1s,0s", max_cost="0.12", strategy="*free")
    result = Rater(plan).rate(call(seconds=60))
    assert result.cost == D("0.12")
    assert sum((c.cost for c in result.charges), D(0)) + result.connect_fee == D("0.12")


def test_max_cost_disconnect_rates_fully_but_limits_affordable_usage(build_plan: PlanBuilder) -> None:
    plan = one_rate_plan(build_plan, "0,0.01,1s,1s,0s", max_cost="0.12", strategy="*disconnect")
    rater = Rater(plan)
    result = rater.rate(call(seconds=60))
    assert (result.cost, result.max_cost_reached) == (D("0.6"), True)
    assert rater.max_affordable(call(seconds=60), D(10)) == \
        type(rater.max_affordable(call(seconds=1), None))(12 * SECOND, D("0.12"), MAX_COST)
    second_piece = rater.max_affordable(call(seconds=60, offset=5 * SECOND, cost_so_far=D("0.05")), D(10))
    assert (second_piece.usage, second_piece.reason) == (7 * SECOND, MAX_COST)
    assert rater.max_affordable(call(seconds=12), None).reason == ""


# --- pieces of a call: cumulative rounded totals -----------------------------------------------

def slice_of(offset_s: int, seconds: int, destination: str = "1002") -> object:
    """The piece of a call answered at MONDAY_10H that starts ``offset_s`` into it."""
    return call(destination=destination, seconds=seconds, offset=offset_s * SECOND,
                start=MONDAY_10H + timedelta(seconds=offset_s))


@pytest.fixture
def german(build_plan: PlanBuilder) -> TariffPlan:
    """The sample plan's RT_DE_MOBILE: connect fee 0.1, 0.15/min billed per second, *down 2."""
    return one_rate_plan(build_plan, "0.1,0.15,60s,1s,0s", method="*down", decimals=2)


def test_slices_rounded_down_cost_exactly_the_whole_call(german: TariffPlan) -> None:
    """Ten 10 s slices priced on their own (0.12, 0.02, 0.03, ...) would round each one down and
    sum below the whole call; each slice is the rise of the call's rounded total instead."""
    rater = Rater(german)
    slices = [rater.rate(slice_of(10 * i, 10)).cost for i in range(10)]
    assert slices[:4] == [D("0.12"), D("0.03"), D("0.02"), D("0.03")]   # 0.125, 0.15, 0.175, 0.2
    assert sum(slices) == rater.rate(call(seconds=100)).cost == D("0.35")   # 0.1 + 0.25 exact
    assert rater.rate(slice_of(10, 10)).connect_fee == 0


def test_credit_exhausted_by_slices_pays_the_whole_call(german: TariffPlan) -> None:
    """The repro of the soak finding: 0.16 of credit, 10 s slices. The engine cuts the call when
    the next slice is unaffordable; the whole call, settled once, then costs exactly what the
    slices took, never more than the credit."""
    rater = Rater(german)
    credit, offset, taken = D("0.16"), 0, D(0)
    while True:
        got = rater.max_affordable(slice_of(offset, 10), credit - taken)
        if got.usage == 0:
            break
        assert got.cost == rater.rate(slice_of(offset, got.usage // SECOND)).cost
        taken += got.cost
        offset += got.usage // SECOND
        if got.reason:
            break
    assert offset == 27                      # 0.1 + 27 s x 0.0025 = 0.1675, *down: 0.16
    assert rater.rate(call(seconds=offset)).cost == taken == D("0.16")
    assert rater.rate(call(seconds=offset + 1)).cost == D("0.17")


def test_middle_rounding_slices_add_up_and_affordable_matches(build_plan: PlanBuilder) -> None:
    plan = one_rate_plan(build_plan, "0,0.07,60s,1s,0s", method="*middle", decimals=2)
    rater = Rater(plan)
    pieces = [rater.rate(slice_of(start, 7)).cost for start in range(0, 70, 7)]
    assert sum(pieces) == rater.rate(call(seconds=70)).cost == D("0.08")
    later = rater.max_affordable(slice_of(35, 600), D("0.01"))
    # C(35 s) = 0.04 (0.0408); C stays <= 0.05 while the raw total is below 0.055: to 47 s
    assert (later.usage, later.cost, later.reason) == (12 * SECOND, D("0.01"), INSUFFICIENT_CREDIT)


def test_connect_fee_once_and_group_overhang_across_pieces(rt20: TariffPlan) -> None:
    """A piece inside the first 60 s increment was already paid by the first piece."""
    rater = Rater(rt20)
    first, inside, after = (rater.rate(slice_of(0, 10)), rater.rate(slice_of(10, 20)),
                            rater.rate(slice_of(30, 60)))
    assert (first.cost, first.connect_fee, first.rated_usage) == (D("0.6"), D("0.4"), 60 * SECOND)
    assert (inside.cost, inside.connect_fee, inside.rated_usage) == (0, 0, 50 * SECOND)   # to 60 s
    assert after.cost == D("0.05") and after.connect_fee == 0           # 60..90 s per second
    assert first.cost + inside.cost + after.cost == rater.rate(call(seconds=90)).cost


def test_max_cost_free_across_pieces(build_plan: PlanBuilder) -> None:
    plan = one_rate_plan(build_plan, "0.05,0.01,1s,1s,0s", max_cost="0.12", strategy="*free",
                         method="*down", decimals=2)
    rater = Rater(plan)
    pieces = [rater.rate(slice_of(start, 5)) for start in range(0, 30, 5)]
    assert [p.cost for p in pieces] == [D("0.1"), D("0.02"), D(0), D(0), D(0), D(0)]
    assert pieces[2].max_cost_reached
    assert rater.max_affordable(slice_of(10, 3600), D(0)).usage == 3600 * SECOND   # free from here


def test_max_cost_disconnect_across_pieces_cuts_at_the_cap(build_plan: PlanBuilder) -> None:
    plan = one_rate_plan(build_plan, "0.05,0.01,1s,1s,0s", max_cost="0.12", strategy="*disconnect")
    rater = Rater(plan)
    assert rater.max_affordable(slice_of(0, 5), None).usage == 5 * SECOND
    got = rater.max_affordable(slice_of(5, 60), D(10))
    assert (got.usage, got.cost, got.reason) == (2 * SECOND, D("0.02"), MAX_COST)   # 0.05 + 7 s
    assert rater.max_affordable(slice_of(7, 60), None).usage == 0


def test_a_finer_rounding_later_in_the_call_never_makes_a_piece_negative(build_plan: PlanBuilder) -> None:
    """Day rate rounded *up to 1 decimal, evening rate (from 18:00) exact to 4: the call's total
    would fall from 0.1 to 0.0105 at 18:00; it is held at 0.1 until the evening part exceeds it."""
    plan = build_plan(
        Destinations="DST,1002",
        Timings="""
            DAY,*any,*any,*any,*any,00:00:00
            EVE,*any,*any,*any,*any,18:00:00
        """,
        Rates="""
            RT_DAY,0,0.01,1s,1s,0s
            RT_EVE,0,0.0001,1s,1s,0s
        """,
        DestinationRates="""
            DR_DAY,DST,RT_DAY,*up,1,0,
            DR_EVE,DST,RT_EVE,*up,4,0,
        """,
        RatingPlans="""
            RP,DR_DAY,DAY,10
            RP,DR_EVE,EVE,10
        """,
        RatingProfiles="cgrates.org,call,1001,2014-01-01T00:00:00Z,RP,",
    )
    rater = Rater(plan)
    start = datetime(2025, 1, 6, 17, 59, 59, tzinfo=timezone.utc)
    whole = [rater.rate(call(seconds=s, start=start)).cost for s in (1, 2, 1000)]
    assert whole == [D("0.1"), D("0.1"), D("0.1099")]        # 0.01 + 999 x 0.0001, exact to 4
    pieces = [rater.rate(call(seconds=1, start=start)),
              rater.rate(call(seconds=1, offset=SECOND, start=start + timedelta(seconds=1))),
              rater.rate(call(seconds=998, offset=2 * SECOND, start=start + timedelta(seconds=2)))]
    assert [p.cost for p in pieces] == [D("0.1"), D(0), D("0.0099")]
    assert sum(p.cost for p in pieces) == whole[2]


# --- max_affordable ------------------------------------------------------------------------------

def test_affordable_is_increment_granular(rt20: TariffPlan) -> None:
    rater = Rater(rt20)
    answer = rater.max_affordable(call(seconds=3600), D("0.65"))
    assert (answer.usage, answer.cost, answer.reason) == (90 * SECOND, D("0.65"), INSUFFICIENT_CREDIT)
    assert rater.max_affordable(call(seconds=3600), D("0.6499")).usage == 89 * SECOND


def test_unaffordable_connect_fee_gives_zero(rt20: TariffPlan) -> None:
    answer = Rater(rt20).max_affordable(call(seconds=60), D("0.39"))
    assert (answer.usage, answer.cost, answer.reason) == (0, 0, INSUFFICIENT_CREDIT)


def test_first_increment_unaffordable_gives_zero(rt20: TariffPlan) -> None:
    assert Rater(rt20).max_affordable(call(seconds=60), D("0.5")).usage == 0


def test_affordable_never_exceeds_the_request(rt20: TariffPlan) -> None:
    answer = Rater(rt20).max_affordable(call(seconds=61), D(100))
    assert (answer.usage, answer.cost, answer.reason) == (61 * SECOND, D("0.6017"), "")
    assert Rater(rt20).max_affordable(call(seconds=61), None).usage == 61 * SECOND


def test_affordable_respects_round_up_of_the_total(build_plan: PlanBuilder) -> None:
    # 0.0001 per second with *up to 2 decimals: 1 s already costs 0.01 after rounding
    plan = one_rate_plan(build_plan, "0,0.006,60s,1s,0s", method="*up", decimals=2)
    rater = Rater(plan)
    answer = rater.max_affordable(call(seconds=3600), D("0.01"))
    assert answer.usage == 100 * SECOND
    assert rater.rate(call(seconds=100)).cost == D("0.01")
    assert rater.rate(call(seconds=101)).cost == D("0.02")


# --- non-voice ToRs --------------------------------------------------------------------------

def test_sms_and_data_units(build_plan: PlanBuilder) -> None:
    plan = build_plan(
        Rates="""
            RT_SMS,0,0.01,1,1,0
            RT_DATA,0,0.01,1048576,1024,0
            RT_DATA,0,0.005,1048576,1024,10485760
        """,
        DestinationRates="""
            DR_SMS,*any,RT_SMS,*up,4,0,
            DR_DATA,*any,RT_DATA,*up,6,0,
        """,
        RatingPlans="""
            RP_SMS,DR_SMS,*any,10
            RP_DATA,DR_DATA,*any,10
        """,
        RatingProfiles="""
            cgrates.org,sms,*any,2014-01-01T00:00:00Z,RP_SMS,
            cgrates.org,data,*any,2014-01-01T00:00:00Z,RP_DATA,
        """,
    )
    rater = Rater(plan)
    assert rater.rate(call(category="sms", tor="*sms", usage=3)).cost == D("0.03")
    data = rater.rate(call(category="data", tor="*data", usage=20 * 1048576))
    assert data.cost == D("0.15")   # 10 MiB at 0.01 + 10 MiB at 0.005 (group by offset)
    assert rater.rate(call(category="data", tor="*data", usage=1)).cost == D("0.00001")
    assert rater.max_affordable(call(category="sms", tor="*sms", usage=10), D("0.035")).usage == 3


def test_data_pieces_are_cumulative_over_bytes_at_the_slot_active_at_the_start(build_plan: PlanBuilder) -> None:
    """Non-voice usage is rated whole at the binding active when the session started (pieces
    keep that start; offsets are bytes), so pieces add up to the whole session even with *down
    rounding, and crossing 22:00 does not switch to the night price."""
    plan = build_plan(
        Timings="""
            DAY,*any,*any,*any,*any,00:00:00
            NIGHT,*any,*any,*any,*any,22:00:00
        """,
        Rates="""
            RT_DAY,0,0.07,1048576,1024,0
            RT_NIGHT,0,0.001,1048576,1024,0
        """,
        DestinationRates="""
            DR_DAY,*any,RT_DAY,*down,2,0,
            DR_NIGHT,*any,RT_NIGHT,*down,2,0,
        """,
        RatingPlans="""
            RP,DR_DAY,DAY,10
            RP,DR_NIGHT,NIGHT,10
        """,
        RatingProfiles="cgrates.org,data,*any,2014-01-01T00:00:00Z,RP,",
    )
    rater = Rater(plan)
    start = datetime(2025, 1, 6, 21, 59, tzinfo=timezone.utc)
    mib = 1048576

    def data(offset: int, usage: int) -> object:
        return call(category="data", tor="*data", start=start, offset=offset, usage=usage)

    pieces = [rater.rate(data(i * mib, mib)).cost for i in range(10)]
    assert pieces[:3] == [D("0.07"), D("0.07"), D("0.07")] and sum(pieces) == D("0.70")
    halves = [rater.rate(data(i * mib // 2, mib // 2)).cost for i in range(5)]
    assert halves == [D("0.03"), D("0.04"), D("0.03"), D("0.04"), D("0.03")]   # 0.035 steps
    assert sum(halves) == rater.rate(data(0, 5 * mib // 2)).cost == D("0.17")
    # C(0.5 MiB) = 0.03 (0.035); 0.04 more allows a total up to 0.07, i.e. a raw total below
    # 0.08: 1170 KiB (0.07998); the piece is what lies beyond the first half MiB
    got = rater.max_affordable(data(mib // 2, 10 * mib), D("0.04"))
    assert (got.usage, got.cost) == (1170 * 1024 - mib // 2, D("0.04"))


# --- EventCost JSON ------------------------------------------------------------------------------

def test_event_cost_has_the_cgrates_shape(rt20: TariffPlan) -> None:
    result = Rater(rt20, cgrates_compat=True).rate(call(seconds=120))
    doc = orjson.loads(orjson.dumps(result.to_event_cost(cgrid="abc", run_id="*default")))
    assert (doc["CGRID"], doc["RunID"], doc["Cost"], doc["Usage"]) == ("abc", "*default", 0.7002, 120 * SECOND)
    first, second = doc["Charges"]
    assert first["Increments"][0] == {"Usage": 0, "Cost": 0.4, "AccountingID": "", "CompressFactor": 1}
    assert second["Increments"] == [{"Usage": SECOND, "Cost": 0.00167, "AccountingID": "",
                                     "CompressFactor": 60}]
    rating = doc["Rating"][first["RatingID"]]
    assert (rating["RoundingMethod"], rating["RoundingDecimals"], rating["ConnectFee"]) == ("*up", 4, 0.4)
    assert doc["RatingFilters"][rating["RatingFiltersID"]] == {
        "DestinationID": "DST", "DestinationPrefix": "1002", "RatingPlanID": "RP",
        "Subject": "*out:cgrates.org:call:1001"}
    assert [r["Value"] for r in doc["Rates"][rating["RatesID"]]] == [0.2, 0.1]
    assert doc["Timings"][rating["TimingID"]]["StartTime"] == "00:00:00"
    assert doc["StartTime"] == "2025-01-06T10:00:00Z"


def test_connect_fee_only_slot_with_rate_unit_0(build_plan: PlanBuilder) -> None:
    plan = one_rate_plan(build_plan, "0.1,0,0,1s,0", decimals=20)
    assert cost(plan, 3600) == D("0.1")
    assert Rater(plan).max_affordable(call(seconds=3600), D("0.1")).usage == 3600 * SECOND
    assert Rater(plan).max_affordable(call(seconds=3600), D("0.09")).usage == 0


@pytest.mark.parametrize(("start", "hours", "expected"), [
    # spring forward: Sunday 00:30 CET -> 12:30 CEST is 11 h; the 12:00 cut is 10.5 h in
    (utc(2025, 3, 29, 23, 30), 11, 3 * 37800 + 1800),
    # fall back: Sunday 00:30 CEST -> 12:30 CET is 13 h; the 12:00 cut is 12.5 h in
    (utc(2025, 10, 25, 22, 30), 13, 3 * 45000 + 1800),
])
def test_timings_follow_wall_clock_across_daylight_saving(build_plan: PlanBuilder, start: datetime, hours: int,
                                                          expected: int) -> None:
    from zoneinfo import ZoneInfo

    plan = build_plan(
        Destinations="DST,1002",
        Timings="""
            ALWAYS,*any,*any,*any,*any,00:00:00
            SUNDAY_NOON,*any,*any,*any,0,12:00:00
        """,
        Rates="""
            RT_3,0,3,1s,1s,0s
            RT_1,0,1,1s,1s,0s
        """,
        DestinationRates="""
            DR_3,DST,RT_3,*up,4,0,
            DR_1,DST,RT_1,*up,4,0,
        """,
        RatingPlans="""
            RP,DR_3,ALWAYS,10
            RP,DR_1,SUNDAY_NOON,10
        """,
        RatingProfiles="cgrates.org,call,1001,2014-01-01T00:00:00Z,RP,",
    )
    result = Rater(plan, tz=ZoneInfo("Europe/Berlin")).rate(call(seconds=hours * 3600, start=start))
    assert result.cost == D(expected)
    assert result.charges[1].start.astimezone(ZoneInfo("Europe/Berlin")).hour == 12


def test_fixed_offset_timezone_cuts_like_the_named_zone(timed: TariffPlan) -> None:
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    req = call(seconds=3600, start=utc(2025, 7, 7, 5, 30))      # 07:30 in Berlin (UTC+2 in July)
    fixed = Rater(timed, tz=timezone(timedelta(hours=2))).rate(req)
    named = Rater(timed, tz=ZoneInfo("Europe/Berlin")).rate(req)
    assert [(c.rates_id, c.start) for c in fixed.charges] == [(c.rates_id, c.start) for c in named.charges] == [
        ("RT_BASE", utc(2025, 7, 7, 5, 30)), ("RT_DAY", utc(2025, 7, 7, 6, 0))]
    assert fixed.cost == named.cost == D("0.6") * 30 + D("1.2") * 30


def test_prefix_whose_destination_is_not_active_yet_falls_to_a_shorter_prefix(build_plan: PlanBuilder) -> None:
    plan = build_plan(
        Destinations="""
            DST_DE,+49
            DST_DE_NIGHT,+4917
        """,
        Timings="NIGHT,*any,*any,*any,*any,22:00:00",
        Rates="""
            RT_DE,0,1,60s,60s,0s
            RT_NIGHT,0,0.5,60s,60s,0s
        """,
        DestinationRates="""
            DR_DE,DST_DE,RT_DE,*up,4,0,
            DR_NIGHT,DST_DE_NIGHT,RT_NIGHT,*up,4,0,
        """,
        RatingPlans="""
            RP,DR_DE,*any,10
            RP,DR_NIGHT,NIGHT,10
        """,
        RatingProfiles="cgrates.org,call,1001,2014-01-01T00:00:00Z,RP,",
    )
    day = Rater(plan).rate(call(destination="+4917123", seconds=60, start=utc(2025, 1, 6, 12, 0)))
    night = Rater(plan).rate(call(destination="+4917123", seconds=60, start=utc(2025, 1, 6, 23, 0)))
    assert (day.destination_id, day.cost) == ("DST_DE", D(1))
    assert (night.destination_id, night.cost) == ("DST_DE_NIGHT", D("0.5"))
