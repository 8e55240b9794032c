"""Session snapshots under writer-assigned row ids: what recovery reads back after puts,
deletes, failed batches and a restart, and the migration of a schema v1 database."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timezone
from decimal import Decimal

from engine.storage import AppendLedger, DeleteSession, LedgerEntry, PutBalance, PutSession, open_storage

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)


def ledger(uuid: str, cgrid: str) -> AppendLedger:
    return AppendLedger(LedgerEntry(T0, "cgrates.org", "1001", uuid, "b1", "*monetary",
                                    Decimal("-1"), Decimal("9"), "debit", cgrid=cgrid))


def table_rows(path) -> list[tuple[int, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT id, cgrid FROM session_snapshots ORDER BY id").fetchall()


async def test_snapshots_survive_a_restart_and_keep_one_row_per_session(tmp_path):
    store = open_storage(tmp_path)
    await store.open()
    await asyncio.gather(*(store.write([PutSession(f"s{i}", b"v1")]) for i in range(10)))
    await asyncio.gather(*(store.write([PutSession(f"s{i}", b"v2")]) for i in range(0, 10, 2)))
    await store.write([DeleteSession("s1"), DeleteSession("never-stored")])
    await store.close()
    again = open_storage(tmp_path)
    await again.open()
    expected = {f"s{i}": (b"v2" if i % 2 == 0 else b"v1") for i in range(10) if i != 1}
    assert await again.load_sessions() == expected
    # After the restart the writer still updates the existing rows instead of adding more.
    await again.write([PutSession("s3", b"v3"), DeleteSession("s4"), PutSession("s10", b"new")])
    assert (await again.load_sessions())["s3"] == b"v3"
    await again.close()
    rows = table_rows(tmp_path / "chargeway.db")
    assert sorted(c for _, c in rows) == sorted({*expected, "s10"} - {"s4"})
    assert rows[-1][1] == "s10"                      # new sessions go after the old ones


async def test_a_failed_job_leaves_no_snapshot_and_its_neighbours_theirs(tmp_path):
    """A job that fails rolls back its own snapshot put; the writer must then not believe the
    row exists (a later put would UPDATE nothing and recovery would lose the session)."""
    store = open_storage(tmp_path)
    await store.open()
    good = store.write([PutSession("good", b"g"), ledger("u1", "good")])
    bad = store.write([PutSession("bad", b"b"), PutBalance(None)])  # type: ignore[arg-type]
    results = await asyncio.gather(good, bad, return_exceptions=True)
    assert results[0] == [None, None] and isinstance(results[1], Exception)
    assert await store.load_sessions() == {"good": b"g"}
    await store.write([PutSession("bad", b"retried")])
    assert await store.load_sessions() == {"good": b"g", "bad": b"retried"}
    await store.close()


async def test_schema_v1_database_is_migrated_with_its_live_sessions(tmp_path):
    path = tmp_path / "chargeway.db"
    with sqlite3.connect(path) as conn:      # the v1 layout of the tables this touches
        conn.executescript("""
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT INTO meta VALUES ('schema_version', '1');
            CREATE TABLE ledger (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL,
                tenant TEXT NOT NULL, account TEXT NOT NULL,
                balance_uuid TEXT NOT NULL, balance_id TEXT NOT NULL, balance_type TEXT NOT NULL,
                amount TEXT NOT NULL, value_after TEXT NOT NULL, reason TEXT NOT NULL,
                cgrid TEXT NOT NULL DEFAULT '', run_id TEXT NOT NULL DEFAULT '', ref TEXT NOT NULL DEFAULT '');
            CREATE INDEX ledger_cgrid ON ledger (cgrid) WHERE cgrid != '';
            CREATE TABLE active_sessions (cgrid TEXT PRIMARY KEY, blob BLOB NOT NULL, updated_at TEXT NOT NULL);
            INSERT INTO active_sessions VALUES ('live-a', x'01', '2026-03-02T10:00:00Z'),
                                               ('live-b', x'02', '2026-03-02T10:00:01Z');
        """)
    store = open_storage(tmp_path)
    await store.open()
    assert await store.load_sessions() == {"live-a": b"\x01", "live-b": b"\x02"}
    await store.write([DeleteSession("live-a"), PutSession("live-b", b"\x03")])
    assert await store.load_sessions() == {"live-b": b"\x03"}
    await store.close()
    with sqlite3.connect(path) as conn:
        names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}
        version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    assert "active_sessions" not in names and "ledger_cgrid" not in names
    assert version == "2"
