"""The Rater's memo of answers never changes an answer.

A Rater keeps what it priced and re-uses it for an equal request, and for the same call
shape (subject, destination, usage, offset) at another start when the price cannot depend
on the start. These tests price many shapes at starts on both sides of every clock edge of
the sample plan (an activation time, peak/off-peak, midnight, Christmas) in a shuffled
order, and compare every answer with one computed from scratch: cost, charges (their start
times included), the EventCost document, and what a credit buys.
"""

from __future__ import annotations

import json
import pickle
import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from engine.errors import ChargingError
from engine.rating import Rater, RatingRequest
from engine.tariffplan.loader import load_tariffplan
from engine.tariffplan.model import TariffPlan

SAMPLE = Path(__file__).resolve().parents[3] / "config" / "tariffplan"
S = 1_000_000_000
UTC = timezone.utc

# Starts just before, on and after the sample plan's clock edges.
EDGES = [
    datetime(2014, 1, 13, 23, 58, tzinfo=UTC),      # 1001 changes plan at 2014-01-14 00:00
    datetime(2014, 1, 14, 0, 0, tzinfo=UTC),        # pieces just after it: their call began before
    datetime(2025, 1, 6, 7, 58, 30, tzinfo=UTC),    # Monday: 1004 peak from 08:00
    datetime(2025, 1, 6, 18, 59, tzinfo=UTC),       # off-peak from 19:00
    datetime(2025, 1, 10, 23, 59, 30, tzinfo=UTC),  # Friday -> weekend at midnight
    datetime(2025, 12, 24, 23, 59, 50, tzinfo=UTC),  # Christmas day rate
    datetime(2026, 3, 2, 10, 0, tzinfo=UTC),        # an ordinary Monday morning
]
SHAPES = [
    # subject, destination, usage s, offset s, category, tor
    ("1001", "1002", 95, 0, "call", "*voice"),
    ("1001", "1002", 30, 60, "call", "*voice"),
    ("1001", "1002", 300, 0, "call", "*voice"),
    ("1001", "1003", 20, 0, "call", "*voice"),       # MaxCost *disconnect
    ("1002", "1003", 200, 0, "call", "*voice"),      # MaxCost *free
    ("1002", "1003", 30, 120, "call", "*voice"),
    ("1003", "555", 125, 0, "call", "*voice"),       # *any destination rate
    ("1004", "1001", 90, 0, "call", "*voice"),       # peak / off-peak / holiday
    ("1004", "1001", 30, 30, "call", "*voice"),
    ("1004", "1002", 61, 0, "call", "*voice"),       # fallback subject 1001
    ("9999", "+4915123", 61, 0, "call", "*voice"),   # *any subject
    ("9999", "+49301234", 0, 0, "call", "*voice"),
    ("9999", "+49301234", 45, 15, "call", "*voice"),
    ("9999", "555", 10, 0, "call", "*voice"),        # no rate: an error, never kept
    ("1001", "10029", 95, 0, "call", "*voice"),     # other numbers matched by prefix 1002
    ("1001", "1002555", 30, 60, "call", "*voice"),
    ("1003", "556", 125, 0, "call", "*voice"),
    ("9999", "+4915999", 61, 0, "call", "*voice"),
    ("9999", "+4930555", 45, 15, "call", "*voice"),
    ("1004", "10011", 90, 0, "call", "*voice"),
    ("1001", "1", 3, 0, "sms", "*sms"),
    ("1001", "any", 3 * 1048576, 0, "data", "*data"),
    ("1001", "other", 3 * 1048576, 0, "data", "*data"),
]


@pytest.fixture(scope="module")
def plan() -> TariffPlan:
    return load_tariffplan(SAMPLE)


