"""The loop-wait monitor sees a callback that hogs the loop, and next to nothing when idle."""

from __future__ import annotations

import asyncio
import time

from engine.looplag import LoopWaitMonitor


def hog(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def test_a_hogging_callback_shows_as_the_wait_of_the_next_sample():
    monitor = LoopWaitMonitor(interval=0.005)
    monitor.start()
    try:
        await asyncio.sleep(0.1)
        idle = monitor.summary()
        loop = asyncio.get_running_loop()
        until = time.perf_counter() + 0.2

        def hog_chain() -> None:   # 20 ms hogs back to back: a probe always queues behind one
            hog(0.02)
            if time.perf_counter() < until:
                loop.call_soon(hog_chain)

        loop.call_soon(hog_chain)
        await asyncio.sleep(0.25)
        busy = monitor.summary()
    finally:
        monitor.stop()
    assert idle["samples"] >= 5 and idle["p50"] < 5
    assert busy["max"] >= 15 and busy["samples"] > idle["samples"]


def test_no_samples_no_figures():
    assert LoopWaitMonitor().summary() == {"samples": 0}
