"""Child process for the kill -9 test: debits forever, logging each attempt before the call and
each acknowledgement after the awaited (durable) return. Not a test module."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import datetime, timezone

from engine.accounts import AccountService, LedgerRef
from engine.rating.rater import Rater, RatingRequest
from engine.storage import open_storage
from engine.tariffplan.loader import load_tariffplan

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
SECOND = 10**9


def seconds_of(i: int) -> int:
    """Debit i lasts 1..5 s at 0.01/s, so the sum of costs identifies which debits landed."""
    return i % 5 + 1


async def main(data_dir: str, tp_dir: str, attempts_path: str, acks_path: str) -> None:
    storage = open_storage(data_dir)
    await storage.open()
    rater = Rater(load_tariffplan(tp_dir))
    service = AccountService(storage, lambda: rater)
    await service.start()
    if service.get("cgrates.org", "1001") is None:
        await service.add_balance("cgrates.org", "1001", "*monetary", "1000", {"ID": "main"})
    account = service.get("cgrates.org", "1001")
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    attempts, acks = os.open(attempts_path, flags), os.open(acks_path, flags)

    async def one(i: int) -> None:
        req = RatingRequest("cgrates.org", "call", "1001", "1002", T0, seconds_of(i) * SECOND)
        os.write(attempts, f"{i}\n".encode())
        await service.debit(account, req, partial=False, ref=LedgerRef("session_debit", f"c{i}"))
        os.write(acks, f"{i}\n".encode())

    # A continuous pipeline of 25 debits in flight, so the kill lands mid-commit.
    counter = iter(range(1, 10**9))

    async def lane() -> None:
        while True:
            await one(next(counter))

    await asyncio.gather(*(lane() for _ in range(25)))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
