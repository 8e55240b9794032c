"""Answers CGRateS's own integration test asserts for its ``tutorial2`` plan
(general_tests/tutorial2_it_test.go, testTutGetCost), rated from an equivalent CSV plan.

They exercise rules the simple vectors do not: a subject falling back to ``*any`` for a
destination its own plan lacks, two destinations sharing a prefix where the holiday-only
one steps aside on ordinary days, peak/off-peak by timing, data and SMS by units, a
connect-fee-only slot (RateUnit 0) and per-call pricing.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from engine.errors import UNAUTHORIZED_DESTINATION, ChargingError
from engine.rating import Rater, RatingRequest
from engine.tariffplan.model import TariffPlan
from tests.engine.rating.ratinghelpers import SECOND, PlanBuilder

MONDAY_10H = "2025-01-06T10:00:00+00:00"


@pytest.fixture
def tutorial2(build_plan: PlanBuilder) -> TariffPlan:
    return build_plan(
        Destinations="""
            DST_10,10
            DST_20,20
            DST_2030,20
            DST_2030,30
            DST_1002,1002
        """,
        Timings="""
            PEAK,*any,*any,*any,1;2;3;4;5,08:00:00
            OFFPEAK_MORNING,*any,*any,*any,1;2;3;4;5,00:00:00
            OFFPEAK_EVENING,*any,*any,*any,1;2;3;4;5,19:00:00
            OFFPEAK_WEEKEND,*any,*any,*any,6;7,00:00:00
            NEW_YEAR,*any,1,1,*any,00:00:00
        """,
        Rates="""
            RT_120C,0.2,1.2,1m,1m,0
            RT_120C,,1.2,1m,1s,1m
            RT_60C,0.1,0.01,1s,1s,0
            RT_10C_CN,0.1,0,0,1s,0
            RT_1024_1,0,1,1024,1024,0
            RT_10C1,0,0.1,1,1,0
            RT_20C1,0,0.2,1,1,0
            RT_10CNT,0.1,0,1s,1s,0
        """,
        DestinationRates="""
            DR_10_120C,DST_10,RT_120C,*up,4,,
            DR_10_60C,DST_10,RT_60C,*up,4,,
            DR_2030_120C,DST_2030,RT_120C,*up,4,,
            DR_20_60C,DST_20,RT_60C,*up,4,,
            DR_1002_60C,DST_1002,RT_60C,*up,4,,
            DR_ANY_10C_CN,*any,RT_10C_CN,*up,4,,
            DR_ANY_1024_1,*any,RT_1024_1,*up,4,,
            DR_1002_10C1,DST_1002,RT_10C1,*up,4,,
            DR_10_20C1,DST_10,RT_20C1,*up,4,,
            DR_10CNT,*any,RT_10CNT,*up,4,,
        """,
        RatingPlans="""
            RP_STANDARD,DR_10_120C,PEAK,10
            RP_STANDARD,DR_10_60C,OFFPEAK_MORNING,10
            RP_STANDARD,DR_10_60C,OFFPEAK_EVENING,10
            RP_STANDARD,DR_10_60C,OFFPEAK_WEEKEND,10
            RP_STANDARD,DR_2030_120C,*any,10
            RP_STANDARD,DR_20_60C,NEW_YEAR,20
            RP_1001,DR_1002_60C,*any,10
            RP_SPECIAL_BLC,DR_ANY_10C_CN,*any,10
            RP_DATA,DR_ANY_1024_1,*any,10
            RP_SMS,DR_1002_10C1,*any,10
            RP_SMS,DR_10_20C1,*any,10
            RP_10CNT,DR_10CNT,*any,0
        """,
        RatingProfiles="""
            cgrates.org,call,*any,2019-03-01T00:00:00Z,RP_STANDARD,
            cgrates.org,call,1001,2019-03-01T00:00:00Z,RP_1001,*any
            cgrates.org,call,RPF_SPECIAL_BLC,2019-03-01T00:00:00Z,RP_SPECIAL_BLC,
            cgrates.org,data,*any,2019-03-01T00:00:00Z,RP_DATA,
            cgrates.org,sms,*any,2019-03-01T00:00:00Z,RP_SMS,
            cgrates.org,reseller1,*any,2019-03-01T00:00:00Z,RP_10CNT,
        """,
    )


CASES = [
    # category, subject, destination, answer time, usage, tor, CGRateS's answer
    ("call", "1001", "1002", MONDAY_10H, 45 * SECOND, "*voice", "0.55"),          # own plan, 0.1 + 45 x 0.01
    ("call", "1001", "1003", "2019-03-11T09:00:00+00:00", 45 * SECOND, "*voice", "1.4"),   # fallback *any, PEAK
    ("call", "1001", "1003", "2019-03-11T21:00:00+00:00", 45 * SECOND, "*voice", "0.55"),  # OFFPEAK_EVENING
    ("call", "1002", "2001", MONDAY_10H, 45 * SECOND, "*voice", "1.4"),           # DST_20 is NEW_YEAR only
    ("call", "1002", "2001", "2020-01-01T21:00:00+00:00", 45 * SECOND, "*voice", "0.55"),  # DST_20 weight 20
    ("data", "1001", "", MONDAY_10H, 2048, "*data", "2"),
    ("sms", "1003", "1002", MONDAY_10H, 1, "*sms", "0.1"),
    ("sms", "1001", "1003", MONDAY_10H, 1, "*sms", "0.2"),
    ("call", "RPF_SPECIAL_BLC", "1002", MONDAY_10H, 300 * SECOND, "*voice", "0.1"),   # fee only
    ("reseller1", "1001", "1002", MONDAY_10H, 45 * SECOND, "*voice", "0.1"),     # per call
]


@pytest.mark.parametrize("compat", [False, True], ids=["exact", "compat"])
@pytest.mark.parametrize(("category", "subject", "destination", "at", "usage", "tor", "expected"), CASES)
def test_cgrates_tutorial2_get_cost(tutorial2: TariffPlan, compat: bool, category: str, subject: str,
                                    destination: str, at: str, usage: int, tor: str, expected: str) -> None:
    request = RatingRequest("cgrates.org", category, subject, destination, datetime.fromisoformat(at),
                            usage, tor)
    assert Rater(tutorial2, cgrates_compat=compat).rate(request).cost == Decimal(expected)


@pytest.mark.parametrize(("category", "destination", "usage", "tor"), [
    ("call", "4003", 60 * SECOND, "*voice"),
    ("sms", "2001", 1, "*sms"),
])
def test_cgrates_tutorial2_unauthorized(tutorial2: TariffPlan, category: str, destination: str, usage: int,
                                        tor: str) -> None:
    request = RatingRequest("cgrates.org", category, "1001", destination,
                            datetime(2019, 3, 11, 9, tzinfo=timezone.utc), usage, tor)
    with pytest.raises(ChargingError) as err:
        Rater(tutorial2).rate(request)
    assert err.value.code == UNAUTHORIZED_DESTINATION


def test_shared_prefix_reports_the_destination_that_rated(tutorial2: TariffPlan) -> None:
    rater = Rater(tutorial2)
    ordinary = rater.rate(RatingRequest("cgrates.org", "call", "1002", "2001",
                                        datetime(2025, 1, 6, 10, tzinfo=timezone.utc), 45 * SECOND))
    holiday = rater.rate(RatingRequest("cgrates.org", "call", "1002", "2001",
                                       datetime(2020, 1, 1, 21, tzinfo=timezone.utc), 45 * SECOND))
    assert (ordinary.destination_id, ordinary.prefix) == ("DST_2030", "20")
    assert (holiday.destination_id, holiday.prefix) == ("DST_20", "20")
