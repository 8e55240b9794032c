"""SQLite storage: group commit, atomic batches, idempotent CDRs, sessions, queues, durability."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from engine.storage import (
    AccountRow, AppendLedger, BalanceRow, CdrFilter, CdrRow, DeleteSession, InsertCdr, LedgerEntry,
    MarkProcessed, PutAccount, PutBalance, PutSession, open_storage,
)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
async def storage(tmp_path):
    store = open_storage(tmp_path)
    await store.open()
    yield store
    await store.close()


def ledger(uuid: str, amount: str, after: str, reason: str = "debit", cgrid: str = "c1") -> AppendLedger:
    return AppendLedger(LedgerEntry(T0, "cgrates.org", "1001", uuid, "b1", "*monetary",
                                    Decimal(amount), Decimal(after), reason, cgrid=cgrid))


async def test_concurrent_writes_share_few_transactions(storage):
    """1,000 concurrent writers: every one durable, in far fewer than 1,000 commits."""
    writes = [storage.write([ledger(f"u{i}", "-0.01", "9.99")]) for i in range(1000)]
    await asyncio.gather(*writes)
    assert storage.stats.writes == 1000
    assert storage.stats.transactions < 100
    rows = await storage.ledger("cgrates.org", "1001")
    assert len(rows) == 1000
    assert rows[0].amount == Decimal("-0.01") and rows[-1].seq == 1000


async def test_data_is_on_disk_after_close_and_reopen(tmp_path):
    store = open_storage(tmp_path)
    await store.open()
    await store.write([
        PutAccount(AccountRow("cgrates.org", "1001", allow_negative=True)),
        PutBalance(BalanceRow("u1", "cgrates.org", "1001", "b1", "*monetary", Decimal("10.123456789"))),
        ledger("u1", "10.123456789", "10.123456789", "topup"),
    ])
    await store.close()
    assert (tmp_path / "chargeway.db").exists()
    again = open_storage(tmp_path)
    await again.open()
    [acc] = await again.load_accounts()
    assert acc.account.allow_negative is True
    assert acc.balances[0].value == Decimal("10.123456789")
    await again.close()


async def test_money_is_stored_as_exact_text(tmp_path):
    store = open_storage(tmp_path)
    await store.open()
    await store.write([PutBalance(BalanceRow("u1", "t", "a", "b", "*monetary", Decimal("0.1"))),
                       ledger("u1", "0.1", "0.1")])
    await store.insert_cdrs([CdrRow(cgrid="c", cost=Decimal("0.7002"))])
    await store.close()
    with sqlite3.connect(tmp_path / "chargeway.db") as conn:
        assert conn.execute("SELECT typeof(value), value FROM balances").fetchone() == ("text", "0.1")
        assert conn.execute("SELECT typeof(amount) FROM ledger").fetchone() == ("text",)
        assert conn.execute("SELECT typeof(cost), cost FROM cdrs").fetchone() == ("text", "0.7002")
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_ledger_is_append_only(tmp_path):
    store = open_storage(tmp_path)
    await store.open()
    await store.write([ledger("u1", "5", "5")])
    await store.close()
    with sqlite3.connect(tmp_path / "chargeway.db") as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE ledger SET amount='500'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM ledger")


async def test_one_failing_write_does_not_sink_its_batch_neighbours(storage):
    good = [storage.write([ledger(f"g{i}", "1", "1")]) for i in range(5)]
    bad = storage.write([ledger("x", "1", "1"), PutBalance(None)])  # type: ignore[arg-type]
    results = await asyncio.gather(*good, bad, return_exceptions=True)
    assert all(r == [None] for r in results[:5])
    assert isinstance(results[5], Exception)
    rows = await storage.ledger("cgrates.org", "1001")
    assert sorted(r.balance_uuid for r in rows) == [f"g{i}" for i in range(5)]  # "x" rolled back


async def test_duplicate_cdr_is_never_inserted_twice(storage):
    cdr = CdrRow(cgrid="abc", run_id="*default", account="1001", usage=60 * 10**9, cost=Decimal("0.6"),
                 cost_details={"Cost": Decimal("0.6")}, extra_fields={"sip": "x"})
    assert await storage.insert_cdrs([cdr]) == [True]
    again = CdrRow(cgrid="abc", run_id="*default", account="1001", cost=Decimal("99"))
    supplier = CdrRow(cgrid="abc", run_id="supplier", account="1001", cost=Decimal("0.3"))
    assert await storage.insert_cdrs([again, supplier]) == [False, True]
    rows = await storage.query_cdrs(CdrFilter(cgrids=["abc"]))
    assert [(r.run_id, r.cost) for r in rows] == [("*default", Decimal("0.6")), ("supplier", Decimal("0.3"))]
    assert rows[0].cost_details == {"Cost": Decimal("0.6")} and rows[0].extra_fields == {"sip": "x"}
    assert rows[0].order_id < rows[1].order_id


async def test_cdr_filters_order_and_paging(storage):
    rows = [CdrRow(cgrid=f"c{i}", account="1001" if i % 2 else "1002", destination=f"49{i}",
                   answer_time=T0 + timedelta(minutes=i), usage=i * 10**9, cost=Decimal(i) / 10)
            for i in range(10)]
    rows.append(CdrRow(cgrid="unrated", account="1001", cost=Decimal(-1)))
    await storage.insert_cdrs(rows)
    got = await storage.query_cdrs(CdrFilter(accounts=["1001"], min_usage=3 * 10**9, order_by="Cost;desc"))
    assert [r.cgrid for r in got] == ["c9", "c7", "c5", "c3"]
    got = await storage.query_cdrs(CdrFilter(answer_time_start=T0 + timedelta(minutes=2),
                                             answer_time_end=T0 + timedelta(minutes=4)))
    assert [r.cgrid for r in got] == ["c2", "c3"]
    got = await storage.query_cdrs(CdrFilter(destination_prefixes=["495", "497"]))
    assert [r.cgrid for r in got] == ["c5", "c7"]
    got = await storage.query_cdrs(CdrFilter(min_cost=Decimal("0.5"), max_cost=Decimal("0.8"), limit=2, offset=1))
    assert [r.cgrid for r in got] == ["c6", "c7"]
    assert [r.cgrid for r in await storage.query_cdrs(CdrFilter(max_cost=Decimal(-1)))] == ["unrated"]
    assert await storage.query_cdrs(CdrFilter(accounts=["nobody"])) == []


async def test_sessions_processed_keys_and_tariffplan(storage):
    await storage.write([PutSession("s1", b"one"), PutSession("s2", b"two")])
    await storage.write([PutSession("s1", b"one-updated"), DeleteSession("s2")])
    assert await storage.load_sessions() == {"s1": b"one-updated"}
    assert await storage.write([MarkProcessed("terminate:s1", "0.6")]) == [True]
    assert await storage.write([MarkProcessed("terminate:s1", "0.9")]) == [False]
    assert await storage.get_processed("terminate:s1") == "0.6"
    assert await storage.get_processed("terminate:s9") is None
    assert await storage.load_tariffplan() is None
    assert await storage.save_tariffplan(b"plan-1") == 1
    assert await storage.save_tariffplan(b"plan-2") == 2
    assert await storage.load_tariffplan() == b"plan-2"


async def test_cdr_session_close_and_idempotency_key_commit_together(storage):
    """A terminate's CDR, session removal and idempotency key are one transaction."""
    await storage.save_session("s1", b"live")
    ops = [InsertCdr(CdrRow(cgrid="s1", cost=Decimal("1.5"))), DeleteSession("s1"),
           MarkProcessed("terminate:s1")]
    assert await storage.write(ops) == [True, None, True]
    assert await storage.load_sessions() == {}
    assert [r.cost for r in await storage.query_cdrs(CdrFilter(cgrids=["s1"]))] == [Decimal("1.5")]


