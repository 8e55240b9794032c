"""Sessions against the real rater, AccountService and SQLite storage, with a manual clock."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import ManualClock, RecordingLink, write_plan  # noqa: E402

from engine.accounts.service import AccountService  # noqa: E402
from engine.rating.rater import Rater  # noqa: E402
from engine.sessions.config import SessionsConfig  # noqa: E402
from engine.sessions.manager import SessionManager  # noqa: E402
from engine.storage import open_storage  # noqa: E402
from engine.tariffplan.loader import load_tariffplan  # noqa: E402


@dataclass
class Engine:
    storage: Any
    accounts: AccountService
    sessions: SessionManager
    clock: ManualClock
    link: RecordingLink

    def balance(self, account: str = "1001") -> Decimal:
        acc = self.accounts.get("cgrates.org", account)
        return sum((b.value for b in acc.balances.get("*monetary", ())), Decimal(0))

    async def topup(self, amount: str, account: str = "1001") -> None:
        await self.accounts.add_balance("cgrates.org", account, "*monetary", Decimal(amount), {"ID": "main"})

    async def cdrs(self, **flt: Any) -> list[dict]:
        try:
            return await self.sessions.cdrs.get_cdrs(flt)
        except Exception:
            return []


async def build_engine(tmp_path: Path, *, chargers: str | None = None, clock: Any = None,
                       **config: Any) -> Engine:
    plan = load_tariffplan(write_plan(tmp_path / "tp", chargers))
    rater = Rater(plan)
    storage = open_storage(tmp_path / "data")
    await storage.open()
    accounts = AccountService(storage, lambda: rater)
    await accounts.start()
    clock = clock or ManualClock()
    settings = {"debit_interval": "10s", "min_dur_low_balance": "5s", **config}
    manager = SessionManager(accounts, lambda: rater, storage, SessionsConfig.from_mapping(settings), clock=clock)
    link = RecordingLink(clock=clock)
    manager.register_link(link)
    await manager.start()
    return Engine(storage, accounts, manager, clock, link)


@pytest.fixture
async def engine(tmp_path):
    eng = await build_engine(tmp_path)
    yield eng
    await eng.sessions.stop()
    await eng.storage.close()


@pytest.fixture
async def make_engine(tmp_path):
    made: list[Engine] = []

    async def make(**kwargs: Any) -> Engine:
        eng = await build_engine(tmp_path, **kwargs)
        made.append(eng)
        return eng

    yield make
    for eng in made:
        await eng.sessions.stop()
        await eng.storage.close()
