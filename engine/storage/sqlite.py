"""SQLite (WAL) storage with one dedicated writer thread and group commit.

Why a writer thread: sqlite3 calls block, and the event loop must never wait on
disk. Why group commit: the expensive part of a durable write is the fsync at
COMMIT, not the INSERT. Callers put their batch of ops on a queue together with
an asyncio future; the writer takes *everything* queued, runs it in ONE
transaction, commits once, and only then resolves every future. While one
commit is syncing, new requests pile up and share the next commit, so 1,000
concurrent debits cost a handful of fsyncs instead of 1,000. Each caller's ops
run inside their own SAVEPOINT, so one caller's failure (a constraint, a bad
value) rolls back only that caller's ops, never its neighbours'.

Durability setting: ``journal_mode=WAL`` with ``synchronous=FULL`` by default.
In WAL mode NORMAL is already safe against a *process* crash (kill -9) but may
lose the last commits on power loss or an OS crash, because the WAL is then
only fsynced at checkpoints. The product promise is "durable before
acknowledged", so FULL (fsync of the WAL on every commit) is the default; group
commit makes its cost per request small. ``synchronous="NORMAL"`` can be chosen
for throughput when the host has a battery-backed cache.

Reads use a second connection on their own thread (WAL lets readers run
beside the writer), so a large CDR query never delays a debit's commit.

Two refinements of when the writer commits (see their modules for the measurements):
writes no peer waits an answer for (``deferral.unacknowledged_writes``) may wait up to
``deferred_commit_delay`` to share a commit, and WAL checkpoints run on their own thread
(``checkpointer.WalCheckpointer``) instead of stalling one commit in ~100.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Sequence

import msgspec

from engine.storage.base import (
    AccountRow, AppendLedger, BalanceRow, CdrFilter, CdrRow, DeleteAccount, DeleteBalance,
    DeleteSession, InsertCdr, LedgerEntry, MarkProcessed, PutAccount, PutBalance, PutSession,
    QueuePut, Storage, StorageStats, StoredAccount, WriteOp,
)
from engine.storage.bulk import BulkStatement
from engine.storage.checkpointer import WalCheckpointer
from engine.storage.deferral import writes_are_unacknowledged
from engine.storage.snapshots import SELECT_ALL as _SNAPSHOTS_SELECT
from engine.storage.snapshots import TABLE_SQL as _SNAPSHOTS_TABLE
from engine.storage.snapshots import SnapshotRows, migrate_v1
from engine.units import TWO_DIGITS, minute_head

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    tenant TEXT NOT NULL, id TEXT NOT NULL,
    allow_negative INTEGER NOT NULL DEFAULT 0, disabled INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant, id));
CREATE TABLE IF NOT EXISTS balances (
    uuid TEXT PRIMARY KEY, tenant TEXT NOT NULL, account TEXT NOT NULL, id TEXT NOT NULL,
    type TEXT NOT NULL, value TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}');
CREATE INDEX IF NOT EXISTS balances_account ON balances (tenant, account);
CREATE TABLE IF NOT EXISTS ledger (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL,
    tenant TEXT NOT NULL, account TEXT NOT NULL,
    balance_uuid TEXT NOT NULL, balance_id TEXT NOT NULL, balance_type TEXT NOT NULL,
    amount TEXT NOT NULL, value_after TEXT NOT NULL, reason TEXT NOT NULL,
    cgrid TEXT NOT NULL DEFAULT '', run_id TEXT NOT NULL DEFAULT '', ref TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS ledger_account ON ledger (tenant, account, seq);
CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger
    BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger
    BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
CREATE TABLE IF NOT EXISTS tariffplan (
    id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, blob BLOB NOT NULL,
    updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cdrs (
    order_id INTEGER PRIMARY KEY AUTOINCREMENT,
    cgrid TEXT NOT NULL, run_id TEXT NOT NULL,
    origin_host TEXT NOT NULL DEFAULT '', origin_id TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '', tor TEXT NOT NULL DEFAULT '',
    request_type TEXT NOT NULL DEFAULT '', tenant TEXT NOT NULL DEFAULT '',
    category TEXT NOT NULL DEFAULT '', account TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '', destination TEXT NOT NULL DEFAULT '',
    setup_time TEXT, answer_time TEXT, usage INTEGER NOT NULL DEFAULT 0,
    cost TEXT NOT NULL DEFAULT '-1', cost_source TEXT NOT NULL DEFAULT '',
    cost_details TEXT, extra_fields TEXT NOT NULL DEFAULT '{}', extra_info TEXT NOT NULL DEFAULT '',
    partial INTEGER NOT NULL DEFAULT 0, pre_rated INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    UNIQUE (cgrid, run_id));
CREATE INDEX IF NOT EXISTS cdrs_account ON cdrs (tenant, account);
CREATE INDEX IF NOT EXISTS cdrs_answer ON cdrs (answer_time);
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, payload BLOB NOT NULL,
    created_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS queue_name ON queue (name, id);
CREATE TABLE IF NOT EXISTS processed (key TEXT PRIMARY KEY, value TEXT NOT NULL, created_at TEXT NOT NULL);
"""