def requests(seed: int) -> list[RatingRequest]:
    rng = random.Random(seed)
    out = []
    for edge in EDGES:
        for delta in (-120, -61, -1, 0, 1, 29, 90):
            for subject, destination, usage, offset, category, tor in SHAPES:
                start = edge + timedelta(seconds=delta, microseconds=rng.choice((0, 0, 250_000)))
                out.append(RatingRequest("cgrates.org", category, subject, destination, start,
                                         usage * S, tor, offset * S, Decimal(rng.randrange(3))))
    rng.shuffle(out)
    return out


def outcome(rater: Rater, req: RatingRequest, fresh: bool) -> object:
    try:
        result = rater._compute(req) if fresh else rater.rate(req)
    except ChargingError as err:
        return err.code
    assert result.request is req
    # json.dumps tells 1 from 1.0: the document must match byte for byte, not only by value
    return (result, json.dumps(result.to_event_cost("cgrid", "*default")))


@pytest.mark.parametrize("tz", [UTC, ZoneInfo("Europe/Berlin")], ids=["utc", "berlin"])
@pytest.mark.parametrize("compat", [False, True], ids=["exact", "compat"])
def test_remembered_answers_equal_computed_ones(plan: TariffPlan, tz: object, compat: bool) -> None:
    rater = Rater(plan, cgrates_compat=compat, tz=tz)  # type: ignore[arg-type]
    oracle = Rater(plan, cgrates_compat=compat, tz=tz)  # type: ignore[arg-type]
    reqs = requests(7)
    for req in reqs + reqs[::3]:
        assert outcome(rater, req, fresh=False) == outcome(oracle, req, fresh=True), req


def test_remembered_answers_buy_what_computed_ones_buy(plan: TariffPlan) -> None:
    rater = Rater(plan)
    for req in requests(11)[::4]:
        for credit in (None, Decimal(0), Decimal("0.05"), Decimal("0.61"), Decimal("1.3")):
            try:
                remembered = rater.max_affordable(req, credit)
            except ChargingError as err:
                remembered = err.code
            try:
                computed = Rater(plan).max_affordable(req, credit)
            except ChargingError as err:
                computed = err.code
            assert remembered == computed, (req, credit)


def test_a_call_shape_priced_at_a_new_start_moves_its_charges(plan: TariffPlan) -> None:
    """The 1001 -> 1002 rate holds all day: a second call of the same length an hour later
    is answered from the first one's, with its own start on every charge."""
    rater = Rater(plan)
    first = RatingRequest("cgrates.org", "call", "1001", "1002", EDGES[-1], 95 * S)
    later = RatingRequest("cgrates.org", "call", "1001", "1002", EDGES[-1] + timedelta(hours=1), 95 * S)
    a, b = rater.rate(first), rater.rate(later)
    assert (a.cost, b.cost) == (Decimal("0.6584"), Decimal("0.6584"))
    assert [c.start for c in b.charges] == [EDGES[-1] + timedelta(hours=1), EDGES[-1] + timedelta(hours=1, minutes=1)]
    assert b.to_event_cost("x")["StartTime"] == "2026-03-02T11:00:00Z"
    assert b.to_event_cost("x")["Charges"] == a.to_event_cost("x")["Charges"]


def test_numbers_matched_by_one_prefix_share_a_price_with_their_own_request(plan: TariffPlan) -> None:
    """+4915123 and +4916777 both rate as DST_DE_MOBILE (prefixes +4915, +4916 are one
    destination but two prefixes), +4915999 by the same prefix as +4915123: each answer names
    its own request, start and prefix, at the same price."""
    rater = Rater(plan)
    a = RatingRequest("cgrates.org", "call", "9999", "+4915123", EDGES[-1], 61 * S)
    b = RatingRequest("cgrates.org", "call", "9999", "+4915999", EDGES[-1] + timedelta(minutes=7), 61 * S)
    c = RatingRequest("cgrates.org", "call", "9999", "+4916777", EDGES[-1], 61 * S)
    ra, rb, rc = rater.rate(a), rater.rate(b), rater.rate(c)
    assert (ra.request, rb.request, rc.request) == (a, b, c)
    assert ra.cost == rb.cost == rc.cost == Decimal("0.25")   # 0.10 connect + 61 s at 0.15/min, *down 2
    assert [ch.start for ch in rb.charges] == [EDGES[-1] + timedelta(minutes=7)]
    assert (ra.prefix, rb.prefix, rc.prefix) == ("+4915", "+4915", "+4916")
    assert json.dumps(rb.to_event_cost("x")) == json.dumps(ra.to_event_cost("x")).replace(
        "2026-03-02T10:00:00Z", "2026-03-02T10:07:00Z")


