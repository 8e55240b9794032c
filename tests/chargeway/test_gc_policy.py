"""The collector runs on the event loop's schedule: off between passes, cyclic garbage still
freed on the timer, at once past the young limit, and switched back on when stopped."""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path

import pytest
from click.testing import CliRunner

from chargeway.cli import main
from chargeway.gc_policy import AUTO_THRESHOLDS, TimedCollection, apply_gc_policy


class Node:
    """A reference cycle: only the cycle collector can free it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def restore_gc():
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()
    (gc.enable if enabled else gc.disable)()


async def test_cycles_wait_for_the_timer_then_are_freed():
    timed = TimedCollection(young_every=0.2, full_every=60, check_every=0.05)
    timed.start()
    try:
        assert not gc.isenabled()
        ref = weakref.ref(Node())
        kept = [[] for _ in range(20_000)]  # far past CPython's own young threshold
        assert ref() is not None            # no automatic pass ran
        del kept
        await asyncio.sleep(0.4)
        assert ref() is None and timed.passes >= 1
    finally:
        timed.stop()
    assert gc.isenabled()


async def test_a_pile_of_young_objects_is_collected_before_the_timer():
    timed = TimedCollection(young_every=60, full_every=600, young_limit=1_000, check_every=0.05)
    timed.start()
    try:
        ref = weakref.ref(Node())
        kept = [[] for _ in range(5_000)]  # tracked objects alive since the last pass
        await asyncio.sleep(0.2)
        assert ref() is None and timed.passes >= 1
        del kept
    finally:
        timed.stop()


async def test_policies_and_their_validation():
    assert isinstance(apply_gc_policy("timed"), TimedCollection) and not gc.isenabled()
    assert apply_gc_policy("auto") is None                 # replaces the running schedule
    assert gc.isenabled() and gc.get_threshold() == AUTO_THRESHOLDS
    with pytest.raises(ValueError, match="timed, auto"):
        apply_gc_policy("sometimes")


def test_serve_refuses_an_unknown_policy(tmp_path: Path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("general: {gc: sometimes}\n")
    result = CliRunner().invoke(main, ["serve", "--config", str(cfg), "--data-dir", str(tmp_path / "d")])
    assert result.exit_code != 0 and "general.gc must be one of timed, auto" in result.output