_CDR_COLUMNS = (
    "cgrid", "run_id", "origin_host", "origin_id", "source", "tor", "request_type", "tenant",
    "category", "account", "subject", "destination", "setup_time", "answer_time", "usage", "cost",
    "cost_source", "cost_details", "extra_fields", "extra_info", "partial", "pre_rated", "created_at",
)
_CDR_BULK = BulkStatement(f"INSERT OR IGNORE INTO cdrs ({', '.join(_CDR_COLUMNS)}) VALUES ",
                          f"({', '.join('?' * len(_CDR_COLUMNS))})", max_rows=64)
_ORDER_BY = {"orderid": "order_id", "answertime": "answer_time", "setuptime": "setup_time",
             "usage": "usage", "cost": "CAST(cost AS NUMERIC)"}

# JSON blobs keep Decimals exact: written as JSON numbers, read back as Decimal.
_json_enc = msgspec.json.Encoder(decimal_format="number")
_json_dec = msgspec.json.Decoder(float_hook=Decimal)


_last_ts: tuple[datetime | None, str | None] = (None, None)


def ts_text(value: datetime | None) -> str | None:
    """Fixed-width UTC ISO text (``YYYY-MM-DDTHH:MM:SS.ffffffZ``), so string order is time order
    in SQL. A UTC time is its minute's remembered text plus seconds and microseconds (~0.6 µs
    instead of ~2 µs through ``isoformat``); other zones convert first. The last conversion
    is remembered too: a batch's ledger rows usually share one timestamp."""
    global _last_ts
    if value is None:
        return None
    last_value, last_text = _last_ts
    if value is last_value:
        return last_text
    aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    utc = aware if aware.tzinfo is timezone.utc else aware.astimezone(timezone.utc)
    if utc.year < 1000:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # as stored so far (the C library's %Y)
    # the writer renders 4-6 stamps per charged request, nearly all in the same few minutes
    text = f"{minute_head(utc)}{TWO_DIGITS[utc.second]}.{utc.microsecond:06}Z"
    _last_ts = (value, text)
    return text