async def test_exporter_queue_is_fifo_until_acked(tmp_path):
    store = open_storage(tmp_path)
    await store.open()
    ids = await store.queue_put("http", [b"a", b"b", b"c"])
    await store.queue_put("csv", [b"other"])
    assert [p for _, p in await store.queue_get("http", limit=2)] == [b"a", b"b"]
    await store.queue_ack("http", ids[:1])
    await store.close()
    store = open_storage(tmp_path)  # survives a restart
    await store.open()
    assert [p for _, p in await store.queue_get("http")] == [b"b", b"c"]
    assert [p for _, p in await store.queue_get("csv")] == [b"other"]
    await store.close()


async def test_closed_storage_refuses_writes(tmp_path):
    store = open_storage(tmp_path)
    await store.open()
    await store.close()
    with pytest.raises(RuntimeError, match="closed"):
        await store.write([ledger("u", "1", "1")])


async def test_a_cancelled_caller_does_not_cancel_its_write(storage):
    """The in-memory change a write mirrors has happened; cancelling the wait must not drop it."""
    task = asyncio.ensure_future(storage.write([ledger("cancelled", "1", "1")]))
    await asyncio.sleep(0)
    task.cancel()
    await storage.write([ledger("after", "1", "1")])  # FIFO: committed after the cancelled one
    assert [r.balance_uuid for r in await storage.ledger("cgrates.org", "1001")] == ["cancelled", "after"]


