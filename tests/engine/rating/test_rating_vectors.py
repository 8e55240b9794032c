"""CGRateS's own documented answers (research/cgrates.md §3.4) and the issue's known answers.

Each plan is a small CSV folder read by the loader, so these numbers come from
loader + rater together. Exact mode and ``cgrates_compat`` are both checked:
they agree wherever per-increment prices are exact at 5 decimals, and differ
exactly as CGRateS does where they are not (vector 1: 0.7 vs 0.7002).
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from engine.errors import RATING_PLAN_NOT_FOUND, UNAUTHORIZED_DESTINATION, ChargingError
from engine.rating import MAX_COST, Rater
from engine.tariffplan.model import TariffPlan
from tests.engine.rating.ratinghelpers import SECOND, PlanBuilder, call, cost, one_rate_plan

D = Decimal
BOTH = pytest.mark.parametrize("compat", [False, True], ids=["exact", "compat"])


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# --- vector 1: the tutorial RT_20CNT ------------------------------------------------------

@pytest.fixture
def tutorial(build_plan: PlanBuilder) -> TariffPlan:
    return build_plan(
        Destinations="DST_1002,1002",
        Rates="""
            RT_20CNT,0.4,0.2,60s,60s,0s
            RT_20CNT,0,0.1,60s,1s,60s
        """,
        DestinationRates="DR_1002_20CNT,DST_1002,RT_20CNT,*up,4,0,",
        RatingPlans="RP_1001,DR_1002_20CNT,*any,10",
        RatingProfiles="cgrates.org,call,1001,2014-01-14T00:00:00Z,RP_1001,",
    )


def test_vector1_tutorial_120s_exact_is_0_7(tutorial: TariffPlan) -> None:
    assert cost(tutorial, 120) == D("0.7")


def test_vector1_tutorial_120s_compat_is_0_7002(tutorial: TariffPlan) -> None:
    # 0.4 connect fee + 0.2 first minute + 60 x round(0.1/60, 5) = 60 x 0.00167
    assert cost(tutorial, 120, compat=True) == D("0.7002")


# --- vectors 2-7: the EVENING plan of engine/loader_csv_test.go -----------------------------

@pytest.fixture
def evening(build_plan: PlanBuilder) -> TariffPlan:
    return build_plan(
        Destinations="""
            NAT,0256
            NAT,0257
            NAT,0723
        """,
        Timings="""
            WORKDAYS_00,*any,*any,*any,1;2;3;4;5,00:00:00
            WORKDAYS_18,*any,*any,*any,1;2;3;4;5,18:00:00
            WEEKENDS,*any,*any,*any,6;7,00:00:00
        """,
        Rates="""
            R4,1,1,1s,1s,0s
            R5,0,0.5,1s,1s,0s
        """,
        DestinationRates="""
            DR_R4,NAT,R4,*middle,4,0,
            DR_R5,NAT,R5,*middle,4,0,
        """,
        RatingPlans="""
            EVENING,DR_R4,WORKDAYS_00,10
            EVENING,DR_R5,WORKDAYS_18,10
            EVENING,DR_R5,WEEKENDS,10
        """,
        RatingProfiles="""
            vdf,0,rif,2012-01-01T00:00:00Z,EVENING,
            vdf,0,*any,2012-01-01T00:00:00Z,EVENING,
            cgrates.org,0,rif,2012-01-01T00:00:00Z,EVENING,
        """,
    )


@BOTH
def test_vector2_thursday_across_18h_costs_2701(evening: TariffPlan, compat: bool) -> None:
    # 2012-02-02 is a Thursday: 30 min at 1/s + 30 min at 0.5/s + connect fee 1
    result = Rater(evening, cgrates_compat=compat).rate(
        call("rif", "0256", 3600, tenant="vdf", category="0", start=utc(2012, 2, 2, 17, 30)))
    assert result.cost == D(2701)
    assert [c.rates_id for c in result.charges] == ["R4", "R5"]
    assert [c.usage for c in result.charges] == [1800 * SECOND, 1800 * SECOND]


@BOTH
def test_vector3_no_connect_fee_for_a_later_piece(evening: TariffPlan, compat: bool) -> None:
    result = Rater(evening, cgrates_compat=compat).rate(
        call("rif", "0256", 3600, tenant="vdf", category="0", start=utc(2012, 2, 2, 17, 30), offset=SECOND))
    assert result.cost == D(2700)
    assert result.connect_fee == 0


@BOTH
def test_vector4_midnight_split_first_span_has_no_connect_fee(evening: TariffPlan, compat: bool) -> None:
    # Tue 23:50 -> Wed 00:30: 10 min R5 (0.5/s, fee 0) then 30 min R4 (1/s; its fee is not first)
    result = Rater(evening, cgrates_compat=compat).rate(
        call("rif", "0256", 2400, tenant="vdf", category="0", start=utc(2012, 2, 7, 23, 50)))
    assert result.cost == D(2100)
    assert result.charges[1].start == utc(2012, 2, 8, 0, 0)


@BOTH
def test_vector5_less_than_a_minute(evening: TariffPlan, compat: bool) -> None:
    assert cost(evening, 30, compat=compat, subject="rif", destination="0257", tenant="vdf", category="0",
                start=utc(2012, 2, 8, 23, 50)) == D(15)


@BOTH
def test_vector6_unique_price(evening: TariffPlan, compat: bool) -> None:
    assert cost(evening, 3621, compat=compat, subject="rif", destination="0723045326", tenant="vdf",
                category="0", start=utc(2012, 2, 8, 18, 30)) == D("1810.5")


@BOTH
def test_vector7_unknown_subject_uses_any(evening: TariffPlan, compat: bool) -> None:
    result = Rater(evening, cgrates_compat=compat).rate(
        call("nobody", "0256", 3600, tenant="vdf", category="0", start=utc(2012, 2, 3, 17, 30)))
    assert result.cost == D(2701)
    assert result.subject_key == "vdf:0:*any"


def test_vector7_tenant_without_any_is_rating_plan_not_found(evening: TariffPlan) -> None:
    with pytest.raises(ChargingError) as err:
        Rater(evening).rate(call("nobody", "0256", 60, tenant="cgrates.org", category="0"))
    assert err.value.code == RATING_PLAN_NOT_FOUND


def test_vector7_weekend_uses_weekday_7_as_sunday(evening: TariffPlan) -> None:
    # plans in the wild (the old CGRateS tutorial) write Sunday as 7 in "6;7"; chargeway reads
    # 7 as Sunday. 2012-02-05 is a Sunday.
    assert cost(evening, 10, subject="rif", destination="0256", tenant="vdf", category="0",
                start=utc(2012, 2, 5, 12, 0)) == D(5)


# --- vector 8: rate groups (LANDLINE_OFFPEAK) ----------------------------------------------

@BOTH
@pytest.mark.parametrize(("seconds", "expected", "spans"), [(85, 85, 2), (132, 132, 2), (30, 60, 1)])
def test_vector8_rate_groups(build_plan: PlanBuilder, compat: bool, seconds: int, expected: int,
                             spans: int) -> None:
    plan = one_rate_plan(build_plan, """
        0,1,1s,60s,0s
        0,1,1s,1s,60s
    """)
    result = Rater(plan, cgrates_compat=compat).rate(call(seconds=seconds))
    assert result.cost == D(expected)
    assert len(result.charges) == spans


# --- vector 9: per-increment rounding to N decimals ----------------------------------------

@pytest.fixture
def r2(build_plan: PlanBuilder) -> TariffPlan:
    return one_rate_plan(build_plan, "0,0.1,60s,1s,0s", method="*middle", decimals=4, subject="round")


def test_vector9_exact(r2: TariffPlan) -> None:
    assert cost(r2, 180, subject="round") == D("0.3")


def test_vector9_compat_5_decimals(r2: TariffPlan) -> None:
    assert cost(r2, 180, subject="round", compat=True) == D("0.3006")


def test_vector9_compat_6_decimals(r2: TariffPlan) -> None:
    rater = Rater(r2, cgrates_compat=True, compat_decimals=6)
    assert rater.rate(call("round", seconds=180)).cost == D("0.3001")


# --- vectors 10-11: DY plan ----------------------------------------------------------------

@pytest.fixture
def dy(build_plan: PlanBuilder) -> TariffPlan:
    return one_rate_plan(build_plan, "0.15,0.05,60s,1s,0s", method="*up", decimals=2, subject="dy",
                         prefix="0723")


@BOTH
def test_vector10_connect_fee_and_round_up_2_decimals(dy: TariffPlan, compat: bool) -> None:
    assert cost(dy, 24, subject="dy", destination="0723123113", compat=compat) == D("0.17")


def test_vector11_unmatched_destination_is_unauthorized(dy: TariffPlan) -> None:
    rater = Rater(dy)
    with pytest.raises(ChargingError) as err:
        rater.max_affordable(call("dy", "9999999999", 2), Decimal(10))
    assert err.value.code == UNAUTHORIZED_DESTINATION


# --- vector 12: GERMANY +49 ----------------------------------------------------------------

@BOTH
@pytest.mark.parametrize(("seconds", "expected"), [(90, 90), (0, 0)])
def test_vector12_germany(build_plan: PlanBuilder, compat: bool, seconds: int, expected: int) -> None:
    plan = one_rate_plan(build_plan, "0,1,1s,1s,0s", prefix="+49")
    assert cost(plan, seconds, destination="+4986517174963", compat=compat) == D(expected)


# --- vector 13: data is rated entirely with the slot active at its start --------------------

@pytest.fixture
def data_plan(build_plan: PlanBuilder) -> TariffPlan:
    return build_plan(
        Timings="""
            T00,*any,*any,*any,*any,00:00:00
            T01,*any,*any,*any,*any,01:00:00
        """,
        Rates="""
            RT_DATA_2C,0,0.002,10s,10s,0s
            RT_DATA_1C,0,0.001,10,10,0
        """,
        DestinationRates="""
            DR_2C,*any,RT_DATA_2C,*up,4,0,
            DR_1C,*any,RT_DATA_1C,*up,4,0,
        """,
        RatingPlans="""
            RP_DATA,DR_2C,T00,10
            RP_DATA,DR_1C,T01,10
        """,
        RatingProfiles="cgrates.org,data,*any,2014-01-01T00:00:00Z,RP_DATA,",
    )


@BOTH
@pytest.mark.parametrize(("start", "usage", "expected"), [
    (utc(2016, 1, 5, 0, 0), 20 * SECOND, "0.004"),
    (utc(2016, 1, 5, 1, 0), 20, "0.002"),
    (utc(2016, 1, 5, 0, 59, 50), 20 * SECOND, "0.004"),
])
def test_vector13_data_not_split(data_plan: TariffPlan, compat: bool, start: datetime, usage: int,
                                 expected: str) -> None:
    result = Rater(data_plan, cgrates_compat=compat).rate(
        call("1001", "", category="data", tor="*data", start=start, usage=usage))
    assert result.cost == D(expected)
    assert len(result.charges) == 1


# --- vector 14: MaxCost *disconnect limits the affordable usage ----------------------------

@pytest.fixture
def mx(build_plan: PlanBuilder) -> TariffPlan:
    return build_plan(
        Destinations="DST,0723",
        Timings="WORKDAYS,*any,*any,*any,1;2;3;4;5,00:00:00",
        Rates="MX,0,1,1s,1s,0s",
        DestinationRates="DR_MX,DST,MX,*up,4,10,*disconnect",
        RatingPlans="RP_MX,DR_MX,WORKDAYS,10",
        RatingProfiles="cgrates.org,call,max,2014-01-01T00:00:00Z,RP_MX,",
    )


@BOTH
def test_vector14_max_cost_disconnect_gives_10s(mx: TariffPlan, compat: bool) -> None:
    rater = Rater(mx, cgrates_compat=compat)
    answer = rater.max_affordable(call("max", "0723123456", 1800), Decimal(10))
    assert answer.usage == 10 * SECOND
    assert answer.cost == D(10)
    unlimited = rater.max_affordable(call("max", "0723123456", 1800), None)
    assert (unlimited.usage, unlimited.reason) == (10 * SECOND, MAX_COST)


# --- the known answers (RoundingDecimals 4, *up) ------------------------------------

@pytest.mark.parametrize(("increment", "seconds", "expected"), [
    ("60s", 1, "25"), ("60s", 60, "25"), ("60s", 61, "50"),
    ("1s", 30, "12.5"), ("1s", 60, "25"), ("1s", 90, "37.5"),
    ("15s", 61, "31.25"), ("15s", 75, "31.25"), ("15s", 76, "37.5"),
])
def test_known_answers_rate_25_per_minute(build_plan: PlanBuilder, increment: str, seconds: int,
                                          expected: str) -> None:
    plan = one_rate_plan(build_plan, f"0,25,60s,{increment},0s")
    assert cost(plan, seconds) == D(expected)


@pytest.mark.parametrize(("increment", "seconds"), [("1s", 30), ("1s", 60), ("1s", 90), ("15s", 76)])
def test_known_answers_in_compat_mode_round_each_increment(build_plan: PlanBuilder, increment: str,
                                                           seconds: int) -> None:
    plan = one_rate_plan(build_plan, f"0,25,60s,{increment},0s")
    step = int(increment[:-1])
    per_increment = (D(25) * step / 60).quantize(D("0.00001"), rounding="ROUND_HALF_UP")
    increments = -(-seconds // step)
    assert cost(plan, seconds, compat=True) == per_increment * increments


@BOTH
@pytest.mark.parametrize("seconds", [1, 60, 61, 3600])
def test_known_answer_connect_fee_only(build_plan: PlanBuilder, compat: bool, seconds: int) -> None:
    plan = one_rate_plan(build_plan, "25,0,60s,60s,0s")
    assert cost(plan, seconds, compat=compat) == D(25)
