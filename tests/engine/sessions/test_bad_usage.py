"""A negative or non-numeric usage is refused with INVALID_ARGUMENT and changes nothing.

Before, a terminate with ``Usage: -30s`` closed a live call free of charge (the whole
reservation refunded), ``LastUsed: -60s`` on an update granted the same 60 s again unpaid,
and a NaN/infinite float escaped as ValueError/OverflowError instead of a charging error."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.errors import ChargingError

MANUAL = {"*sessionsDebitInterval": 0}


def call(origin="c1", **extra):
    return {"OriginID": origin, "OriginHost": "h1", "Account": "1001", "Destination": "1002",
            "AnswerTime": "2026-03-02T10:00:00Z", **extra}


async def refused(action, field: str) -> ChargingError:
    with pytest.raises(ChargingError) as err:
        await action
    assert err.value.code == "INVALID_ARGUMENT" and field in str(err.value)
    return err.value


async def open_manual_call(engine) -> None:
    await engine.topup("1.00")
    await engine.sessions.initiate(call(Usage="60s"), MANUAL)
    assert engine.balance() == Decimal("0.40")


async def test_terminate_with_negative_usage_leaves_the_call_open_and_paid(engine):
    await open_manual_call(engine)
    s = engine.sessions
    err = await refused(s.terminate(call(Usage="-30s"), MANUAL), "Usage")
    assert str(err) == "INVALID_ARGUMENT: negative Usage -30s"
    await refused(s.terminate(call(TotalUsage="-1s"), MANUAL), "TotalUsage")
    await refused(s.terminate(call(LastUsed=-5), MANUAL), "LastUsed")
    assert engine.balance() == Decimal("0.40") and len(s.active_sessions()) == 1
    assert await engine.cdrs() == []
    await s.terminate(call(Usage="45s"), MANUAL)          # the honest terminate still bills it
    assert engine.balance() == Decimal("0.55")


async def test_update_with_negative_last_used_grants_nothing_more(engine):
    await open_manual_call(engine)
    s = engine.sessions
    await refused(s.update(call(LastUsed="-60s", Usage="60s"), MANUAL), "LastUsed")
    await refused(s.update(call(TotalUsage="-60s", Usage="60s"), MANUAL), "TotalUsage")
    await refused(s.update(call(Usage="-60s"), MANUAL), "Usage")
    assert engine.balance() == Decimal("0.40")
    # The honest update: 60 s used, 60 s more asked; the 0.40 left pays 40 s of them.
    reply = await s.update(call(LastUsed="60s", Usage="60s"), MANUAL)
    assert reply.max_usage == 40 * 10**9 and engine.balance() == 0
    await s.terminate(call(Usage="100s"), MANUAL)
    assert engine.balance() == Decimal("0.00")
    [cdr] = await engine.cdrs()
    assert cdr["Usage"] == 100 * 10**9 and cdr["Cost"] == 1


async def test_one_shot_charges_with_negative_usage_are_refused(engine):
    await engine.topup("1.00")
    s = engine.sessions
    await refused(s.process_cdr(call("cdr1", RequestType="*postpaid", Usage="-60s")), "Usage")
    await refused(s.terminate(call("lost", Usage="-9s")), "Usage")
    await refused(s.authorize(call(Usage="-1m")), "Usage")
    assert engine.balance() == Decimal("1.00") and await engine.cdrs() == []


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), Decimal("NaN"), Decimal("Infinity")])
async def test_non_finite_usage_is_invalid_argument(engine, bad):
    await engine.topup("1.00")
    s = engine.sessions
    await refused(s.initiate(call(Usage=bad), link=engine.link), "Usage")
    await refused(s.process_cdr(call("cdr1", RequestType="*postpaid", Usage=bad)), "Usage")
    await refused(s.update(call(LastUsed=bad)), "LastUsed")
    await refused(s.terminate(call(TotalUsage=bad)), "TotalUsage")
    assert engine.balance() == Decimal("1.00") and s.active_sessions() == [] and await engine.cdrs() == []


async def test_non_finite_cost_and_interval_are_invalid_argument(engine):
    await engine.topup("1.00")
    s = engine.sessions
    await refused(s.process_cdr(call("r1", RequestType="*rated", Usage="60s", Cost="NaN")), "Cost")
    await refused(s.initiate(call(), {"*sessionsDebitInterval": float("nan")}), "*sessionsDebitInterval")
    await refused(s.initiate(call(), {"*sessionsTTL": float("inf")}), "*sessionsTTL")
    assert engine.balance() == Decimal("1.00") and s.active_sessions() == [] and await engine.cdrs() == []
