"""Gate: what a session's operations rely on (one at a time, in arrival order, and a
cancelled waiter never blocks or skips the others)."""

from __future__ import annotations

import asyncio

import pytest

from engine.sessions.gate import Gate


async def _hold(gate: Gate, name: str, log: list[str], release: asyncio.Event | None = None) -> None:
    async with gate:
        log.append(f"{name} in")
        if release is not None:
            await release.wait()
        else:
            await asyncio.sleep(0)
        log.append(f"{name} out")


async def test_operations_run_one_at_a_time_in_arrival_order() -> None:
    gate, log, release = Gate(), [], asyncio.Event()
    first = asyncio.create_task(_hold(gate, "a", log, release))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(_hold(gate, n, log)) for n in "bcd"]
    await asyncio.sleep(0)
    assert gate.locked() and log == ["a in"]
    release.set()
    await asyncio.gather(first, *rest)
    assert log == ["a in", "a out", "b in", "b out", "c in", "c out", "d in", "d out"]
    assert not gate.locked()


async def test_a_newcomer_does_not_overtake_a_waiter_handed_the_gate() -> None:
    gate, log, release = Gate(), [], asyncio.Event()
    first = asyncio.create_task(_hold(gate, "a", log, release))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(_hold(gate, "b", log))
    await asyncio.sleep(0)
    release.set()
    await asyncio.sleep(0)          # a leaves and hands the gate to b, which has not run yet
    late = asyncio.create_task(_hold(gate, "c", log))
    await asyncio.gather(first, waiter, late)
    assert log == ["a in", "a out", "b in", "b out", "c in", "c out"]


async def test_a_waiter_cancelled_in_the_queue_is_skipped() -> None:
    gate, log, release = Gate(), [], asyncio.Event()
    first = asyncio.create_task(_hold(gate, "a", log, release))
    await asyncio.sleep(0)
    gone = asyncio.create_task(_hold(gate, "b", log))
    after = asyncio.create_task(_hold(gate, "c", log))
    await asyncio.sleep(0)
    gone.cancel()
    release.set()
    await asyncio.gather(first, after)
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert log == ["a in", "a out", "c in", "c out"] and not gate.locked()


async def test_a_waiter_cancelled_as_it_is_handed_the_gate_passes_it_on() -> None:
    gate, log, release = Gate(), [], asyncio.Event()
    first = asyncio.create_task(_hold(gate, "a", log, release))
    await asyncio.sleep(0)
    handed = asyncio.create_task(_hold(gate, "b", log))
    after = asyncio.create_task(_hold(gate, "c", log))
    await asyncio.sleep(0)
    release.set()
    while "a out" not in log:       # a hands the gate to b; b has not resumed yet
        await asyncio.sleep(0)
    handed.cancel()
    await asyncio.gather(first, after)
    with pytest.raises(asyncio.CancelledError):
        await handed
    assert log == ["a in", "a out", "c in", "c out"] and not gate.locked()


async def test_an_error_inside_releases_the_gate() -> None:
    gate = Gate()
    with pytest.raises(RuntimeError):
        async with gate:
            raise RuntimeError("boom")
    assert not gate.locked()
    async with gate:
        assert gate.locked()
