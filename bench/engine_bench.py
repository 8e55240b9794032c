"""Engine hot-path benchmark: what one charged session costs in CPU, without any agent.

    python -m bench.engine_bench            # 4000 cycles, 10k calls per hot function
    python -m bench.engine_bench --quick    # 1000 cycles, 2k calls (CI)
    python -m bench.engine_bench --profile  # plus a cProfile of the cycles (top 25 by own time)

Macro: authorize + initiate + terminate cycles through the real ``SessionManager``
(manual mode, as RADIUS and Diameter drive it: initiate debits the requested Usage,
terminate settles the reported one), SQLite in a temporary directory with the
production ``synchronous=FULL``, the sample plan in ``config/tariffplan``. Cycles run
``--concurrency`` at a time so SQLite group commit shares fsyncs as it does under
agent load; the table shows cycles/s (wall) and CPU µs per cycle (process time, split into
the event-loop thread, where the engine's Python runs, and the SQLite writer thread), the
figure that bounds what one core can answer.

Per call: event-loop CPU µs of authorize, initiate and terminate, one session at a time.

Updates: a Diameter Gy data session in manual mode (``*sessionsDebitInterval: 0``) as the
Diameter template hands it to the engine: initiate, ``--updates`` CCR-U's (``Usage`` the next
1 MB, ``LastUsed`` the 1 MB just used: each one settles the report and debits the next slice
through ``_manual_grant``), terminate. Shown as the event-loop CPU µs of one
``SessionManager.update`` (one session at a time) and, for the macro at ``--concurrency``,
the whole cycle's CPU per update (initiate and terminate included, spread over the updates).

Micro: µs per call of the functions the agents' profiles pointed at
(``ChargingEvent.from_fields``, ``parse_time``, ``parse_duration``, ``Rater.rate``,
``AccountService.plan_debit``/``plan_settle``, ``CostResult.to_event_cost``); the rows after
"computed" price a request the Rater has seen, as a session does after its first call. Read the
numbers as ratios on a shared 2-core box; nothing here asserts times.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
PLAN_DIR = REPO / "config" / "tariffplan"
TENANT = "cgrates.org"
ACCOUNT = "1001"             # RP_1001: 1002 costs 0.40 connect + 0.20/min then 0.10/min per second
DESTINATION = "1002"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
MANUAL = {"*sessionsDebitInterval": 0}


def start_fields(i: int) -> dict[str, Any]:
    """What a RADIUS/Diameter template hands the engine for a call start."""
    answer = (T0 + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"Tenant": TENANT, "ToR": "*voice", "RequestType": "*prepaid", "Category": "call",
            "OriginID": f"bench-{i}", "OriginHost": "10.0.0.1", "Account": ACCOUNT,
            "Destination": DESTINATION, "SetupTime": answer, "AnswerTime": answer,
            "Usage": 300_000_000_000, "NAS-Port": str(i % 1000)}


MB = 1_048_576


def data_fields(i: int, *, used: int | None = None) -> dict[str, Any]:
    """A Diameter Gy CCR as templates/diameter.yaml hands it to the engine: ``used`` None is
    the CCR-I (AnswerTime, first slice asked), else a CCR-U/T reporting ``used`` bytes."""
    fields: dict[str, Any] = {
        "OriginID": f"pgw.bench;{i};1_1", "OriginHost": "pgw.bench", "RequestType": "*prepaid",
        "Account": ACCOUNT, "RatingGroup": "1", "ServiceContextId": "32251@3gpp.org",
        "ToR": "*data", "Category": "data", "Destination": "data", "Usage": MB}
    if used is None:
        fields["AnswerTime"] = (T0 + timedelta(seconds=i % 86_400)).strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        fields["LastUsed"] = used
    return fields


def stop_fields(i: int) -> dict[str, Any]:
    """The call end: Usage as the Go duration string a template renders from seconds."""
    fields = start_fields(i)
    fields["Usage"] = f"{60 + i % 120}s"
    return fields


async def open_engine(tmp: Path, plan_dir: Path = PLAN_DIR, *,
                      synchronous: str = "FULL") -> tuple[Any, Any, Any, Any]:
    """The real engine: storage in ``tmp/data``, the plan of ``plan_dir`` (its accounts and
    actions applied), accounts, sessions. Also the Diameter bench's engine."""
    from engine.accounts.service import AccountService
    from engine.event import EventDefaults
    from engine.rating.rater import Rater
    from engine.sessions.config import SessionsConfig
    from engine.sessions.manager import SessionManager
    from engine.storage.base import open_storage
    from engine.tariffplan.loader import load_tariffplan

    storage = open_storage(tmp / "data", synchronous=synchronous)
    await storage.open()
    plan = load_tariffplan(str(plan_dir))
    rater = Rater(plan)
    accounts = AccountService(storage, lambda: rater)
    await accounts.start()
    await accounts.apply_tariffplan(plan)
    manager = SessionManager(accounts, lambda: rater, storage, SessionsConfig.from_mapping({}), EventDefaults())
    await manager.start()
    return storage, rater, accounts, manager


