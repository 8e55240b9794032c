"""Storage benchmark: what group commit buys (``python -m bench.storage_bench [--quick]``).

Rows are ledger entries written through the real ``SqliteStorage`` (WAL, writer thread):
- per-row commit: one awaited ``write`` at a time, so every row pays its own COMMIT/fsync;
- group commit: the same single-row writes issued concurrently, sharing transactions;
- one batch: all rows handed over in one ``write`` call (the ceiling).
Then whole prepaid debits through ``AccountService`` (rate, plan, apply, ledger, durable),
sequential vs concurrent. Prints rows/s and the ratio to per-row commits; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from engine.accounts import AccountService, LedgerRef
from engine.storage import AppendLedger, LedgerEntry, open_storage

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)


def _row(i: int) -> AppendLedger:
    return AppendLedger(LedgerEntry(T0, "cgrates.org", "1001", f"u{i % 10}", "main", "*monetary",
                                    Decimal("-0.01"), Decimal(1000) - Decimal(i) / 100, "debit",
                                    cgrid=f"c{i}"))


async def _per_row(storage, n: int) -> None:
    for i in range(n):
        await storage.write([_row(i)])


async def _grouped(storage, n: int) -> None:
    await asyncio.gather(*(storage.write([_row(i)]) for i in range(n)))


async def _one_batch(storage, n: int) -> None:
    await storage.write([_row(i) for i in range(n)])


async def _timed(folder: Path, synchronous: str, fn, n: int) -> tuple[float, int]:
    storage = open_storage(folder, synchronous=synchronous)
    await storage.open()
    try:
        started = time.perf_counter()
        await fn(storage, n)
        elapsed = time.perf_counter() - started
        return n / elapsed, storage.stats.transactions
    finally:
        await storage.close()


class _FlatRater:
    """0.01 per started second: keeps the benchmark on storage and accounts, not rating."""

    def rate(self, req):
        class Cost:
            cost = Decimal("0.01") * -(-req.usage // 10**9)
        return Cost()

    def max_affordable(self, req, credit):
        raise AssertionError("not used")

    def destination_ids(self, number: str) -> frozenset[str]:
        return frozenset()


async def _debits(folder: Path, n: int, concurrent: bool) -> tuple[float, int]:
    from engine.rating.rater import RatingRequest

    storage = open_storage(folder)
    await storage.open()
    rater = _FlatRater()
    service = AccountService(storage, lambda: rater)
    await service.start()
    await service.add_balance("cgrates.org", "1001", "*monetary", n, {"ID": "main"})
    account = service.get("cgrates.org", "1001")
    req = RatingRequest("cgrates.org", "call", "1001", "1002", T0, 30 * 10**9)
    before = storage.stats.transactions
    try:
        started = time.perf_counter()
        if concurrent:
            await asyncio.gather(*(service.debit(account, req, partial=False,
                                                 ref=LedgerRef("session_debit", f"c{i}"))
                                   for i in range(n)))
        else:
            for i in range(n):
                await service.debit(account, req, partial=False, ref=LedgerRef("session_debit", f"c{i}"))
        elapsed = time.perf_counter() - started
        assert await service.audit("cgrates.org", "1001") == []
        return n / elapsed, storage.stats.transactions - before
    finally:
        await storage.close()


async def run(quick: bool) -> None:
    per_row_n = 300 if quick else 2_000
    n = 5_000 if quick else 100_000
    debit_n = 1_000 if quick else 10_000
    print(f"{'case':<58}{'rows':>8}{'rows/s':>12}{'commits':>9}{'x per-row':>11}")
    for synchronous in ("FULL", "NORMAL"):
        with tempfile.TemporaryDirectory() as tmp:
            base, txn = await _timed(Path(tmp) / "a", synchronous, _per_row, per_row_n)
            print(f"{'ledger rows, per-row commit, sync=' + synchronous:<58}{per_row_n:>8}{base:>12,.0f}{txn:>9}{1:>10.1f}x")
            for label, fn in (("group commit (concurrent writes)", _grouped),
                              ("one batch", _one_batch)):
                rate, txn = await _timed(Path(tmp) / label.split()[0], synchronous, fn, n)
                print(f"{'ledger rows, ' + label + ', sync=' + synchronous:<58}{n:>8}"
                      f"{rate:>12,.0f}{txn:>9}{rate / base:>10.1f}x")
    with tempfile.TemporaryDirectory() as tmp:
        seq, txn_seq = await _debits(Path(tmp) / "seq", min(debit_n, per_row_n), concurrent=False)
        conc, txn_conc = await _debits(Path(tmp) / "conc", debit_n, concurrent=True)
    print(f"{'account debits, sequential (sync=FULL)':<58}{min(debit_n, per_row_n):>8}{seq:>12,.0f}{txn_seq:>9}{1:>10.1f}x")
    print(f"{'account debits, concurrent (sync=FULL)':<58}{debit_n:>8}{conc:>12,.0f}{txn_conc:>9}{conc / seq:>10.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    asyncio.run(run(parser.parse_args().quick))


if __name__ == "__main__":
    main()
