"""When the SQLite writer commits: deferred (unacknowledged) writes and off-thread checkpoints."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from datetime import datetime, timezone
from decimal import Decimal

from engine.storage import AppendLedger, LedgerEntry, open_storage
from engine.storage.deferral import unacknowledged_writes, writes_are_unacknowledged
from engine.storage.sqlite import SqliteStorage

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)


def ledger(i: int) -> AppendLedger:
    return AppendLedger(LedgerEntry(T0, "cgrates.org", "1001", f"u{i}", "b1", "*monetary",
                                    Decimal("-0.01"), Decimal("9.99"), "debit", cgrid=f"c{i}"))


async def open_sqlite(tmp_path, **kwargs) -> SqliteStorage:
    store = SqliteStorage(tmp_path / "chargeway.db", **kwargs)
    await store.open()
    return store


def committed_rows(path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM ledger").fetchone()[0]


async def test_the_unacknowledged_mark_is_scoped_to_its_context():
    assert not writes_are_unacknowledged()
    with unacknowledged_writes():
        assert writes_are_unacknowledged()
        inner = asyncio.get_running_loop().create_task(asyncio.sleep(0, writes_are_unacknowledged()))
        assert await inner  # a task started inside inherits it
    assert not writes_are_unacknowledged()


async def test_an_acknowledged_write_commits_at_once(tmp_path):
    store = await open_sqlite(tmp_path, deferred_commit_delay=5.0)
    try:
        start = time.monotonic()
        await store.write([ledger(1)])
        assert time.monotonic() - start < 2.0
        assert committed_rows(store.path) == 1
    finally:
        await store.close()


async def test_a_lone_unacknowledged_write_waits_for_company_then_commits(tmp_path):
    store = await open_sqlite(tmp_path, deferred_commit_delay=0.3)
    try:
        start = time.monotonic()
        with unacknowledged_writes():
            await store.write([ledger(1)])
        waited = time.monotonic() - start
        assert 0.25 <= waited < 3.0, waited
        assert committed_rows(store.path) == 1  # durable when the caller resumes, as always
    finally:
        await store.close()


async def test_an_acknowledged_write_takes_waiting_deferred_writes_into_its_commit(tmp_path):
    store = await open_sqlite(tmp_path, deferred_commit_delay=5.0)
    try:
        with unacknowledged_writes():
            deferred = [asyncio.ensure_future(store.write([ledger(i)])) for i in range(3)]
        await asyncio.sleep(0.1)          # the writer is now lingering on them
        assert not any(f.done() for f in deferred)
        before = store.stats.transactions
        start = time.monotonic()
        await store.write([ledger(99)])
        await asyncio.gather(*deferred)
        assert time.monotonic() - start < 2.0
        assert store.stats.transactions == before + 1
        assert committed_rows(store.path) == 4
    finally:
        await store.close()


async def test_enough_deferred_writes_commit_without_waiting_out_the_delay(tmp_path):
    store = await open_sqlite(tmp_path, deferred_commit_delay=5.0, deferred_commit_batch=8)
    try:
        start = time.monotonic()
        with unacknowledged_writes():
            await asyncio.gather(*(store.write([ledger(i)]) for i in range(8)))
        assert time.monotonic() - start < 2.0
        assert committed_rows(store.path) == 8
    finally:
        await store.close()


async def test_close_flushes_a_lingering_batch(tmp_path):
    store = await open_sqlite(tmp_path, deferred_commit_delay=30.0)
    with unacknowledged_writes():
        pending = asyncio.ensure_future(store.write([ledger(1)]))
    await asyncio.sleep(0.1)
    start = time.monotonic()
    await store.close()
    assert time.monotonic() - start < 5.0
    assert (await pending) == [None]
    assert committed_rows(tmp_path / "chargeway.db") == 1


async def test_checkpoints_run_beside_the_writer_and_close_truncates_the_wal(tmp_path):
    store = open_storage(tmp_path)
    await store.open()
    assert store.checkpointer is not None
    store.checkpointer.interval = 0.05
    for batch in range(30):
        await store.write([ledger(batch * 100 + i) for i in range(100)])
        await asyncio.sleep(0.01)
    deadline = time.monotonic() + 5
    while store.checkpointer.checkpoints == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert store.checkpointer.checkpoints > 0
    # The writer connection no longer checkpoints on its own.
    await store.close()
    wal = tmp_path / "chargeway.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    assert committed_rows(tmp_path / "chargeway.db") == 3000


async def test_the_writer_checkpoints_itself_when_the_wal_outgrows_its_bound(tmp_path):
    store = await open_sqlite(tmp_path)
    try:
        assert store.checkpointer is not None
        store.checkpointer.interval = 3600        # the checkpointer never gets to it
        store.checkpointer.max_wal_bytes = 256 << 10
        for batch in range(200):
            await store.write([ledger(batch * 50 + i) for i in range(50)])
        size = os.stat(tmp_path / "chargeway.db-wal").st_size
        # ~200 commits of several pages each would be megabytes without the guard.
        assert size < 4 << 20, size
        assert committed_rows(store.path) == 10_000
    finally:
        await store.close()