async def cycle(manager: Any, i: int) -> None:
    reply = await manager.authorize(start_fields(i), MANUAL)
    if reply.error or not reply.max_usage:
        raise RuntimeError(f"authorize failed: {reply}")
    reply = await manager.initiate(start_fields(i), MANUAL)
    if reply.error or not reply.max_usage:
        raise RuntimeError(f"initiate failed: {reply}")
    reply = await manager.terminate(stop_fields(i), MANUAL)
    if reply.error:
        raise RuntimeError(f"terminate failed: {reply}")


async def update_cycle(manager: Any, i: int, updates: int) -> None:
    """A manual-mode data session: initiate, ``updates`` CCR-U's, terminate."""
    reply = await manager.initiate(data_fields(i), MANUAL)
    if reply.error or reply.max_usage != MB:
        raise RuntimeError(f"initiate failed: {reply}")
    for _ in range(updates):
        reply = await manager.update(data_fields(i, used=MB), MANUAL)
        if reply.error or reply.max_usage != MB:
            raise RuntimeError(f"update failed: {reply}")
    stop = data_fields(i, used=MB // 2)
    del stop["Usage"]
    reply = await manager.terminate(stop, MANUAL)
    if reply.error:
        raise RuntimeError(f"terminate failed: {reply}")


async def run_cycles(manager: Any, first: int, count: int, concurrency: int,
                     updates: int | None = None) -> tuple[float, float, float]:
    """Run ``count`` cycles ``concurrency`` at a time; returns (wall s, process CPU s, loop-thread CPU s).
    ``updates`` given: manual-mode update cycles (``update_cycle``) instead of the call cycles."""
    queue = iter(range(first, first + count))

    async def worker() -> None:
        for i in queue:
            if updates is None:
                await cycle(manager, i)
            else:
                await update_cycle(manager, i, updates)

    wall, cpu, loop_cpu = time.perf_counter(), time.process_time(), time.thread_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - wall, time.process_time() - cpu, time.thread_time() - loop_cpu


async def phase_costs(manager: Any, first: int, count: int) -> dict[str, float]:
    """Event-loop-thread CPU µs of each call, one session at a time (waits for SQLite cost no CPU)."""
    spent = {"authorize": 0.0, "initiate": 0.0, "terminate": 0.0}
    clock = time.thread_time
    for i in range(first, first + count):
        began = clock()
        await manager.authorize(start_fields(i), MANUAL)
        mid = clock()
        await manager.initiate(start_fields(i), MANUAL)
        late = clock()
        await manager.terminate(stop_fields(i), MANUAL)
        end = clock()
        spent["authorize"] += mid - began
        spent["initiate"] += late - mid
        spent["terminate"] += end - late
    return {name: total / count * 1e6 for name, total in spent.items()}


async def update_costs(manager: Any, first: int, count: int, updates: int) -> float:
    """Event-loop-thread CPU µs of one manual-mode update, one session at a time."""
    spent = 0.0
    clock = time.thread_time
    for i in range(first, first + count):
        await manager.initiate(data_fields(i), MANUAL)
        for _ in range(updates):
            began = clock()
            await manager.update(data_fields(i, used=MB), MANUAL)
            spent += clock() - began
        await manager.terminate(data_fields(i, used=0), MANUAL)
    return spent / (count * updates) * 1e6


def per_call_us(fn: Callable[[], Any], calls: int) -> float:
    """Best of three runs of ``calls`` calls, µs per call."""
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, time.perf_counter() - began)
    return best / calls * 1e6


def micro(rater: Any, accounts: Any, calls: int) -> list[tuple[str, float]]:
    from engine.event import ChargingEvent, EventDefaults
    from engine.rating.rater import RatingRequest
    from engine.units import parse_duration, parse_time

    defaults = EventDefaults()
    fields = start_fields(7)
    stop = stop_fields(7)
    req = RatingRequest(TENANT, "call", ACCOUNT, DESTINATION, T0, 95 * 10**9)

    def fresh() -> Any:
        return RatingRequest(TENANT, "call", ACCOUNT, DESTINATION, T0, 95 * 10**9)

    compute = getattr(rater, "_compute", rater.rate)
    account = accounts.get(TENANT, ACCOUNT)
    result = rater.rate(req)
    return [
        ("parse_time('...Z')", per_call_us(lambda: parse_time("2026-03-02T10:00:07Z"), calls)),
        ("parse_duration(int)", per_call_us(lambda: parse_duration(300_000_000_000), calls)),
        ("parse_duration('95s')", per_call_us(lambda: parse_duration("95s"), calls)),
        ("ChargingEvent.from_fields (start)", per_call_us(lambda: ChargingEvent.from_fields(fields, defaults), calls)),
        ("ChargingEvent.from_fields (stop)", per_call_us(lambda: ChargingEvent.from_fields(stop, defaults), calls)),
        # computed: what a request not seen before costs (the Rater remembers answers when it can)
        ("Rater.rate 95s, computed", per_call_us(lambda: compute(req), calls)),
        ("Rater.rate 95s, equal request again", per_call_us(lambda: rater.rate(fresh()), calls)),
        ("Rater.max_affordable 95s", per_call_us(lambda: rater.max_affordable(req, None), calls)),
        ("AccountService.plan_debit 95s", per_call_us(lambda: accounts.plan_debit(account, req, partial=True), calls)),
        ("AccountService.plan_settle 95s", per_call_us(lambda: accounts.plan_settle(account, req, []), calls)),
        ("CostResult.to_event_cost", per_call_us(lambda: result.to_event_cost("x", "*default"), calls)),
    ]


