"""kill -9 in the middle of concurrent debits: on restart every acknowledged debit is there,
none is applied twice, and the ledger re-derives the balance exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from engine.accounts import AccountService
from engine.storage import open_storage

WORKER = Path(__file__).with_name("crash_worker.py")


def cost(i: int) -> Decimal:
    return Decimal("0.01") * (i % 5 + 1)


def ids(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [int(line) for line in path.read_text().splitlines() if line.strip()]


async def test_kill_9_loses_no_acknowledged_debit_and_applies_none_twice(tmp_path, tp_dir):
    data = tmp_path / "data"
    attempts, acks = tmp_path / "attempts", tmp_path / "acks"
    proc = subprocess.Popen([sys.executable, str(WORKER), str(data), str(tp_dir), str(attempts), str(acks)],
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(ids(acks)) < 400:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "worker made no progress"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    acked, attempted = set(ids(acks)), set(ids(attempts))
    assert len(attempted) >= len(acked) >= 400

    storage = open_storage(data)
    await storage.open()
    try:
        service = AccountService(storage, lambda: None)
        await service.start()
        balance = service.get("cgrates.org", "1001").total("*monetary")
        rows = [e for e in await storage.ledger("cgrates.org", "1001") if e.reason == "session_debit"]
        durable = [int(e.cgrid[1:]) for e in rows]
        assert len(durable) == len(set(durable))  # no debit twice
        assert acked <= set(durable) <= attempted  # nothing acknowledged was lost
        debited = Decimal(1000) - balance
        assert debited == sum(cost(i) for i in durable)
        assert sum(cost(i) for i in acked) <= debited <= sum(cost(i) for i in attempted)
        assert await service.audit("cgrates.org", "1001") == []
    finally:
        await storage.close()