async def test_ledger_rows_of_one_session(storage):
    await storage.write([ledger("u1", "-1", "9", cgrid="a"), ledger("u1", "-2", "7", cgrid="b"),
                         ledger("u1", "0.5", "7.5", "refund", cgrid="a")])
    rows = await storage.ledger("cgrates.org", "1001", cgrid="a")
    assert [(r.reason, r.amount) for r in rows] == [("debit", Decimal(-1)), ("refund", Decimal("0.5"))]
    assert len(await storage.ledger("cgrates.org", "1001")) == 3


async def test_a_newer_schema_is_refused(tmp_path):
    store = open_storage(tmp_path)
    await store.open()
    await store.close()
    with sqlite3.connect(tmp_path / "chargeway.db") as conn:
        conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(RuntimeError, match="schema v99"):
        await open_storage(tmp_path).open()


async def test_batched_overwrites_keep_the_last_value_in_submission_order(storage):
    """A group commit writes only the last put of a balance or session snapshot; the state
    after COMMIT must still be exactly what applying every write in order gives, deletes too."""
    from engine.storage.base import DeleteBalance
    await storage.write([PutAccount(AccountRow("cgrates.org", "1001"))])
    writes, balance, snapshots = [], None, {}
    for i in range(300):
        ops: list = [PutBalance(BalanceRow("u1", "cgrates.org", "1001", "b1", "*monetary", Decimal(i)))]
        balance = Decimal(i)
        if i == 150:
            ops.append(DeleteBalance("u1"))
            balance = None
        cgrid = f"s{i % 10}"
        if i % 7 == 0:
            ops.append(DeleteSession(cgrid))
            snapshots.pop(cgrid, None)
        else:
            ops.append(PutSession(cgrid, str(i).encode()))
            snapshots[cgrid] = str(i).encode()
        writes.append(storage.write(ops))
    writes.append(storage.write([DeleteBalance("u1")]))  # last word on the balance: gone
    balance = None
    await asyncio.gather(*writes)
    assert storage.stats.transactions < 300  # batches did share commits
    accounts = await storage.load_accounts()
    assert [b.value for a in accounts for b in a.balances] == ([] if balance is None else [balance])
    assert await storage.load_sessions() == snapshots


async def test_batched_balance_puts_store_the_last_value(storage):
    await storage.write([PutAccount(AccountRow("t", "a"))])
    writes = [storage.write([PutBalance(BalanceRow("u1", "t", "a", "b", "*monetary", Decimal(f"{i}.5")))])
              for i in range(200)]
    await asyncio.gather(*writes)
    [acc] = await storage.load_accounts()
    assert [b.value for b in acc.balances] == [Decimal("199.5")]


async def test_batched_cdrs_and_keys_report_each_op_and_the_stored_order_ids(storage):
    """Concurrent terminates' CDRs and processed keys share one commit: every op still says
    whether it was new, and each row learns the OrderID it was stored under. A duplicate in
    the same batch is told apart from the new rows (False), never stored twice."""
    rows = [CdrRow(cgrid=f"c{i}", run_id="*default", account="1001", cost=Decimal("0.1")) for i in range(20)]
    writes = [storage.write([InsertCdr(row), MarkProcessed(f"terminate:c{i}", "1")]) for i, row in enumerate(rows)]
    assert await asyncio.gather(*writes) == [[True, True]] * 20
    stored = {r.cgrid: r.order_id for r in await storage.query_cdrs(CdrFilter(cgrids=[f"c{i}" for i in range(20)]))}
    assert [row.order_id for row in rows] == [stored[f"c{i}"] for i in range(20)]
    assert len(set(stored.values())) == 20

    fresh = CdrRow(cgrid="c20", run_id="*default", account="1001", cost=Decimal("0.2"))
    dup = CdrRow(cgrid="c3", run_id="*default", account="1001", cost=Decimal("9"))
    results = await asyncio.gather(
        storage.write([InsertCdr(fresh), MarkProcessed("terminate:c20", "2")]),
        storage.write([InsertCdr(dup), MarkProcessed("terminate:c3", "9")]))
    assert results == [[True, True], [False, False]]
    again = await storage.query_cdrs(CdrFilter(cgrids=["c3", "c20"]))
    assert {(r.cgrid, r.cost) for r in again} == {("c3", Decimal("0.1")), ("c20", Decimal("0.2"))}
    assert fresh.order_id == next(r.order_id for r in again if r.cgrid == "c20")
    assert await storage.get_processed("terminate:c3") == "1"
