"""An in-process chargeway (real engine, SQLite, RADIUS agent) and radclient for the RADIUS tests.

The gateway runs in the test's event loop, so tests read balances and CDRs
straight from the engine; radclient/radtest are real processes run with
asyncio subprocesses (the loop keeps serving while they wait).
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any


from agents.radius.service import RadiusService, start as start_radius
from bench.radius_plan import write_plan
from engine.accounts.service import AccountService
from engine.event import EventDefaults
from engine.rating.rater import Rater
from engine.runtime import AgentContext
from engine.sessions.config import SessionsConfig
from engine.sessions.manager import SessionManager
from engine.storage.base import CdrFilter, open_storage
from engine.tariffplan.loader import load_tariffplan
from tests.support.processes import wait_listening

ROOT = Path(__file__).resolve().parents[3]

SECRET = "s3cr3t"
TENANT = "cgrates.org"
RADCLIENT = shutil.which("radclient") or "/usr/bin/radclient"
RADTEST = shutil.which("radtest") or "/usr/bin/radtest"


def radius_section(**overrides: Any) -> dict[str, Any]:
    section = {
        "enabled": True,
        "auth_address": "127.0.0.1:0",
        "acct_address": "127.0.0.1:0",
        "clients": [{"network": "127.0.0.1/32", "secret": SECRET, "da_port": 3799}],
        "template": "radius.yaml",
        "disconnect_attempts": 2,
        "disconnect_timeout": "200ms",
    }
    section.update(overrides)
    return section


@dataclass
class Gateway:
    """The engine parts a composition root builds, plus the started RADIUS service."""

    storage: Any
    accounts: AccountService
    sessions: SessionManager
    services: dict[str, Any]

    async def stop(self) -> None:
        for service in self.services.values():
            await service.stop()
        await self.sessions.stop()
        await self.storage.close()


async def start_gateway(tmp: Path, accounts: dict[str, str], **radius: Any) -> Gateway:
    """Storage, tariff plan (with top-ups), accounts, sessions (manual debits) and the RADIUS agent."""
    plan = load_tariffplan(str(write_plan(tmp / "tp", accounts)))
    rater = Rater(plan)
    storage = open_storage(tmp / "data")
    await storage.open()
    account_service = AccountService(storage, lambda: rater)
    await account_service.start()
    await account_service.apply_tariffplan(plan)
    sessions = SessionManager(account_service, lambda: rater, storage,
                              SessionsConfig.from_mapping({"debit_interval": "0s", "terminate_attempts": 2}),
                              EventDefaults())
    await sessions.start()
    ctx = AgentContext(sessions=sessions, accounts=account_service, rater=lambda: rater, storage=storage,
                       config={}, root_dir=ROOT, data_dir=tmp / "data", templates_dir=ROOT / "templates")
    service = await start_radius(ctx, radius_section(**radius))
    return Gateway(storage, account_service, sessions, {"radius": service})


def radius_service(gateway: Gateway) -> RadiusService:
    return gateway.services["radius"]


def balance(gateway: Gateway, account: str) -> Decimal:
    acc = gateway.accounts.get(TENANT, account)
    assert acc is not None, f"account {account} missing"
    return sum((b.value for b in acc.balances.get("*monetary", ())), Decimal(0))


async def cdrs(gateway: Gateway, origin_id: str) -> list[Any]:
    return await gateway.storage.query_cdrs(CdrFilter(origin_ids=(origin_id,)))


@dataclass
class ToolResult:
    rc: int
    out: str


async def radclient(port: int, kind: str, attrs: str, *, secret: str = SECRET, extra: tuple[str, ...] = (),
                    timeout: float = 1.0, retries: int = 1) -> ToolResult:
    """``echo attrs | radclient -x 127.0.0.1:port kind secret``."""
    proc = await asyncio.create_subprocess_exec(
        RADCLIENT, "-x", "-t", str(timeout), "-r", str(retries), *extra, f"127.0.0.1:{port}", kind, secret,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(attrs.encode()), timeout * (retries + 1) + 10)
    return ToolResult(proc.returncode or 0, out.decode(errors="replace"))


async def radtest(port: int, user: str, password: str, *, secret: str = SECRET) -> ToolResult:
    proc = await asyncio.create_subprocess_exec(
        RADTEST, "-x", user, password, f"127.0.0.1:{port}", "0", secret,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    return ToolResult(proc.returncode or 0, out.decode(errors="replace"))


def acct_attrs(status: str, session: str, user: str = "1001", called: str = "1002", **extra: Any) -> str:
    lines = [f"Acct-Status-Type = {status}", f'Acct-Session-Id = "{session}"', f'User-Name = "{user}"',
             f'Calling-Station-Id = "{user}"', f'Called-Station-Id = "{called}"', "NAS-IP-Address = 127.0.0.1",
             'Event-Timestamp = "Nov 22 2026 16:40:00 UTC"']
    for name, value in extra.items():
        lines.append(f"{name.replace('_', '-')} = {value}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- real peer processes

SIPP = shutil.which("sipp") or "/usr/bin/sipp"
KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
SIPP_DIR = Path(__file__).resolve().parent / "kamailio"      # scenarios from research/peers-kit/sipp


def wait_udp(port: int, timeout: float = 10.0) -> bool:
    """True once something listens on udp/``port``, False after ``timeout``."""
    return wait_listening(port, "udp", timeout)


def sipp_args(scenario: str, *, local_port: int, target: str | None = None, extra: tuple[str, ...] = ()) -> list[str]:
    args = [SIPP, "-sf", str(SIPP_DIR / scenario), "-i", "127.0.0.1", "-p", str(local_port), "-nostdin", *extra]
    return args + [target] if target else args
