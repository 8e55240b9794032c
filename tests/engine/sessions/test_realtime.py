"""Real clock: a prepaid call is cut when its credit ends, to within 100 ms."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from conftest import build_engine

from engine.sessions.clock import LoopClock
from engine.units import MILLISECOND, SECOND


def call(origin="rt1", **extra):
    # 1500 costs 1.00 per second in 100 ms increments
    return {"OriginID": origin, "OriginHost": "h1", "Account": "1001", "Destination": "1500", **extra}


async def test_prepaid_call_is_cut_at_the_right_moment(tmp_path):
    eng = await build_engine(tmp_path, clock=LoopClock(), debit_interval="200ms", min_dur_low_balance="300ms")
    try:
        await eng.topup("0.70")                          # 700 ms of talk
        hung_up = asyncio.get_running_loop().create_future()

        async def hang_up(event, reason):
            hung_up.set_result((time.monotonic(), reason))
            await eng.sessions.terminate({**call(), "Usage": event["Usage"]})

        eng.link.on_disconnect = hang_up
        started = time.monotonic()
        reply = await eng.sessions.initiate(call(), link=eng.link)
        assert reply.max_usage == 700 * MILLISECOND
        when, reason = await asyncio.wait_for(hung_up, 5)
        assert reason == "INSUFFICIENT_CREDIT"
        assert abs((when - started) - 0.70) < 0.1
        [(_, remaining)] = eng.link.warnings
        assert 250 * MILLISECOND <= remaining <= 300 * MILLISECOND
        await eng.sessions.idle()
        [cdr] = await eng.cdrs()
        assert cdr["Usage"] == 700 * MILLISECOND and cdr["Cost"] == 0.7
        assert eng.balance() == 0
    finally:
        await eng.sessions.stop()
        await eng.storage.close()


async def test_two_calls_on_one_pool_are_cut_at_their_own_moment(tmp_path):
    eng = await build_engine(tmp_path, clock=LoopClock(), debit_interval="200ms")
    try:
        await eng.topup("1.00")                          # 1 s of talk shared by two calls
        cuts: dict[str, float] = {}

        async def hang_up(event, reason):
            cuts[event["OriginID"]] = time.monotonic()
            await eng.sessions.terminate({**call(event["OriginID"]), "Usage": event["Usage"]})

        eng.link.on_disconnect = hang_up
        started = time.monotonic()
        await eng.sessions.initiate(call("A"), link=eng.link)
        await asyncio.sleep(0.1)
        await eng.sessions.initiate(call("B"), link=eng.link)
        for _ in range(100):
            if len(cuts) == 2:
                break
            await asyncio.sleep(0.05)
        await eng.sessions.idle()
        cdrs = {c["OriginID"]: c for c in await eng.cdrs()}
        total = sum(Decimal(str(c["Cost"])) for c in cdrs.values())
        assert total == Decimal("1.00") and eng.balance() == 0
        for origin, offset in (("A", 0.0), ("B", 0.1)):
            talked = cdrs[origin]["Usage"] / SECOND
            assert abs((cuts[origin] - started) - (offset + talked)) < 0.1, (origin, talked)
    finally:
        await eng.sessions.stop()
        await eng.storage.close()


async def test_early_hang_up_refunds_exactly(tmp_path):
    eng = await build_engine(tmp_path, clock=LoopClock(), debit_interval="500ms")
    try:
        await eng.topup("5.00")
        await eng.sessions.initiate(call(), link=eng.link)
        await asyncio.sleep(0.3)
        assert eng.balance() == Decimal("4.50")          # one 500 ms slice reserved
        await eng.sessions.terminate({**call(), "Usage": "300ms"})
        assert eng.balance() == Decimal("4.70")
        [cdr] = await eng.cdrs()
        assert cdr["Cost"] == 0.3
    finally:
        await eng.sessions.stop()
        await eng.storage.close()
