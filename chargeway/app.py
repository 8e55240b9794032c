"""The composition root: build storage, rating, accounts, sessions and the enabled agents.

This is the only place that knows every part. CLI commands sit on top of it;
agents get an ``AgentContext`` and never import this module.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from typing import Any
from zoneinfo import ZoneInfo

from chargeway.config import AGENT_SECTIONS, ROOT_DIR, Config
from chargeway.gc_policy import apply_gc_policy
from engine.accounts.service import AccountService
from engine.event import EventDefaults
from engine.looplag import LoopWaitMonitor
from engine.rating.rater import Rater
from engine.runtime import AgentContext, RunningService
from engine.sessions.manager import SessionManager, SessionsConfig
from engine.storage import open_storage
from engine.tariffplan.loader import load_tariffplan
from engine.tariffplan.model import TariffPlan

log = logging.getLogger("chargeway")

# Config section -> module with ``async def start(ctx, section) -> RunningService``.
AGENT_MODULES = {
    "api": "agents.jsonrpc.service",
    "diameter": "agents.diameter.service",
    "radius": "agents.radius.service",
    "kamailio": "agents.kamailio.service",
    "freeswitch": "agents.freeswitch.service",
    "asterisk": "agents.asterisk.service",
    "opensips": "agents.opensips.service",
}


def event_defaults(config: Config) -> EventDefaults:
    general = config.section("general")
    return EventDefaults(
        tenant=str(general.get("default_tenant", "cgrates.org")),
        category=str(general.get("default_category", "call")),
        request_type=str(general.get("default_request_type", "*prepaid")),
        tor=str(general.get("default_tor", "*voice")),
    )


class Gateway:
    """One running chargeway: engine plus agents, started and stopped together."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.storage: Any = None
        self.accounts: AccountService | None = None
        self.sessions: SessionManager | None = None
        self._rater: Rater | None = None
        self.services: dict[str, RunningService] = {}
        self.context: AgentContext | None = None
        self.loop_wait = LoopWaitMonitor()

    def rater(self) -> Rater:
        if self._rater is None:
            self._rater = self._build_rater(TariffPlan())
        return self._rater

    def _compat(self) -> bool:
        return bool(self.config.section("rating").get("cgrates_compat", False))

    def _build_rater(self, plan: TariffPlan) -> Rater:
        """A Rater for ``plan``; Timings.csv clock times are read in ``rating.timezone``."""
        zone = str(self.config.section("rating").get("timezone", "UTC"))
        return Rater(plan, cgrates_compat=self._compat(), tz=ZoneInfo(zone))

    async def start_engine(self) -> None:
        """Storage, the stored tariff plan, accounts and sessions (no agents)."""
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        storage_section = self.config.section("storage")
        self.storage = open_storage(self.config.data_dir,
                                    synchronous=str(storage_section.get("synchronous", "full")))
        await self.storage.open()
        blob = await self.storage.load_tariffplan()
        if blob:
            plan = await asyncio.to_thread(TariffPlan.from_bytes, blob)
            self._rater = await asyncio.to_thread(self._build_rater, plan)
        self.accounts = AccountService(self.storage, self.rater)
        await self.accounts.start()
        await self._load_on_start(blob is not None)
        sessions_config = SessionsConfig.from_mapping(self.config.section("sessions"))
        self.sessions = SessionManager(self.accounts, self.rater, self.storage, sessions_config,
                                       event_defaults(self.config), cdr_config=self.config.section("cdrs"))
        await self.sessions.start()

    async def _load_on_start(self, have_plan: bool) -> None:
        section = self.config.section("tariffplan")
        mode = str(section.get("load_on_start", "if_empty"))
        if mode == "never" or (mode == "if_empty" and have_plan):
            return
        folder = section.get("folder")
        if folder:
            await self.load_tariffplan(str(self.config.resolve_path(folder)), apply_accounts=not have_plan)

    async def load_tariffplan(self, folder: str, *, dry_run: bool = False, apply_accounts: bool = True,
                              progress: Any = None) -> TariffPlan:
        """Validate and load a CGRateS tariff-plan folder: all or nothing.

        Parsing runs in a thread so a large folder never stalls live calls.
        The rater is swapped atomically; account actions (top-ups) run once per load.
        """
        plan = await asyncio.to_thread(load_tariffplan, folder, progress)
        if dry_run:
            return plan
        await self.storage.save_tariffplan(plan.to_bytes())
        # Building the prefix index of a large plan takes seconds: keep it off the event loop.
        self._rater = await asyncio.to_thread(self._build_rater, plan)
        if apply_accounts and self.accounts is not None:
            await self.accounts.apply_tariffplan(plan)
        log.info("tariff plan loaded from %s", folder)
        return plan

    async def start(self) -> None:
        await self.start_engine()
        templates_dir = ROOT_DIR / "templates"
        self.context = AgentContext(
            sessions=self.sessions, accounts=self.accounts, rater=self.rater, storage=self.storage,
            config=self.config.raw, root_dir=ROOT_DIR, data_dir=self.config.data_dir,
            templates_dir=templates_dir,
            extras={"load_tariffplan": self.load_tariffplan, "gateway": self,
                    "loop_wait": self.loop_wait.summary},
        )
        self.loop_wait.start()
        for name in AGENT_SECTIONS:
            section = self.config.raw.get(name) or {}
            if not section.get("enabled"):
                continue
            module = importlib.import_module(AGENT_MODULES[name])
            self.services[name] = await module.start(self.context, section)
            log.info("agent %s started", name)

    async def stop(self) -> None:
        if self.loop_wait.samples:
            log.info("event loop wait before a new request over the last minute (ms): %s",
                     self.loop_wait.summary())
        self.loop_wait.stop()
        for name, service in reversed(list(self.services.items())):
            try:
                await service.stop()
            except Exception:  # a failing agent must not keep the engine from flushing
                log.exception("stopping agent %s failed", name)
        self.services.clear()
        if self.sessions is not None:
            await self.sessions.stop()
        if self.storage is not None:
            await self.storage.close()


def tune_gc(policy: str = "timed") -> None:
    """The collector settings `chargeway serve` runs with (see chargeway/gc_policy.py):
    start-up objects frozen, collection on a timer. Benchmarks call it to measure the same."""
    apply_gc_policy(policy)