async def main_async(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="engine-bench-") as folder:
        tmp = Path(folder)
        storage, rater, accounts, manager = await open_engine(tmp)
        # a balance that never runs out
        await accounts.add_balance(TENANT, ACCOUNT, "*monetary", 10**9, {"ID": "bench"})
        try:
            await run_cycles(manager, 10**7, 200, args.concurrency)          # warm-up
            profiler = cProfile.Profile() if args.profile else None
            if profiler:
                profiler.enable()
            # best of ``rounds``: the box is shared, the quietest round is the closest to the cost
            wall = cpu = loop_cpu = float("inf")
            for r in range(args.rounds):
                w, c, lc = await run_cycles(manager, r * args.cycles, args.cycles, args.concurrency)
                wall, cpu, loop_cpu = min(wall, w), min(cpu, c), min(loop_cpu, lc)
            sessions = args.cycles // args.updates
            await run_cycles(manager, 3 * 10**7, 64, args.concurrency, args.updates)      # warm-up
            u_wall = u_cpu = u_loop = float("inf")
            for r in range(args.rounds):
                w, c, lc = await run_cycles(manager, 4 * 10**7 + r * sessions, sessions, args.concurrency,
                                            args.updates)
                u_wall, u_cpu, u_loop = min(u_wall, w), min(u_cpu, c), min(u_loop, lc)
            if profiler:
                profiler.disable()
            phases: dict[str, float] = {}
            for r in range(args.rounds):
                for name, us in (await phase_costs(manager, 2 * 10**7 + r * args.cycles, args.cycles // 4)).items():
                    phases[name] = min(phases.get(name, us), us)
            for r in range(args.rounds):
                us = await update_costs(manager, 5 * 10**7 + r * sessions, sessions // 4, args.updates)
                phases["update (manual)"] = min(phases.get("update (manual)", us), us)
            rows = micro(rater, accounts, args.calls)
        finally:
            await manager.stop()
            await storage.close()
    print(f"engine_bench: {args.cycles} authorize+initiate+terminate cycles, concurrency {args.concurrency},"
          f" best of {args.rounds} rounds,"
          f" SQLite synchronous=FULL, plan {PLAN_DIR.relative_to(REPO)}")
    print(f"{'measure':<44} {'value':>12}")
    print(f"{'cycles/s (wall)':<44} {args.cycles / wall:>12.0f}")
    print(f"{'CPU µs per cycle':<44} {cpu / args.cycles * 1e6:>12.0f}")
    print(f"{'  of which event-loop thread µs':<44} {loop_cpu / args.cycles * 1e6:>12.0f}")
    print(f"{'  of which SQLite writer thread µs':<44} {(cpu - loop_cpu) / args.cycles * 1e6:>12.0f}")
    print(f"{'cycles/s per core (1 / CPU per cycle)':<44} {args.cycles / cpu:>12.0f}")
    updates = sessions * args.updates
    print(f"initiate + {args.updates} updates + terminate (manual), concurrency {args.concurrency}:")
    print(f"{'  updates/s (wall)':<44} {updates / u_wall:>12.0f}")
    print(f"{'  CPU µs per update':<44} {u_cpu / updates * 1e6:>12.0f}")
    print(f"{'  of which event-loop thread µs':<44} {u_loop / updates * 1e6:>12.0f}")
    print(f"{'  of which SQLite writer thread µs':<44} {(u_cpu - u_loop) / updates * 1e6:>12.0f}")
    for name, us in phases.items():
        print(f"{'SessionManager.' + name + ' loop CPU µs':<44} {us:>12.1f}")
    for name, us in rows:
        print(f"{name + ' µs':<44} {us:>12.2f}")
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cycles and calls (CI)")
    parser.add_argument("--profile", action="store_true", help="cProfile the cycles, print the top 25")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="repeat and keep the best round (noisy box)")
    parser.add_argument("--updates", type=int, default=8, help="CCR-U's per manual-mode session")
    args = parser.parse_args(argv)
    args.cycles = 1000 if args.quick else 4000
    args.calls = 2000 if args.quick else 10_000
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
