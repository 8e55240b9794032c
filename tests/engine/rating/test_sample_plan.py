"""Every price documented in config/tariffplan/README.md, rated from the shipped sample plan."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from engine.errors import RATING_PLAN_NOT_FOUND, UNAUTHORIZED_DESTINATION, ChargingError
from engine.rating import MAX_COST, Rater, RatingRequest
from engine.tariffplan.loader import load_tariffplan
from engine.tariffplan.model import TariffPlan

SAMPLE = Path(__file__).resolve().parents[3] / "config" / "tariffplan"
S = 1_000_000_000
MON_10 = "2025-01-06T10:00:00"


@pytest.fixture(scope="module")
def plan() -> TariffPlan:
    return load_tariffplan(SAMPLE)


def request(subject: str, destination: str, at: str, usage: int, *, category: str = "call",
            tor: str = "*voice") -> RatingRequest:
    return RatingRequest("cgrates.org", category, subject, destination,
                         datetime.fromisoformat(at).replace(tzinfo=timezone.utc), usage, tor)


PRICES = [
    # subject, destination, answer time, usage, exact, compat
    ("1001", "1002", MON_10, 120 * S, "0.7", "0.7002"),
    ("1001", "1002", MON_10, 30 * S, "0.6", "0.6"),
    ("1001", "1002", MON_10, 90 * S, "0.65", "0.6501"),
    ("1001", "1002", "2014-01-13T23:59:00", 120 * S, "0.4", "0.4002"),
    ("1001", "1003", MON_10, 10 * S, "0.1", "0.1"),
    ("1001", "1003", MON_10, 60 * S, "0.6", "0.6"),
    ("1002", "1003", MON_10, 60 * S, "0.12", "0.12"),
    ("1002", "1001", MON_10, 120 * S, "0.35", "0.3498"),
    ("1003", "1002", MON_10, 61 * S, "0.02", "0.02"),
    ("1004", "1001", MON_10, 60 * S, "0.3", "0.3"),
    ("1004", "1001", "2025-01-06T07:00:00", 60 * S, "0.06", "0.06"),
    ("1004", "1001", "2025-01-06T20:00:00", 60 * S, "0.06", "0.06"),
    ("1004", "1001", "2025-01-11T10:00:00", 60 * S, "0.06", "0.06"),
    ("1004", "1001", "2025-01-06T18:59:30", 60 * S, "0.18", "0.18"),
    ("1004", "1001", "2025-12-25T10:00:00", 60 * S, "0.01", "0.01"),
    ("1004", "1002", MON_10, 120 * S, "0.7", "0.7002"),
    ("1001", "+4930123456", MON_10, 90 * S, "0.08", "0.07"),
    ("1001", "+4930123456", MON_10, 61 * S, "0.05", "0.05"),
    ("1001", "+491701234567", MON_10, 61 * S, "0.25", "0.25"),
    ("9999", "+491701234567", MON_10, 60 * S, "0.25", "0.25"),
]


@pytest.mark.parametrize(("subject", "destination", "at", "usage", "exact", "compat"), PRICES)
def test_documented_voice_prices(plan: TariffPlan, subject: str, destination: str, at: str, usage: int,
                                 exact: str, compat: str) -> None:
    req = request(subject, destination, at, usage)
    assert Rater(plan).rate(req).cost == Decimal(exact)
    assert Rater(plan, cgrates_compat=True).rate(req).cost == Decimal(compat)


def test_documented_rating_details(plan: TariffPlan) -> None:
    rater = Rater(plan)
    mobile = rater.rate(request("9999", "+491701234567", MON_10, 60 * S))
    assert (mobile.subject_key, mobile.rating_plan_id, mobile.destination_id, mobile.prefix) == (
        "cgrates.org:call:*any", "RP_ANY", "DST_DE_MOBILE", "+4917")
    fallback = rater.rate(request("1004", "1002", MON_10, 120 * S))
    assert (fallback.subject_key, fallback.rating_plan_id) == ("cgrates.org:call:1001", "RP_1001")
    split = rater.rate(request("1004", "1001", "2025-01-06T18:59:30", 60 * S))
    assert [c.timing_id for c in split.charges] == ["PEAK", "OFFPEAK_EVENING"]
    assert rater.rate(request("1001", "1003", MON_10, 60 * S)).max_cost_reached


@pytest.mark.parametrize(("subject", "destination", "category", "code"), [
    ("9999", "1002", "call", UNAUTHORIZED_DESTINATION),
    ("1001", "5555", "call", UNAUTHORIZED_DESTINATION),
    ("1001", "1002", "video", RATING_PLAN_NOT_FOUND),
])
def test_documented_errors(plan: TariffPlan, subject: str, destination: str, category: str, code: str) -> None:
    with pytest.raises(ChargingError) as err:
        Rater(plan).rate(request(subject, destination, MON_10, 60 * S, category=category))
    assert err.value.code == code


@pytest.mark.parametrize(("category", "tor", "usage", "expected"), [
    ("sms", "*sms", 1, "0.01"),
    ("data", "*data", 10 * 1048576, "0.1"),
    ("data", "*data", 1, "0.01"),
])
def test_documented_sms_and_data_prices(plan: TariffPlan, category: str, tor: str, usage: int,
                                        expected: str) -> None:
    subject = "1004" if tor == "*data" else "1001"
    result = Rater(plan).rate(request(subject, "1002", MON_10, usage, category=category, tor=tor))
    assert result.cost == Decimal(expected)


def test_documented_affordability(plan: TariffPlan) -> None:
    rater = Rater(plan)
    long_call = rater.max_affordable(request("1001", "1002", MON_10, 3 * 3600 * S), Decimal(10))
    assert (long_call.usage, long_call.cost) == (95 * 60 * S, Decimal(10))
    capped = rater.max_affordable(request("1001", "1003", MON_10, 60 * S), Decimal(10))
    assert (capped.usage, capped.reason) == (12 * S, MAX_COST)


def test_repeated_requests_get_the_same_answer_with_their_own_request(plan: TariffPlan) -> None:
    """The rater remembers answers per request (a session prices one piece several times):
    a repeat, or an equal request built anew, costs the same and carries the caller's request,
    and max_affordable still cuts at the credit."""
    rater = Rater(plan)
    first = request("1001", "1002", MON_10, 95 * S)
    again = request("1001", "1002", MON_10, 95 * S)
    a, b = rater.rate(first), rater.rate(again)
    assert a.request is first and b.request is again
    assert (a.cost, b.cost) == (Decimal("0.6584"), Decimal("0.6584"))
    assert a.charges == b.charges and a.to_event_cost("x") == b.to_event_cost("x")
    assert rater.rate(first) is a
    assert rater.max_affordable(again, Decimal("0.5")).usage == 0
    assert rater.max_affordable(again, Decimal("0.62")).usage == 72 * S   # 0.60 first minute, 0.02 = 12 s
    assert rater.max_affordable(again, None).cost == Decimal("0.6584")


def test_remembered_answers_do_not_hide_a_different_request(plan: TariffPlan) -> None:
    rater = Rater(plan)
    assert rater.rate(request("1001", "1002", MON_10, 60 * S)).cost == Decimal("0.6")
    assert rater.rate(request("1001", "1002", MON_10, 120 * S)).cost == Decimal("0.7")
    later = RatingRequest("cgrates.org", "call", "1001", "1002",
                          datetime(2025, 1, 6, 10, tzinfo=timezone.utc), 120 * S, offset=60 * S)
    assert rater.rate(later).cost == Decimal("0.2") and rater.rate(later).connect_fee == 0
    with pytest.raises(ChargingError):
        rater.rate(request("1001", "999", MON_10, 60 * S))
    with pytest.raises(ChargingError):
        rater.rate(request("1001", "999", MON_10, 60 * S))
