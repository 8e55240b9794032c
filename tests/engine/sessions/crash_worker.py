"""Child process for the sessions kill -9 test (not a test module).

Mode ``calls``: runs calls forever, 20 at a time: manual-mode sessions, debit-loop sessions
and postpaid CDRs. Logs ``S <i>`` before sending a call's first request and ``A <i>`` once
its terminate/CDR was acknowledged (durable), so the parent knows what was in flight.
Mode ``hold``: opens 20 sessions, logs ``READY`` and waits to be killed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from engine.accounts.service import AccountService
from engine.rating.rater import Rater
from engine.sessions.config import SessionsConfig
from engine.sessions.manager import SessionManager
from engine.storage import open_storage
from engine.tariffplan.loader import load_tariffplan

SECOND = 10**9


def usage_of(i: int) -> int:
    return (10 + i % 7) * SECOND


def kind_of(i: int) -> str:
    return ("manual", "loop", "cdr")[i % 3]


def fields_of(i: int) -> dict:
    return {"OriginID": f"call{i}", "OriginHost": "crash", "Account": "1001", "Destination": "1002",
            "AnswerTime": "2026-03-02T10:00:00Z",
            "RequestType": "*postpaid" if kind_of(i) == "cdr" else "*prepaid"}


def opts_of(i: int) -> dict:
    return {"*sessionsDebitInterval": 0 if kind_of(i) == "manual" else "2s"}


async def main(data_dir: str, tp_dir: str, log_path: str, mode: str = "calls") -> None:
    storage = open_storage(data_dir)
    await storage.open()
    rater = Rater(load_tariffplan(tp_dir))
    accounts = AccountService(storage, lambda: rater)
    await accounts.start()
    if accounts.get("cgrates.org", "1001") is None:
        await accounts.add_balance("cgrates.org", "1001", "*monetary", "1000", {"ID": "main"})
    sessions = SessionManager(accounts, lambda: rater, storage, SessionsConfig())
    await sessions.start()
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    async def one(i: int) -> None:
        fields = fields_of(i)
        os.write(log, f"S {i}\n".encode())
        if kind_of(i) == "cdr":
            await sessions.process_cdr({**fields, "Usage": usage_of(i)})
        else:
            await sessions.initiate({**fields, "Usage": "30s"}, opts_of(i))
            await sessions.terminate({**fields, "Usage": usage_of(i)}, opts_of(i))
        os.write(log, f"A {i}\n".encode())

    if mode == "hold":
        # Open sessions, say so, and wait to be killed with them open.
        await asyncio.gather(*(sessions.initiate({**fields_of(i), "Usage": "30s"}, opts_of(i))
                               for i in range(1, 31) if kind_of(i) != "cdr"))
        os.write(log, b"READY\n")
        await asyncio.sleep(3600)
    # A sliding window, not batches: there are always ~20 calls in flight, so the kill can
    # never land in the gap between two batches (where nothing would be in flight to test).
    i = 0
    in_flight: set[asyncio.Task] = set()
    while True:
        while len(in_flight) < 20:
            i += 1
            in_flight.add(asyncio.ensure_future(one(i)))
        done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    asyncio.run(main(*sys.argv[1:5]))
