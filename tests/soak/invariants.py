"""Money invariants of a charging engine, checked against its own books.

Each check returns human-readable violations (empty = the books balance) instead of
asserting, so one soak checkpoint reports every broken rule at once, with the seed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

from engine.errors import ChargingError
from engine.rating.rater import RatingRequest
from engine.storage.base import CdrFilter, CdrRow, LedgerEntry
from tests.soak.harness import TENANT, SoakEngine
from tests.soak.model import ENDED, HANGING_UP, LIVE, ORPHAN, PENDING_CDR, REFUSED, World

MONETARY = "*monetary"
CHARGED_TYPES = {"*prepaid", "*postpaid", "*pseudoprepaid"}


async def ledgers(engine: SoakEngine) -> dict[str, list[LedgerEntry]]:
    return {a.id: await engine.storage.ledger(TENANT, a.id) for a in engine.accounts.accounts()}


async def all_cdrs(engine: SoakEngine) -> list[CdrRow]:
    return await engine.storage.query_cdrs(CdrFilter())


async def last_cdr(engine: SoakEngine) -> int:
    """OrderID of the newest CDR (0 when none): changes whenever any CDR is stored."""
    rows = await engine.storage.query_cdrs(CdrFilter(order_by="OrderID;desc", limit=1))
    return rows[0].order_id if rows else 0


async def check_books(engine: SoakEngine, world: World) -> list[str]:
    """Ledger, balances, CDRs and live sessions agree with each other and with the world."""
    out: list[str] = []
    books = await ledgers(engine)
    cdrs = await all_cdrs(engine)
    live_runs = {(s.cgrid, r.run_id): r for s in engine.sessions.sessions.values() for r in s.runs}
    by_cgrid_origin = {c.cgrid: c.origin_id for c in cdrs}

    # 1. AccountService.audit: every balance is the sum of its ledger rows, in memory and on disk.
    for account in books:
        for m in await engine.accounts.audit(TENANT, account):
            out.append(f"audit {account}: {m}")

    # 2. Money that did not come from a session is exactly the load plus the top-ups.
    for account, rows in books.items():
        outside = sum((e.amount for e in rows if e.balance_type == MONETARY and not e.cgrid), Decimal(0))
        expected = world.initial.get(account, Decimal(0)) + world.topups.get(account, Decimal(0))
        if outside != expected:
            out.append(f"{account}: money outside sessions {outside} != loaded+topped up {expected}")

    # 3. Per session run: money taken (ledger) == CDR cost, or == what the live session holds.
    taken: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    units: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    owner: dict[tuple[str, str], set[str]] = defaultdict(set)
    for account, rows in books.items():
        for e in rows:
            if not e.cgrid:
                continue
            key = (e.cgrid, e.run_id)
            owner[key].add(account)
            if e.balance_type == MONETARY:
                taken[key] -= e.amount
            else:
                units[key] -= e.amount
    seen = Counter((c.cgrid, c.run_id) for c in cdrs)
    for key, n in seen.items():
        if n != 1:
            out.append(f"{n} CDRs for {key}")
    cdr_keys = set(seen)
    for c in cdrs:
        key = (c.cgrid, c.run_id)
        money = taken.get(key, Decimal(0))
        if owner.get(key) and owner[key] != {c.account}:
            out.append(f"CDR {c.origin_id}/{c.run_id} on {c.account} but ledger rows on {sorted(owner[key])}")
        if c.pre_rated or c.request_type not in CHARGED_TYPES:
            if money != 0:
                out.append(f"CDR {c.origin_id}/{c.run_id} ({c.request_type}) not charged but ledger took {money}")
        elif c.cost < 0:
            if money != 0:
                out.append(f"unrated CDR {c.origin_id}/{c.run_id} ({c.extra_info}) but ledger took {money}")
        elif money != c.cost:
            out.append(f"CDR {c.origin_id}/{c.run_id} cost {c.cost} != money taken {money}")
        if c.tor == "*voice" and units.get(key, Decimal(0)) > c.usage:
            out.append(f"CDR {c.origin_id}/{c.run_id}: {units[key]} ns of voice units for {c.usage} ns used")
    sms_pending = {(world.calls[o].origin) for o in world.calls if world.calls[o].state == PENDING_CDR}
    for key, money in taken.items():
        if key in cdr_keys:
            continue
        run = live_runs.get(key)
        if run is not None:
            if run.cost != money:
                out.append(f"live session {key}: holds {run.cost} but ledger took {money}")
        elif money != 0 or units.get(key, Decimal(0)) != 0:
            origin = by_cgrid_origin.get(key[0], _origin_of(world, key[0]))
            if origin not in sms_pending:
                out.append(f"{key} ({origin}): ledger took {money} (+{units.get(key)} units) "
                           f"with no CDR and no live session")

    # 4. No monetary balance below zero unless the engine was entitled to go there.
    for account in engine.accounts.accounts():
        for b in account.all_balances():
            if b.value >= 0:
                continue
            if b.type != MONETARY:
                out.append(f"{account.id}: unit balance {b.id} negative ({b.value})")
            elif not account.allow_negative and account.id not in world.overdraw:
                recent = [f"{_origin_of(world, e.cgrid) if e.cgrid else e.reason}/{e.run_id} {e.ref} "
                          f"{e.amount:+} -> {e.value_after}"
                          for e in books[account.id][-8:] if e.balance_uuid == b.uuid]
                out.append(f"{account.id}: balance {b.id} at {b.value} although every call stayed "
                           f"within its grants and nothing was postpaid; last rows:\n    "
                           + "\n    ".join(recent))
    return out


def _origin_of(world: World, cgrid: str) -> str:
    from engine.event import cgrid as make_cgrid
    from tests.soak.model import ORIGIN_HOST

    for origin in world.calls:
        if make_cgrid(origin, ORIGIN_HOST) == cgrid:
            return origin
    return "?"


async def check_final(engine: SoakEngine, world: World) -> list[str]:
    """After every call ended: nothing live, one CDR per (call, run), exact prices."""
    from engine.event import cgrid as make_cgrid
    from tests.soak.model import ORIGIN_HOST

    out: list[str] = []
    if engine.sessions.sessions:
        out.append(f"{len(engine.sessions.sessions)} sessions still active: "
                   f"{[s.start_fields.get('OriginID') for s in engine.sessions.sessions.values()]}")
    stored = await engine.storage.load_sessions()
    if stored:
        out.append(f"{len(stored)} session snapshots left in storage")
    cdrs = await all_cdrs(engine)
    runs_by_cgrid: dict[str, set[str]] = defaultdict(set)
    for c in cdrs:
        runs_by_cgrid[c.cgrid].add(c.run_id)
    for call in world.calls.values():
        if call.state in (LIVE, ORPHAN, HANGING_UP, PENDING_CDR):
            out.append(f"call {call.origin} never ended in the model ({call.state})")
            continue
        have = runs_by_cgrid.get(make_cgrid(call.origin, ORIGIN_HOST), set())
        want = call.runs if call.state == ENDED and call.expect_cdr else set()
        if call.state == REFUSED:
            want = set()
        if have != want:
            out.append(f"call {call.origin} ({call.kind}, {call.state}): "
                       f"CDR runs {sorted(have)} != {sorted(want)}")
    out.extend(check_prices(engine, cdrs))
    return out


def check_prices(engine: SoakEngine, cdrs: list[CdrRow]) -> list[str]:
    """A CDR's cost is the rater's exact price of the whole call when only money paid
    (no unit balance covers its ToR/destination): settle re-rated the call, not the slices."""
    out: list[str] = []
    for c in cdrs:
        if (c.cost < 0 or c.pre_rated or c.request_type not in CHARGED_TYPES or c.usage <= 0
                or c.tor != "*voice" or _unit_balance_may_apply(engine, c)):
            continue
        req = RatingRequest(tenant=c.tenant, category=c.category, subject=c.subject,
                            destination=c.destination, start=c.answer_time or c.setup_time,
                            usage=c.usage, tor=c.tor)
        try:
            price = engine.rater.rate(req).cost
        except ChargingError as err:
            out.append(f"CDR {c.origin_id}/{c.run_id} costs {c.cost} but the call is unrateable ({err})")
            continue
        if price != c.cost:
            out.append(f"CDR {c.origin_id}/{c.run_id} ({c.account}->{c.destination}, {c.usage} ns) "
                       f"cost {c.cost} != price {price}")
    return out


def _unit_balance_may_apply(engine: SoakEngine, c: CdrRow) -> bool:
    acc = engine.accounts.get(TENANT, c.account)
    return acc is not None and bool(acc.balances.get(c.tor))


def snapshot(engine: SoakEngine) -> dict[str, Any]:
    """What must not move when a request is refused or repeated."""
    return {
        "balances": engine.balances(),
        "sessions": {cgrid: [(r.run_id, r.cost, r.reserved) for r in s.runs]
                     for cgrid, s in engine.sessions.sessions.items()},
    }


def live_state(engine: SoakEngine) -> dict[str, Any]:
    """Live sessions as a restart must rebuild them: runs, money held, usage reserved."""
    return {cgrid: sorted((r.run_id, r.cost, r.reserved) for r in s.runs)
            for cgrid, s in engine.sessions.sessions.items()}


__all__ = ["check_books", "check_final", "check_prices", "snapshot", "live_state", "LIVE"]


def check_warnings(agent: Any, min_dur_low_balance: int) -> list[str]:
    """Every call cut for credit was warned first, and not later than the configured time
    before the cut when the cut was known that early (cnxcc-style low-balance warning)."""
    out: list[str] = []
    warned: dict[str, int] = {}
    for when, origin, _ in agent.warnings:
        warned.setdefault(origin, when)
    for when, reason, event in agent.disconnects:
        if reason != "INSUFFICIENT_CREDIT":
            continue
        origin = str(event.get("OriginID"))
        usage = int(event.get("Usage") or 0)
        first = warned.get(origin)
        if usage > min_dur_low_balance and first is None:
            out.append(f"{origin} cut for credit after {usage} ns without a low-balance warning")
        elif first is not None and first > when:
            out.append(f"{origin} warned after its cut")
    return out
