"""CostDetails passed to the CDR writer as raw JSON: the same text and the same CGRateS CDR."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import msgspec
import orjson
import pytest

from engine.cdrs import CdrService, cdr_from_event, cdr_to_cgrates
from engine.cdrs.details import cost_details, details_value
from engine.event import ChargingEvent
from engine.rating.rater import Rater, RatingRequest
from engine.storage import open_storage
from engine.storage.base import CdrFilter
from engine.tariffplan.loader import load_tariffplan

PLAN = Path(__file__).resolve().parents[3] / "config" / "tariffplan"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
WRITER = msgspec.json.Encoder(decimal_format="number")  # engine.storage.sqlite's CDR JSON encoder


@pytest.fixture(scope="module")
def rater():
    return Rater(load_tariffplan(str(PLAN)))


def rate(rater, seconds: int):
    return rater.rate(RatingRequest("cgrates.org", "call", "1001", "1002", T0, seconds * 10**9))


def test_first_rendering_is_the_dict_then_raw_json_equal_to_the_writers_encoding(rater):
    first = cost_details(rate(rater, 95), "cg1", "*default")
    assert isinstance(first, dict) and first["Usage"] == 95 * 10**9
    again = rate(rater, 95)
    raw = cost_details(again, "cg2", "*default")
    assert isinstance(raw, msgspec.Raw)
    assert bytes(raw) == WRITER.encode(again.to_event_cost(cgrid="cg2", run_id="*default"))
    # the remembered fixed part serves another call of the same price
    other = cost_details(rate(rater, 95), "cg3", "run2")
    assert orjson.loads(bytes(other)) == {**orjson.loads(bytes(raw)), "CGRID": "cg3", "RunID": "run2"}
    assert details_value(raw) == again.to_event_cost(cgrid="cg2", run_id="*default")
    assert details_value(first) is first


async def test_raw_cost_details_store_and_export_as_the_dict_did(rater, tmp_path):
    rate(rater, 61)   # renders the price once
    result = rate(rater, 61)
    as_dict = result.to_event_cost(cgrid="x", run_id="*default")
    event = ChargingEvent.from_fields({"OriginID": "o1", "OriginHost": "h", "Account": "1001",
                                       "Destination": "1002", "AnswerTime": T0, "Usage": 61 * 10**9})
    rows = [cdr_from_event(event, "*default", usage=61 * 10**9, cost=Decimal(result.cost), cost_source="*sessions",
                           cost_details=details) for details in (as_dict, cost_details(result, "x", "*default"))]
    assert cdr_to_cgrates(rows[0]) == cdr_to_cgrates(rows[1])
    store = open_storage(tmp_path)
    await store.open()
    try:
        await CdrService(store).store(rows[1:])
        [stored] = await store.query_cdrs(CdrFilter(cgrids=(event.cgrid,)))
    finally:
        await store.close()
    assert stored.cost_details["Cost"] == Decimal(str(as_dict["Cost"]))
    with sqlite3.connect(store.path) as conn:
        [(text,)] = conn.execute("SELECT cost_details FROM cdrs").fetchall()
    assert text == WRITER.encode(as_dict).decode()   # the very text the dict was stored as