def ts_parse(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _now_text() -> str:
    return ts_text(_now()) or ""


@dataclass(frozen=True, slots=True)
class _SaveTariffPlan:
    blob: bytes


@dataclass(frozen=True, slots=True)
class _QueueAck:
    name: str
    ids: tuple[int, ...]


@dataclass(slots=True)
class _Job:
    ops: Sequence[Any]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    deferrable: bool = False  # no peer waits on it: may wait for company (storage/deferral.py)
    result: Any = None
    error: BaseException | None = None


_STOP = object()


class _JobFailed(Exception):
    """Internal: a job failed on the fast path; the batch is redone job by job."""


_LEDGER_BULK = BulkStatement("INSERT INTO ledger (ts, tenant, account, balance_uuid, balance_id, balance_type, "
                             "amount, value_after, reason, cgrid, run_id, ref) VALUES ", "(?,?,?,?,?,?,?,?,?,?,?,?)")


_BALANCE_PUT = BulkStatement(
    "INSERT INTO balances (uuid, tenant, account, id, type, value, data) VALUES ", "(?,?,?,?,?,?,?)",
    " ON CONFLICT(uuid) DO UPDATE SET tenant=excluded.tenant, account=excluded.account, id=excluded.id, "
    "type=excluded.type, value=excluded.value, data=excluded.data")
_ACCOUNT_PUT = BulkStatement(
    "INSERT INTO accounts (tenant, id, allow_negative, disabled, data) VALUES ", "(?,?,?,?,?)",
    " ON CONFLICT(tenant, id) DO UPDATE SET allow_negative=excluded.allow_negative, "
    "disabled=excluded.disabled, data=excluded.data")


def _put_balances(conn: sqlite3.Connection, rows: Any) -> None:
    _BALANCE_PUT.run(conn, [(b.uuid, b.tenant, b.account, b.id, b.type, str(b.value), b.data) for b in rows])


def _put_accounts(conn: sqlite3.Connection, rows: Any) -> None:
    _ACCOUNT_PUT.run(conn, [(a.tenant, a.id, int(a.allow_negative), int(a.disabled), a.data) for a in rows])


_PROCESSED_BULK = BulkStatement("INSERT OR IGNORE INTO processed (key, value, created_at) VALUES ", "(?,?,?)")


def _insert_cdrs(conn: sqlite3.Connection, cdrs: list[tuple[list[Any], int, CdrRow]]) -> None:
    """All CDR rows of a batch in multi-row statements (bulk.py); each op's result True and its row's
    order_id set. Inside one write transaction of the only writer, rows inserted together
    get consecutive rowids ending at ``last_insert_rowid()``. A row already stored (its
    (cgrid, run_id) exists) makes the batch fall back to op-by-op (``_JobFailed``)."""
    if _CDR_BULK.run(conn, [_cdr_params(c[2]) for c in cdrs]) != len(cdrs):
        raise _JobFailed("a CDR was already stored")
    (last,) = conn.execute("SELECT last_insert_rowid()").fetchone()
    first = int(last) - len(cdrs) + 1
    for offset, (results, index, row) in enumerate(cdrs):
        results[index] = True
        row.order_id = first + offset


def _ledger_params(e: LedgerEntry) -> tuple:
    return (ts_text(e.ts), e.tenant, e.account, e.balance_uuid, e.balance_id, e.balance_type,
            str(e.amount), str(e.value_after), e.reason, e.cgrid, e.run_id, e.ref)


class SqliteStorage(Storage):
    """The embedded default back end (see module docstring for the why of each choice)."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL", max_batch: int = 20_000,
                 deferred_commit_delay: float = 0.010, deferred_commit_batch: int = 16,
                 checkpoint_thread: bool = True) -> None:
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA", "OFF"):
            raise ValueError(f"synchronous must be FULL/NORMAL/EXTRA/OFF, not {synchronous!r}")
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        self.max_batch = max_batch
        # A batch of only deferrable writes commits when its oldest has waited this long, or
        # once this many are queued (below the agents' in-flight bounds, so waiting for
        # company can never stall the writes it waits for).
        self.deferred_commit_delay = deferred_commit_delay
        self.deferred_commit_batch = deferred_commit_batch
        self.checkpoint_thread = checkpoint_thread
        self.checkpointer: WalCheckpointer | None = None
        self._lingering = False
        self._wake_at = 0                  # queue size at which _submit wakes a lingering writer
        self._wake = threading.Event()
        self.stats = StorageStats()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._read_conn: sqlite3.Connection | None = None
        self._closed = True
        self._failed: BaseException | None = None
        # created_at/updated_at of bookkeeping rows: one clock read per transaction (the
        # rows of one commit become visible together), not one per row
        self._txn_now = ""
        self._snapshots = SnapshotRows()   # the writer thread's CGRID -> snapshot row id

    # --- lifecycle -----------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    async def open(self) -> None:
        if not self._closed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        ready: asyncio.Future = loop.create_future()
        self._queue = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._writer_main, args=(loop, ready),
                                        name=f"sqlite-writer:{self.path.name}", daemon=True)
        self._writer.start()
        await ready
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-reader")
        self._read_conn = await loop.run_in_executor(self._reader, self._connect)
        self._closed = False

    async def close(self) -> None:
        """Flush every queued write, then stop both threads."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._wake.set()
        writer = self._writer
        if writer is not None:
            await asyncio.get_running_loop().run_in_executor(None, writer.join)
        if self._reader is not None:
            conn = self._read_conn
            if conn is not None:
                await asyncio.get_running_loop().run_in_executor(self._reader, conn.close)
            self._reader.shutdown(wait=True)
        self._reader = None
        self._read_conn = None

    # --- writer thread -------------------------------------------------------------------------

    def _writer_main(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future) -> None:
        try:
            conn = self._connect()
            conn.executescript(_SCHEMA + _SNAPSHOTS_TABLE)
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))
            (found,) = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if int(found) > SCHEMA_VERSION:
                conn.close()
                raise RuntimeError(f"{self.path} has schema v{found}, newer than this chargeway "
                                   f"(v{SCHEMA_VERSION}); refusing to write to it")
            if int(found) < SCHEMA_VERSION:
                _migrate(conn, int(found))
                log.info("%s: migrated from schema v%s to v%d", self.path, found, SCHEMA_VERSION)
            self._snapshots.load(conn)
        except BaseException as exc:  # report the failure to open() instead of dying silently
            loop.call_soon_threadsafe(_set_exception, ready, exc)
            return
        checkpointer = None
        if self.checkpoint_thread:
            conn.execute("PRAGMA wal_autocheckpoint=0")
            checkpointer = self.checkpointer = WalCheckpointer(self._connect, self.path)
            checkpointer.start()
        loop.call_soon_threadsafe(_set_result, ready, None)
        try:
            self._writer_loop(conn, checkpointer)
            if checkpointer is not None:
                checkpointer.stop()
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except BaseException as exc:  # never leave callers waiting on a dead writer
            log.exception("sqlite writer stopped")
            self._failed = exc
            self._fail_pending(exc)
        finally:
            conn.close()

    def _writer_loop(self, conn: sqlite3.Connection, checkpointer: WalCheckpointer | None) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            batch: list[_Job] = [first]
            stopping, urgent = self._drain(batch)
            if not (stopping or urgent) and first.deferrable and self.deferred_commit_delay > 0:
                stopping = self._linger(batch, time.monotonic() + self.deferred_commit_delay)
            self._run_batch(conn, batch)
            # Not kept while this thread waits for the next write: a batch's ops hold every
            # session snapshot and CDR of thousands of requests.
            first = batch = None  # type: ignore[assignment]
            if checkpointer is not None:
                checkpointer.commits += 1
                # The checkpointer is behind (a long reader, a slow disk): checkpoint here,
                # between commits, as SQLite's autocheckpoint would have.
                if checkpointer.commits % 64 == 0 and checkpointer.wal_too_big():
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def _drain(self, batch: list[_Job]) -> tuple[bool, bool]:
        """Move what is queued into ``batch``; return (stop seen, a non-deferrable job seen)."""
        urgent = not batch[0].deferrable
        while len(batch) < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return False, urgent
            if job is _STOP:
                return True, True
            batch.append(job)
            if not job.deferrable:
                urgent = True
        return False, True  # full: commit now

    def _linger(self, batch: list[_Job], deadline: float) -> bool:
        """Wait for company for a batch of deferrable writes: until ``deadline``, until
        ``deferred_commit_batch`` writes are queued, or until a write someone waits on (or
        close) arrives. Returns whether close was seen."""
        self._lingering = True
        try:
            while True:
                stopping, urgent = self._drain(batch)
                remaining = deadline - time.monotonic()
                if stopping or urgent or len(batch) >= self.deferred_commit_batch or remaining <= 0:
                    return stopping
                self._wake_at = self.deferred_commit_batch - len(batch)
                self._wake.wait(remaining)
                self._wake.clear()
        finally:
            self._lingering = False

    def _fail_pending(self, exc: BaseException) -> None:
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(job, _Job):
                job.error = exc
                try:
                    job.loop.call_soon_threadsafe(_resolve_jobs, [job])
                except RuntimeError:
                    pass

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        """One transaction for the whole batch. Fast path: no savepoints, each table's rows in
        multi-row statements. If any job fails, roll back and redo the batch with one SAVEPOINT per
        job, so only the failing job's ops are dropped."""
        try:
            try:
                self._run_fast(conn, batch)
            except _JobFailed:
                conn.execute("ROLLBACK")
                self._snapshots.rollback()
                self._run_isolated(conn, batch)
            self._snapshots.commit()
            self.stats.transactions += 1
        except Exception as exc:  # the commit itself failed: nothing of this batch is durable
            log.exception("sqlite batch of %d jobs failed", len(batch))
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._snapshots.rollback()
            for job in batch:
                job.error = exc
        self.stats.batches += 1
        self.stats.writes += len(batch)
        self.stats.ops += sum(len(job.ops) for job in batch)
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in batch:
            by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve_jobs, jobs)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                pass

    def _run_fast(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        """The batch's ops in order, except the row overwrites whose result nobody reads:
        ledger appends, account and balance upserts and session snapshot puts/deletes are
        collected and written at the end in multi-row statements (bulk.py), and only the LAST write
        of an account, a balance or a session snapshot in the batch is kept (32 concurrent
        debits of one account put the same rows 32 times; only their final values can be seen
        after COMMIT). A balance or account delete first flushes the pending puts it could
        remove, so order across them holds.

        CDR inserts and processed keys (every terminate writes one CDR and two keys) are also
        written that way. Their per-op result is True ("new") when every row of the batch went
        in, which is the rule; if any was already there, the batch is redone op by op
        (``_run_isolated``) to tell which. Why: each SQLite step hands the GIL back and forth
        with the event loop, and under load every hand-back can wait for a loop callback to
        end, so fewer steps per batch is what keeps commits (and the agents' answers waiting
        on them) short."""
        conn.execute("BEGIN IMMEDIATE")
        self._txn_now = _now_text()
        ledger_rows: list[tuple] = []
        balances: dict[str, BalanceRow] = {}
        accounts: dict[tuple[str, str], AccountRow] = {}
        sessions: dict[str, bytes | None] = {}  # cgrid -> snapshot, or None: delete it
        cdrs: list[tuple[list[Any], int, CdrRow]] = []       # (job results, index, row)
        marks: list[tuple[list[Any], int, tuple]] = []       # (job results, index, params)
        for job in batch:
            try:
                results: list[Any] = []
                for op in job.ops:
                    kind = type(op)
                    if kind is InsertCdr:
                        cdrs.append((results, len(results), op.row))
                        results.append(None)
                    elif kind is MarkProcessed:
                        marks.append((results, len(results), (op.key, op.value, self._txn_now)))
                        results.append(None)
                    elif kind is AppendLedger:
                        ledger_rows.append(_ledger_params(op.entry))
                        results.append(None)
                    elif kind is PutBalance:
                        balances[op.row.uuid] = op.row
                        results.append(None)
                    elif kind is PutAccount:
                        accounts[(op.row.tenant, op.row.id)] = op.row
                        results.append(None)
                    elif kind is PutSession:
                        sessions[op.cgrid] = op.blob
                        results.append(None)
                    elif kind is DeleteSession:
                        sessions[op.cgrid] = None
                        results.append(None)
                    else:
                        if balances and (kind is DeleteBalance or kind is DeleteAccount):
                            _put_balances(conn, balances.values())
                            balances.clear()
                        if accounts and kind is DeleteAccount:
                            _put_accounts(conn, accounts.values())
                            accounts.clear()
                        results.append(self._apply(conn, op))
                job.result = results
            except Exception as exc:
                raise _JobFailed() from exc
        try:
            if ledger_rows:
                _LEDGER_BULK.run(conn, ledger_rows)
            if balances:
                _put_balances(conn, balances.values())
            if accounts:
                _put_accounts(conn, accounts.values())
            if sessions:
                self._snapshots.write(conn, sessions, self._txn_now)
            if cdrs:
                _insert_cdrs(conn, cdrs)
            if marks:
                if _PROCESSED_BULK.run(conn, [m[2] for m in marks]) != len(marks):
                    raise _JobFailed("a processed key was already there")
                for results, index, _ in marks:
                    results[index] = True
        except Exception as exc:
            raise _JobFailed() from exc
        conn.execute("COMMIT")

    def _run_isolated(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        self._txn_now = _now_text()
        for job in batch:
            job.result = None
            conn.execute("SAVEPOINT job")
            snapshots = self._snapshots.savepoint()
            try:
                job.result = [self._apply(conn, op) for op in job.ops]
            except Exception as exc:
                conn.execute("ROLLBACK TO job")
                self._snapshots.rollback_to(snapshots)
                job.error = exc
            conn.execute("RELEASE job")
        conn.execute("COMMIT")

    def _apply(self, conn: sqlite3.Connection, op: Any) -> Any:
        if isinstance(op, AppendLedger):
            conn.execute(_LEDGER_BULK.sql(1), _ledger_params(op.entry))
            return None
        if isinstance(op, PutBalance):
            _put_balances(conn, (op.row,))
            return None
        if isinstance(op, PutAccount):
            _put_accounts(conn, (op.row,))
            return None
        if isinstance(op, InsertCdr):
            cur = conn.execute(_CDR_BULK.sql(1), _cdr_params(op.row))
            if cur.rowcount == 1:
                op.row.order_id = int(cur.lastrowid or 0)
                return True
            return False
        if isinstance(op, PutSession):
            self._snapshots.write(conn, {op.cgrid: op.blob}, self._txn_now)
            return None
        if isinstance(op, DeleteSession):
            self._snapshots.write(conn, {op.cgrid: None}, self._txn_now)
            return None
        if isinstance(op, MarkProcessed):
            cur = conn.execute(_PROCESSED_BULK.sql(1), (op.key, op.value, self._txn_now))
            return cur.rowcount == 1
        if isinstance(op, DeleteBalance):
            conn.execute("DELETE FROM balances WHERE uuid=?", (op.uuid,))
            return None
        if isinstance(op, DeleteAccount):
            conn.execute("DELETE FROM balances WHERE tenant=? AND account=?", (op.tenant, op.id))
            conn.execute("DELETE FROM accounts WHERE tenant=? AND id=?", (op.tenant, op.id))
            return None
        if isinstance(op, QueuePut):
            cur = conn.execute("INSERT INTO queue (name, payload, created_at) VALUES (?,?,?)",
                               (op.name, op.payload, self._txn_now))
            return int(cur.lastrowid or 0)
        if isinstance(op, _QueueAck):
            conn.executemany("DELETE FROM queue WHERE name=? AND id=?", [(op.name, i) for i in op.ids])
            return None
        if isinstance(op, _SaveTariffPlan):
            row = conn.execute("SELECT version FROM tariffplan WHERE id=1").fetchone()
            version = (row[0] if row else 0) + 1
            conn.execute("INSERT INTO tariffplan (id, version, blob, updated_at) VALUES (1,?,?,?) "
                         "ON CONFLICT(id) DO UPDATE SET version=excluded.version, blob=excluded.blob, "
                         "updated_at=excluded.updated_at", (version, op.blob, ts_text(_now())))
            return version
        raise TypeError(f"unknown storage op {type(op).__name__}")

    # --- async entry points --------------------------------------------------------------------

    async def _submit(self, ops: Sequence[Any]) -> list[Any]:
        if self._closed:
            raise RuntimeError("storage is closed")
        if self._failed is not None:
            raise RuntimeError(f"storage writer failed: {self._failed}")
        loop = asyncio.get_running_loop()
        deferrable = writes_are_unacknowledged()
        job = _Job(list(ops), loop.create_future(), loop, deferrable)
        self._queue.put(job)
        if self._lingering and (not deferrable or self._queue.qsize() >= self._wake_at):
            self._wake.set()
        # A cancelled caller cancels only its wait: the job is queued and still commits
        # (the in-memory change it mirrors has already happened).
        return await job.future

    async def write(self, ops: Sequence[WriteOp]) -> list[Any]:
        if not ops:
            return []
        return await self._submit(ops)

    async def save_tariffplan(self, blob: bytes) -> int:
        (version,) = await self._submit([_SaveTariffPlan(blob)])
        return version

    async def queue_ack(self, name: str, ids: Sequence[int]) -> None:
        if ids:
            await self._submit([_QueueAck(name, tuple(ids))])

    async def _read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        if self._closed or self._reader is None or self._read_conn is None:
            raise RuntimeError("storage is closed")
        conn = self._read_conn
        return await asyncio.get_running_loop().run_in_executor(self._reader, fn, conn)

    async def load_accounts(self) -> list[StoredAccount]:
        def read(conn: sqlite3.Connection) -> list[StoredAccount]:
            balances: dict[tuple[str, str], list[BalanceRow]] = {}
            for uuid, tenant, account, bid, btype, value, data in conn.execute(
                    "SELECT uuid, tenant, account, id, type, value, data FROM balances ORDER BY rowid"):
                balances.setdefault((tenant, account), []).append(
                    BalanceRow(uuid, tenant, account, bid, btype, Decimal(value), data))
            out = []
            for tenant, aid, neg, dis, data in conn.execute(
                    "SELECT tenant, id, allow_negative, disabled, data FROM accounts"):
                out.append(StoredAccount(AccountRow(tenant, aid, bool(neg), bool(dis), data),
                                         balances.get((tenant, aid), [])))
            return out
        return await self._read(read)

    async def ledger(self, tenant: str, account: str, *, cgrid: str | None = None) -> list[LedgerEntry]:
        sql = ("SELECT seq, ts, tenant, account, balance_uuid, balance_id, balance_type, amount, "
               "value_after, reason, cgrid, run_id, ref FROM ledger ")
        if cgrid:
            sql += "WHERE cgrid=? AND tenant=? AND account=? ORDER BY seq"
            params: tuple = (cgrid, tenant, account)
        else:
            sql += "WHERE tenant=? AND account=? ORDER BY seq"
            params = (tenant, account)

        def read(conn: sqlite3.Connection) -> list[LedgerEntry]:
            rows = conn.execute(sql, params)
            return [LedgerEntry(ts=ts_parse(r[1]) or _now(), tenant=r[2], account=r[3],
                                balance_uuid=r[4], balance_id=r[5], balance_type=r[6],
                                amount=Decimal(r[7]), value_after=Decimal(r[8]), reason=r[9],
                                cgrid=r[10], run_id=r[11], ref=r[12], seq=r[0]) for r in rows]
        return await self._read(read)

    async def load_tariffplan(self) -> bytes | None:
        def read(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute("SELECT blob FROM tariffplan WHERE id=1").fetchone()
            return bytes(row[0]) if row else None
        return await self._read(read)

    async def query_cdrs(self, flt: CdrFilter) -> list[CdrRow]:
        sql, params = _cdr_query(flt)
        def read(conn: sqlite3.Connection) -> list[CdrRow]:
            return [_cdr_from_row(r) for r in conn.execute(sql, params)]
        return await self._read(read)

    async def load_sessions(self) -> dict[str, bytes]:
        def read(conn: sqlite3.Connection) -> dict[str, bytes]:
            return {cgrid: bytes(blob) for cgrid, blob in
                    conn.execute(_SNAPSHOTS_SELECT)}
        return await self._read(read)

    async def get_processed(self, key: str) -> str | None:
        def read(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT value FROM processed WHERE key=?", (key,)).fetchone()
            return row[0] if row else None
        return await self._read(read)

    async def queue_get(self, name: str, limit: int = 100) -> list[tuple[int, bytes]]:
        def read(conn: sqlite3.Connection) -> list[tuple[int, bytes]]:
            return [(i, bytes(p)) for i, p in conn.execute(
                "SELECT id, payload FROM queue WHERE name=? ORDER BY id LIMIT ?", (name, limit))]
        return await self._read(read)


# --- helpers -----------------------------------------------------------------------------------

def _migrate(conn: sqlite3.Connection, found: int) -> None:
    """Bring an older database to SCHEMA_VERSION in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if found < 2:
            migrate_v1(conn)
        conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise

def _set_result(fut: asyncio.Future, value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future, exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


def _resolve_jobs(jobs: list[_Job]) -> None:
    for job in jobs:
        if job.future.done():
            continue
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            job.future.set_result(job.result)


def _cdr_params(r: CdrRow) -> tuple:
    created = r.created_at or _now()
    r.created_at = created
    return (r.cgrid, r.run_id, r.origin_host, r.origin_id, r.source, r.tor, r.request_type,
            r.tenant, r.category, r.account, r.subject, r.destination, ts_text(r.setup_time),
            ts_text(r.answer_time), int(r.usage), str(r.cost), r.cost_source,
            None if r.cost_details is None else _json_enc.encode(r.cost_details).decode(),
            _json_enc.encode(r.extra_fields or {}).decode(), r.extra_info, int(r.partial),
            int(r.pre_rated), ts_text(created))


def _cdr_from_row(r: sqlite3.Row | tuple) -> CdrRow:
    (order_id, cgrid, run_id, origin_host, origin_id, source, tor, request_type, tenant, category,
     account, subject, destination, setup_time, answer_time, usage, cost, cost_source, cost_details,
     extra_fields, extra_info, partial, pre_rated, created_at) = r
    return CdrRow(
        cgrid=cgrid, run_id=run_id, origin_host=origin_host, origin_id=origin_id, source=source,
        tor=tor, request_type=request_type, tenant=tenant, category=category, account=account,
        subject=subject, destination=destination, setup_time=ts_parse(setup_time),
        answer_time=ts_parse(answer_time), usage=usage, cost=Decimal(cost), cost_source=cost_source,
        cost_details=None if cost_details is None else _json_dec.decode(cost_details),
        extra_fields=_json_dec.decode(extra_fields), extra_info=extra_info, partial=bool(partial),
        pre_rated=bool(pre_rated), order_id=order_id, created_at=ts_parse(created_at))


def _cdr_query(f: CdrFilter) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []

    def among(column: str, values: Sequence[str], negate: bool = False) -> None:
        if values:
            where.append(f"{column} {'NOT ' if negate else ''}IN ({','.join('?' * len(values))})")
            params.extend(values)

    for column, values in (("cgrid", f.cgrids), ("run_id", f.run_ids), ("origin_id", f.origin_ids),
                           ("origin_host", f.origin_hosts), ("source", f.sources), ("tor", f.tors),
                           ("request_type", f.request_types), ("tenant", f.tenants),
                           ("category", f.categories), ("account", f.accounts),
                           ("subject", f.subjects)):
        among(column, values)
    among("cgrid", f.not_cgrids, True)
    among("run_id", f.not_run_ids, True)
    among("account", f.not_accounts, True)
    if f.destination_prefixes:
        where.append("(" + " OR ".join("destination LIKE ? ESCAPE '\\'" for _ in f.destination_prefixes) + ")")
        params.extend(_like_prefix(p) for p in f.destination_prefixes)
    for p in f.not_destination_prefixes:
        where.append("destination NOT LIKE ? ESCAPE '\\'")
        params.append(_like_prefix(p))
    for column, start, end in (("setup_time", f.setup_time_start, f.setup_time_end),
                               ("answer_time", f.answer_time_start, f.answer_time_end),
                               ("created_at", f.created_at_start, f.created_at_end)):
        if start is not None:
            where.append(f"{column} >= ?")
            params.append(ts_text(start))
        if end is not None:
            where.append(f"{column} < ?")
            params.append(ts_text(end))
    if f.min_usage is not None:
        where.append("usage >= ?")
        params.append(f.min_usage)
    if f.max_usage is not None:
        where.append("usage < ?")
        params.append(f.max_usage)
    # Cost is TEXT (exact); SQL compares it as NUMERIC only to filter and order.
    if f.min_cost is not None:
        where.append("CAST(cost AS NUMERIC) >= ?")
        params.append(str(f.min_cost))
    if f.max_cost is not None:
        if f.max_cost == -1:
            where.append("cost = '-1'")
        else:
            where.append("CAST(cost AS NUMERIC) < ?")
            params.append(str(f.max_cost))
    if f.order_id_start is not None:
        where.append("order_id >= ?")
        params.append(f.order_id_start)
    if f.order_id_end is not None:
        where.append("order_id < ?")
        params.append(f.order_id_end)
    sql = "SELECT order_id, " + ", ".join(c for c in _CDR_COLUMNS) + " FROM cdrs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    field, _, direction = f.order_by.partition(";")
    column = _ORDER_BY.get(field.strip().lower(), "order_id")
    sql += f" ORDER BY {column} {'DESC' if direction.strip().lower() == 'desc' else 'ASC'}"
    if f.limit is not None or f.offset:
        sql += " LIMIT ? OFFSET ?"
        params.extend([f.limit if f.limit is not None else -1, max(0, f.offset)])
    return sql, params


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
