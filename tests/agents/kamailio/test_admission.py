"""Admission: background calls start in arrival order, a few per loop pass, within the bound."""

from __future__ import annotations

import asyncio

import pytest

from agents.kamailio.admission import Admission


async def test_at_most_per_pass_start_in_one_loop_pass_and_order_is_kept():
    gate = Admission(100, per_pass=2)
    started: list[tuple[int, int]] = []   # (call, loop pass it started in)
    passes = 0

    async def count_passes() -> None:
        nonlocal passes
        while True:
            passes += 1
            await asyncio.sleep(0)

    async def call(i: int) -> None:
        await gate.enter()
        started.append((i, passes))
        gate.leave()

    counter = asyncio.ensure_future(count_passes())
    await asyncio.gather(*(call(i) for i in range(10)))
    counter.cancel()
    assert [i for i, _ in started] == list(range(10))
    per_pass: dict[int, int] = {}
    for _, p in started:
        per_pass[p] = per_pass.get(p, 0) + 1
    assert max(per_pass.values()) <= 2
    assert len(per_pass) >= 5


async def test_in_flight_never_exceeds_the_bound():
    gate = Admission(3, per_pass=10)
    running = peak = 0

    async def call() -> None:
        nonlocal running, peak
        await gate.enter()
        try:
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)   # e.g. waiting for its commit
            running -= 1
        finally:
            gate.leave()

    await asyncio.gather(*(call() for _ in range(20)))
    assert peak == 3 and gate.in_flight == 0


async def test_a_caller_cancelled_while_waiting_gives_no_slot_away():
    gate = Admission(1)
    await gate.enter()
    waiter = asyncio.ensure_future(gate.enter())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    gate.leave()
    await asyncio.sleep(0)
    assert gate.in_flight == 0
    await asyncio.wait_for(gate.enter(), 1)   # the slot is free again
    assert gate.in_flight == 1
