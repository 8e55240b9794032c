"""A real chargeway engine plus the Diameter agent, as the tests (unit and integration) start it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any


from agents.diameter import service as diameter_service
from agents.diameter.client import GyClient
from engine.accounts.service import AccountService
from engine.rating.rater import Rater
from engine.runtime import AgentContext
from engine.sessions.config import SessionsConfig
from engine.sessions.manager import SessionManager
from engine.storage.base import CdrFilter, open_storage
from engine.tariffplan.loader import load_tariffplan

REPO = Path(__file__).resolve().parents[3]
SAMPLE_PLAN = REPO / "config" / "tariffplan"


def diameter_section(**overrides: Any) -> dict[str, Any]:
    section = {"enabled": True, "listeners": [{"address": "127.0.0.1:0", "transport": "tcp"}],
               "origin_host": "localhost", "origin_realm": "chargeway.org", "validity_time": 30,
               "watchdog_interval": 30}
    section.update(overrides)
    return section


class Engine:
    """Storage, rater, accounts and sessions built the way the composition root does."""

    def __init__(self, data_dir: Path, plan_dir: Path = SAMPLE_PLAN) -> None:
        self.data_dir = data_dir
        self.plan_dir = plan_dir

    async def start(self) -> "Engine":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.storage = open_storage(self.data_dir, synchronous="NORMAL")
        await self.storage.open()
        plan = load_tariffplan(str(self.plan_dir))
        self.rater = Rater(plan)
        self.accounts = AccountService(self.storage, lambda: self.rater)
        await self.accounts.start()
        await self.accounts.apply_tariffplan(plan)
        self.sessions = SessionManager(self.accounts, lambda: self.rater, self.storage, SessionsConfig())
        await self.sessions.start()
        return self

    def context(self) -> AgentContext:
        return AgentContext(sessions=self.sessions, accounts=self.accounts, rater=lambda: self.rater,
                            storage=self.storage, config={}, root_dir=REPO, data_dir=self.data_dir,
                            templates_dir=REPO / "templates")

    async def stop(self) -> None:
        await self.sessions.stop()
        await self.storage.close()


class Rig:
    """The engine and a running Diameter agent, plus what a test asserts with."""

    def __init__(self, engine: Engine, service: Any) -> None:
        self.engine = engine
        self.gateway = engine
        self.service = service
        host, port, _ = self.service.addresses[0]
        self.host, self.port = host, port
        self.clients: list[GyClient] = []

    async def client(self, origin_host: str = "pgw.test") -> GyClient:
        client = GyClient(origin_host)
        await client.connect(self.host, self.port)
        self.clients.append(client)
        return client

    def monetary(self, account: str, tenant: str = "cgrates.org") -> Decimal:
        acc = self.gateway.accounts.get(tenant, account)
        return sum((b.value for b in acc.balances.get("*monetary", ())), Decimal(0))

    def balance(self, account: str, balance_type: str, tenant: str = "cgrates.org") -> Decimal:
        acc = self.gateway.accounts.get(tenant, account)
        return sum((b.value for b in acc.balances.get(balance_type, ())), Decimal(0))

    async def cdrs(self, **flt: Any) -> list[Any]:
        return await self.gateway.storage.query_cdrs(CdrFilter(**flt))


async def start_rig(tmp_path: Path, plan_dir: Path = SAMPLE_PLAN, **section: Any) -> Rig:
    engine = await Engine(tmp_path / "data", plan_dir).start()
    try:
        service = await diameter_service.start(engine.context(), diameter_section(**section))
    except BaseException:
        await engine.stop()
        raise
    return Rig(engine, service)


async def stop_rig(rig: Rig) -> None:
    for client in rig.clients:
        await client.close()
    await rig.service.stop()
    await rig.engine.stop()
