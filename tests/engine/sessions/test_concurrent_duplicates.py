"""A message delivered twice at the same time (an agent retransmitting while the first copy is
still committing) is charged once: the duplicate waits for the first, then answers what a later
duplicate would ("OK"; an SMS's grant), whatever the timing."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from engine.errors import ChargingError
from engine.storage.base import MarkProcessed

MANUAL = {"*sessionsDebitInterval": 0}


def call(origin="c1", **extra):
    return {"OriginID": origin, "OriginHost": "h1", "Account": "1001", "Destination": "1002",
            "AnswerTime": "2026-03-02T10:00:00Z", **extra}


SMS = {"OriginID": "sms1", "OriginHost": "h1", "Account": "1001", "Destination": "1002",
       "ToR": "*sms", "Category": "sms", "Usage": 2}


async def test_concurrent_duplicate_cdrs_charge_once(engine):
    await engine.topup("1.00")
    fields = call("cdr1", RequestType="*postpaid", Usage="60s")
    first, second = await asyncio.gather(engine.sessions.process_cdr(fields),
                                         engine.sessions.process_cdr(fields))
    assert first.cost == Decimal("0.60") and second.ok and second.cost is None
    assert engine.balance() == Decimal("0.40")
    [cdr] = await engine.cdrs()
    assert cdr["Cost"] == 0.6
    assert len(engine.sessions.flights) == 0            # nothing left registered


async def test_concurrent_duplicate_terminates_of_an_unknown_session_charge_once(engine):
    await engine.topup("1.00")
    replies = await asyncio.gather(*(engine.sessions.terminate(call("lost", Usage="9s")) for _ in range(3)))
    assert [r.cost for r in replies] == [Decimal("0.09"), None, None] and all(r.ok for r in replies)
    assert engine.balance() == Decimal("0.91")
    [cdr] = await engine.cdrs()
    assert cdr["OriginID"] == "lost" and cdr["Cost"] == 0.09


async def test_unknown_terminate_and_its_cdr_at_the_same_time_charge_once(engine):
    await engine.topup("1.00")
    await asyncio.gather(engine.sessions.terminate(call("lost", Usage="9s")),
                         engine.sessions.process_cdr(call("lost", Usage="9s")))
    assert engine.balance() == Decimal("0.91")
    assert len(await engine.cdrs()) == 1


async def test_concurrent_terminates_of_a_live_call_settle_once(engine):
    await engine.topup("1.00")
    await engine.sessions.initiate(call(Usage="30s"), MANUAL)
    replies = await asyncio.gather(*(engine.sessions.terminate(call(Usage="7s"), MANUAL) for _ in range(3)))
    assert [r.cost for r in replies] == [Decimal("0.07"), None, None] and all(r.ok for r in replies)
    assert engine.balance() == Decimal("0.93") and len(await engine.cdrs()) == 1


async def test_concurrently_retransmitted_sms_charges_once(engine):
    await engine.topup("0.12")
    first, second = await asyncio.gather(engine.sessions.process_message(SMS),
                                         engine.sessions.process_message(SMS))
    assert first.max_usage == second.max_usage == 2        # the retransmission is granted too
    assert first.cost == Decimal("0.10") and engine.balance() == Decimal("0.02")
    assert len(engine.sessions.flights) == 0


async def test_sms_and_its_cdr_at_the_same_time_charge_once(engine):
    await engine.topup("0.12")
    reply, _ = await asyncio.gather(engine.sessions.process_message(SMS), engine.sessions.process_cdr(SMS))
    assert reply.max_usage == 2 and engine.balance() == Decimal("0.02")
    [cdr] = await engine.cdrs()
    assert cdr["Cost"] == 0.1


async def test_concurrent_duplicate_refunds_give_back_once(engine):
    await engine.topup("0.12")
    await engine.sessions.process_message(SMS)
    first, second = await asyncio.gather(engine.sessions.refund({**SMS, "Usage": 1}),
                                         engine.sessions.refund({**SMS, "Usage": 1}))
    assert first.cost == Decimal("0.05") and second.cost == 0
    assert engine.balance() == Decimal("0.07")


async def test_duplicate_of_a_failed_first_copy_charges_it_once(engine, monkeypatch):
    """The first copy's commit fails (nothing of it is durable): the waiting duplicate must
    charge the call itself, exactly once, not answer a success that never happened."""
    await engine.topup("1.00")
    real_write = engine.storage.write
    failed = []

    async def flaky_write(ops, *args, **kwargs):
        if not failed and any(isinstance(op, MarkProcessed) for op in ops):
            failed.append(ops)
            raise OSError("disk full")
        return await real_write(ops, *args, **kwargs)

    monkeypatch.setattr(engine.storage, "write", flaky_write)
    fields = call("cdr1", RequestType="*postpaid", Usage="60s")
    results = await asyncio.gather(engine.sessions.process_cdr(fields), engine.sessions.process_cdr(fields),
                                   return_exceptions=True)
    assert failed
    assert isinstance(results[0], ChargingError | OSError)
    assert results[1].cost == Decimal("0.60")
    assert engine.balance() == Decimal("0.40")
    [cdr] = await engine.cdrs()
    assert cdr["Cost"] == 0.6
    assert await engine.accounts.audit("cgrates.org", "1001") == []


async def test_a_cancelled_first_copy_lets_the_duplicate_charge(engine):
    await engine.topup("1.00")
    fields = call("cdr1", RequestType="*postpaid", Usage="60s")
    first = asyncio.ensure_future(engine.sessions.process_cdr(fields))
    second = asyncio.ensure_future(engine.sessions.process_cdr(fields))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert (await second).ok
    assert engine.balance() == Decimal("0.40")
    assert len(await engine.cdrs()) == 1
