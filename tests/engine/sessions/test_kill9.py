"""kill -9 in the middle of live traffic: after restart no CDR and no debit is lost or doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from crash_worker import fields_of, kind_of, opts_of, usage_of
from helpers import write_plan

from engine.accounts.service import AccountService
from engine.rating.rater import Rater
from engine.sessions.config import SessionsConfig
from engine.sessions.manager import SessionManager
from engine.storage import CdrFilter, open_storage
from engine.tariffplan.loader import load_tariffplan

WORKER = Path(__file__).with_name("crash_worker.py")
ROOT = Path(__file__).resolve().parents[3]


def read_log(path: Path) -> tuple[set[int], set[int]]:
    started, acked = set(), set()
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            (started if parts[0] == "S" else acked).add(int(parts[1]))
    return started, acked


async def restart_engine(tp_dir, data_dir):
    """The engine a new process would start on the killed worker's data (recovery included)."""
    rater = Rater(load_tariffplan(tp_dir))
    storage = open_storage(data_dir)
    await storage.open()
    accounts = AccountService(storage, lambda: rater)
    await accounts.start()
    sessions = SessionManager(accounts, lambda: rater, storage, SessionsConfig())
    await sessions.start()
    return storage, accounts, sessions

async def test_kill_9_during_calls_loses_and_doubles_nothing(tmp_path):
    tp_dir = write_plan(tmp_path / "tp")
    data_dir, log_path = tmp_path / "data", tmp_path / "calls.log"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{WORKER.parent}"}
    proc = subprocess.Popen([sys.executable, str(WORKER), str(data_dir), str(tp_dir), str(log_path)], env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if log_path.exists() and len(read_log(log_path)[1]) >= 300:
                break
            assert proc.poll() is None, "worker died on its own"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    started, acked = read_log(log_path)
    assert len(acked) >= 300 and started - acked, "the kill should land with calls in flight"

    storage, accounts, sessions = await restart_engine(tp_dir, data_dir)
    try:
        stored = {row.origin_id for row in await storage.query_cdrs(CdrFilter())}
        assert {f"call{i}" for i in acked} <= stored            # acknowledged = durable
        # Every call the worker started now gets its terminate/CDR (again, for most of them).
        for i in sorted(started):
            fields = {**fields_of(i), "Usage": usage_of(i)}
            if kind_of(i) == "cdr":
                await sessions.process_cdr(fields)
            else:
                await sessions.terminate(fields, opts_of(i))
        await sessions.idle()
        rows = await storage.query_cdrs(CdrFilter())
        assert sorted(r.origin_id for r in rows) == sorted(f"call{i}" for i in started)  # one each
        expected = sum((Decimal(usage_of(i) // 10**9) / 100 for i in started), Decimal(0))
        balance = sum(b.value for b in accounts.get("cgrates.org", "1001").balances["*monetary"])
        assert balance == Decimal(1000) - expected
        assert sum(r.cost for r in rows) == expected
        assert await accounts.audit("cgrates.org", "1001") == []
        assert sessions.active_sessions() == [] and await storage.load_sessions() == {}
    finally:
        await sessions.stop()
        await storage.close()


async def test_sessions_open_at_kill_9_are_recovered_and_settle_exactly(tmp_path):
    tp_dir = write_plan(tmp_path / "tp")
    data_dir, log_path = tmp_path / "data", tmp_path / "calls.log"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{WORKER.parent}"}
    proc = subprocess.Popen([sys.executable, str(WORKER), str(data_dir), str(tp_dir), str(log_path), "hold"],
                            env=env)
    try:
        deadline = time.monotonic() + 30
        while not (log_path.exists() and "READY" in log_path.read_text()):
            assert time.monotonic() < deadline and proc.poll() is None, "worker did not get ready"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    open_calls = [i for i in range(1, 31) if kind_of(i) != "cdr"]

    storage, accounts, sessions = await restart_engine(tp_dir, data_dir)
    try:
        recovered = {e["OriginID"]: e for e in sessions.active_sessions()}
        assert set(recovered) == {f"call{i}" for i in open_calls}
        reserved = {i: (30 if kind_of(i) == "manual" else 2) for i in open_calls}  # manual: Usage, loop: 2s slice
        assert all(recovered[f"call{i}"]["DurationIndex"] >= reserved[i] * 10**9 for i in open_calls)
        for i in open_calls:
            await sessions.terminate({**fields_of(i), "Usage": usage_of(i)}, opts_of(i))
        expected = sum((Decimal(usage_of(i) // 10**9) / 100 for i in open_calls), Decimal(0))
        balance = sum(b.value for b in accounts.get("cgrates.org", "1001").balances["*monetary"])
        assert balance == Decimal(1000) - expected
        rows = await storage.query_cdrs(CdrFilter())
        assert sorted(r.origin_id for r in rows) == sorted(f"call{i}" for i in open_calls)
        assert await accounts.audit("cgrates.org", "1001") == []
        assert sessions.active_sessions() == []
    finally:
        await sessions.stop()
        await storage.close()
