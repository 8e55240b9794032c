"""A real charging engine in-process for soak runs: SQLite storage, the sample tariff plan
(plus a supplier charging run), AccountService and SessionManager on a manual clock.

Why in-process with a manual clock: a soak run simulates hours of calls in seconds and
must be exactly reproducible from its seed, so time only moves when the driver says so.
``restart`` closes storage and builds every engine part again from the database, as a
process restart would, so the driver can check nothing money-related lives only in memory.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

from engine.accounts.service import AccountService
from engine.event import EventDefaults
from engine.rating.rater import Rater
from engine.sessions.config import SessionsConfig
from engine.sessions.manager import SessionManager
from engine.storage import open_storage
from engine.tariffplan.loader import load_tariffplan
from tests.engine.sessions.helpers import ManualClock

REPO = Path(__file__).resolve().parents[2]
SAMPLE_PLAN = REPO / "config" / "tariffplan"
TENANT = "cgrates.org"

# The sample plan's one DEFAULT charger plus a supplier run for calls to Germany: the carrier
# account pays too (prepaid, at subject 1003's 1 cent/minute), so those sessions have two
# prepaid runs on two accounts and must write two CDRs.
SOAK_CHARGERS = (
    "#Tenant,ID,FilterIDs,ActivationInterval,RunID,AttributeIDs,Weight\n"
    "cgrates.org,DEFAULT,,,*default,*none,20\n"
    "cgrates.org,CARRIER,*prefix:~*req.Destination:+49,,carrier,"
    "*constant:*req.RequestType:*prepaid;*constant:*req.Account:carrier;*constant:*req.Subject:1003,10\n"
)
CARRIER = "carrier"


def write_soak_plan(folder: Path) -> Path:
    """The sample plan (config/tariffplan) with the supplier run added to Chargers.csv."""
    shutil.copytree(SAMPLE_PLAN, folder)
    (folder / "Chargers.csv").write_text(SOAK_CHARGERS)
    return folder


@dataclass
class SoakAgent:
    """The switch side: an AgentLink that records every callback and hands disconnects to
    the driver, which decides per call whether the switch hangs up now, later, or is
    unreachable (``on_disconnect`` raising makes the engine retry, then end the call itself)."""

    name: str = "soak-agent"
    clock: Any = None
    on_disconnect: Callable[[Mapping[str, Any], str], Awaitable[None]] | None = None
    alive: Callable[[], list[tuple[str, str]]] = list
    disconnects: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    warnings: list[tuple[int, str, int]] = field(default_factory=list)

    async def disconnect_session(self, event: Mapping[str, Any], reason: str) -> None:
        self.disconnects.append((self.clock.monotonic(), reason, dict(event)))
        if self.on_disconnect is not None:
            await self.on_disconnect(event, reason)

    async def warn_disconnect(self, event: Mapping[str, Any], remaining_ns: int) -> None:
        self.warnings.append((self.clock.monotonic(), str(event.get("OriginID", "")), remaining_ns))

    async def active_session_ids(self) -> list[tuple[str, str]] | None:
        return self.alive()


@dataclass
class SoakEngine:
    """Storage + accounts + sessions over one data directory; ``restart`` rebuilds them."""

    data_dir: Path
    rater: Rater
    clock: ManualClock
    agent: SoakAgent
    config: SessionsConfig
    storage: Any = None
    accounts: AccountService = None  # type: ignore[assignment]
    sessions: SessionManager = None  # type: ignore[assignment]
    restarts: int = 0

    async def open(self) -> None:
        self.storage = open_storage(self.data_dir)
        await self.storage.open()
        self.accounts = AccountService(self.storage, lambda: self.rater, clock=self.clock.now)
        await self.accounts.start()
        self.sessions = SessionManager(self.accounts, lambda: self.rater, self.storage, self.config,
                                       EventDefaults(), clock=self.clock)
        self.sessions.register_link(self.agent)
        await self.sessions.start()

    async def close(self) -> None:
        await self.sessions.stop()
        await self.storage.close()

    async def restart(self) -> None:
        """Stop everything (open sessions stay persisted) and start again from disk."""
        await self.close()
        self.restarts += 1
        await self.open()

    async def advance(self, ns: int) -> None:
        await self.clock.advance(ns, self.sessions)

    def monetary(self, account: str) -> Decimal:
        acc = self.accounts.get(TENANT, account)
        if acc is None:
            return Decimal(0)
        return sum((b.value for b in acc.balances.get("*monetary", ())), Decimal(0))

    def balances(self) -> dict[tuple[str, str], Decimal]:
        """Every balance of every account by (account, balance uuid): the exact books."""
        return {(a.id, b.uuid): b.value for a in self.accounts.accounts() for b in a.all_balances()}


async def build_engine(tmp: Path, clock: ManualClock, agent: SoakAgent, **settings: Any) -> SoakEngine:
    """A fresh engine on the soak plan, its AccountActions applied (10 on each sample account,
    then debited to a few units),
    the carrier account topped up, ``postpaid`` (AllowNegative) for postpaid traffic and
    ``intl`` (rated by the plan's ``*any`` subject: Germany only) for international calls."""
    plan = load_tariffplan(write_soak_plan(tmp / "tp"))
    config = SessionsConfig.from_mapping({
        "debit_interval": "10s", "min_dur_low_balance": "5s", "terminate_grace": "10s",
        "recovery_ttl": "60s", "session_ttl_debit_loop": "10m", **settings})
    engine = SoakEngine(tmp / "data", Rater(plan), clock, agent, config)
    await engine.open()
    await engine.accounts.apply_tariffplan(plan)
    for account, keep in (("1001", "2.5"), ("1002", "1.5"), ("1003", "3"), ("1004", "1.5")):
        # little credit, so calls on these shared pools run dry and are cut mid-call
        await engine.accounts.debit_balance(TENANT, account, "*monetary", Decimal(10) - Decimal(keep))
    await engine.accounts.add_balance(TENANT, CARRIER, "*monetary", Decimal(8), {"ID": "main"})
    await engine.accounts.set_account(TENANT, "postpaid", allow_negative=True)
    await engine.accounts.add_balance(TENANT, "intl", "*monetary", Decimal(3), {"ID": "*default"})
    return engine
