"""CDR store and query: CGRateS JSON shape, filters, idempotency, NOT_FOUND."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from engine.cdrs import CdrService, cdr_from_event, cdr_to_cgrates
from engine.errors import ChargingError
from engine.event import ChargingEvent
from engine.storage import open_storage

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
async def storage(tmp_path):
    store = open_storage(tmp_path)
    await store.open()
    yield store
    await store.close()


def make_cdr(origin_id: str, account: str, usage_s: int, cost: str, *, minute: int = 0, run: str = "*default"):
    event = ChargingEvent.from_fields({
        "OriginID": origin_id, "OriginHost": "10.0.0.1", "Account": account, "Destination": "1002",
        "RequestType": "*postpaid", "SetupTime": T0 + timedelta(minutes=minute),
        "AnswerTime": T0 + timedelta(minutes=minute, seconds=2), "Usage": usage_s * 10**9, "sip_from": "a@b",
    })
    return cdr_from_event(event, run, usage=usage_s * 10**9, cost=Decimal(cost), cost_source="*sessions")


async def test_stored_cdr_reads_back_in_cgrates_shape(storage):
    service = CdrService(storage)
    assert await service.store([make_cdr("o1", "1001", 60, "0.6")]) == [True]
    [cdr] = await service.get_cdrs({"Accounts": ["1001"]})
    assert cdr["CGRID"] == ChargingEvent.from_fields({"OriginID": "o1", "OriginHost": "10.0.0.1"}).cgrid
    assert cdr["RunID"] == "*default"
    assert cdr["Usage"] == 60_000_000_000
    assert cdr["Cost"] == 0.6
    assert cdr["AnswerTime"] == "2026-01-05T10:00:02Z"
    assert cdr["ExtraFields"] == {"sip_from": "a@b"}
    assert cdr["CostSource"] == "*sessions"
    assert cdr["OrderID"] > 0
    assert set(cdr) >= {"CGRID", "RunID", "OrderID", "OriginHost", "Source", "OriginID", "ToR", "RequestType",
                        "Tenant", "Category", "Account", "Subject", "Destination", "SetupTime", "AnswerTime",
                        "Usage", "ExtraFields", "ExtraInfo", "Partial", "PreRated", "CostSource", "Cost",
                        "CostDetails"}


async def test_same_cgrid_and_run_is_stored_once(storage):
    service = CdrService(storage)
    assert await service.store([make_cdr("o1", "1001", 60, "0.6")]) == [True]
    assert await service.store([make_cdr("o1", "1001", 60, "0.6"), make_cdr("o1", "1001", 60, "0.3", run="supplier")]) \
        == [False, True]
    cdrs = await service.get_cdrs({"OriginIDs": ["o1"], "OrderBy": "OrderID"})
    assert [(c["RunID"], c["Cost"]) for c in cdrs] == [("*default", 0.6), ("supplier", 0.3)]


async def test_filters_order_and_paging(storage):
    service = CdrService(storage)
    await service.store([make_cdr(f"o{i}", "1001" if i % 2 else "1002", 10 * i, f"0.{i}", minute=i) for i in range(1, 7)])
    got = await service.get_cdrs({"Accounts": ["1001"], "OrderBy": "Usage;desc"})
    assert [c["OriginID"] for c in got] == ["o5", "o3", "o1"]
    got = await service.get_cdrs({"OrderBy": "AnswerTime", "Limit": 2, "Offset": 1})
    assert [c["OriginID"] for c in got] == ["o2", "o3"]
    got = await service.get_cdrs({"AnswerTimeStart": "2026-01-05T10:03:00Z", "AnswerTimeEnd": "2026-01-05T10:05:00Z",
                                  "OrderBy": "OrderID"})
    assert [c["OriginID"] for c in got] == ["o3", "o4"]
    assert await service.count({"Accounts": ["1002"]}) == 3
    with pytest.raises(ChargingError) as err:
        await service.get_cdrs({"Accounts": ["9999"]})
    assert str(err.value) == "NOT_FOUND"


async def test_bad_filter_is_a_clear_error(storage):
    service = CdrService(storage)
    with pytest.raises(ChargingError) as err:
        await service.get_cdrs({"OrderBy": "Bogus"})
    assert "OrderBy" in str(err.value)
    with pytest.raises(ChargingError):
        await service.get_cdrs({"Limit": "many"})


def test_unrated_cdr_has_cost_minus_one():
    event = ChargingEvent.from_fields({"OriginID": "x", "Account": "1001"})
    row = cdr_from_event(event, "*default", usage=0, cost=None, cost_source="*cdrs", extra_info="RATING_PLAN_NOT_FOUND")
    assert cdr_to_cgrates(row)["Cost"] == -1
    assert cdr_to_cgrates(row)["SetupTime"] == "0001-01-01T00:00:00Z"