def test_an_answer_is_an_immutable_value(plan: TariffPlan) -> None:
    """Answers from a kept price compare, hash and pickle like the computed answer, and
    cannot be changed."""
    rater = Rater(plan)
    req = RatingRequest("cgrates.org", "call", "1001", "1002", EDGES[-1] + timedelta(hours=2), 95 * S)
    rater.rate(RatingRequest("cgrates.org", "call", "1001", "1002", EDGES[-1], 95 * S))
    kept, computed = rater.rate(req), Rater(plan)._compute(req)
    assert kept == computed and hash(kept) == hash(computed) and repr(kept) == repr(computed)
    copy = pickle.loads(pickle.dumps(kept))
    assert copy == kept and copy.charges == computed.charges and copy.request == req
    with pytest.raises(AttributeError):
        kept.cost = Decimal(0)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        kept.request = req  # type: ignore[misc]
    assert kept != rater.rate(RatingRequest("cgrates.org", "call", "1001", "1002", EDGES[-1], 96 * S))


def test_each_event_cost_is_a_fresh_document(plan: TariffPlan) -> None:
    """EventCosts of one answer (rendered, then re-read from its rendering) are equal byte for
    byte, and a caller changing its copy changes no other."""
    rater = Rater(plan)
    req = RatingRequest("cgrates.org", "call", "1002", "1003", EDGES[-1], 200 * S)
    first = rater.rate(req).to_event_cost("a", "*default")
    text = json.dumps(first)
    first["Charges"][0]["Increments"][0]["Cost"] = 99
    first["Rating"]["r1"]["MaxCost"] = 99
    first["Timings"]["t1"]["Years"].append(2030)
    moved = RatingRequest("cgrates.org", "call", "1002", "1003", EDGES[-1] + timedelta(days=1), 200 * S)
    second = rater.rate(req).to_event_cost("a", "*default")
    third = rater.rate(moved).to_event_cost("a", "*default")
    assert json.dumps(second) == text
    assert json.dumps(third) == text.replace("2026-03-02T10:00:00Z", "2026-03-03T10:00:00Z")
    assert third["Cost"] == 0.12 and third["Rating"]["r1"]["MaxCostStrategy"] == "*free"


def test_a_call_crossing_an_activation_time_is_not_answered_from_an_earlier_one(plan: TariffPlan) -> None:
    """1001 pays RP_1001_OLD (RT_10CNT) before 2014-01-14 and RP_1001 (RT_20CNT) from then:
    the same two-minute call costs 0.35 ten minutes before the change, and 0.40 when it starts
    one minute before (its second minute at the new rate, config/tariffplan/README.md)."""
    rater = Rater(plan)
    early = RatingRequest("cgrates.org", "call", "1001", "1002", datetime(2014, 1, 13, 23, 50, tzinfo=UTC), 120 * S)
    crossing = RatingRequest("cgrates.org", "call", "1001", "1002", datetime(2014, 1, 13, 23, 59, tzinfo=UTC),
                             120 * S)
    assert rater.rate(early).cost == Decimal("0.35")
    assert rater.rate(crossing).cost == Decimal("0.4")
    assert [c.rates_id for c in rater.rate(crossing).charges] == ["RT_10CNT", "RT_20CNT"]
