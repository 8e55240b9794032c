"""Crash recovery: rebuild the sessions a previous process left open.

The snapshot says who the session is; the ledger says what each run paid (every debit's
row names the session, run and granted usage, every settle the usage it settled at).
A session that crashed while closing is closed with that usage; the others resume with
their timers armed and a ``recovery_ttl`` check with their agent.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.accounts.debit import BalanceCharge
from engine.sessions.billing import charges_from_ledger
from engine.sessions.keys import charged_key, term_key
from engine.sessions.session import decode_session
from engine.storage.base import DeleteSession

if TYPE_CHECKING:
    from engine.sessions.manager import SessionManager

log = logging.getLogger("chargeway.sessions")


async def recover(m: "SessionManager") -> None:
    """Rebuild sessions left by a previous process from their snapshot and the ledger."""
    blobs = await m.storage.load_sessions()
    if not blobs:
        return
    ledgers: dict[tuple[str, str], list[Any]] = {}
    now_mono, now_wall = m.clock.monotonic(), m.clock.now()
    for cgrid, blob in blobs.items():
        try:
            session = decode_session(blob, charge_type=BalanceCharge, now_mono=now_mono, now_wall=now_wall)
        except Exception:
            log.exception("session %s: unreadable snapshot kept in storage", cgrid)
            continue
        settled_usage: int | None = None
        for run in session.runs:
            key = (run.event.tenant, run.event.account)
            if key not in ledgers:
                ledgers[key] = await m.storage.ledger(*key) if run.event.account else []
            view = charges_from_ledger(ledgers[key], cgrid, run.run_id)
            # The snapshot may predate the last debits (it commits with the first one); debits of
            # zero money leave no ledger row: take whichever knows more.
            run.charges = view.charges
            run.debits = max(view.debits, run.debits)
            run.reserved = max(view.reserved, run.reserved)
            run.cost = sum((c.amount for c in view.charges if c.balance_type == "*monetary"), Decimal(0))
            if view.settled_usage is None:
                charged = await m.storage.get_processed(charged_key(cgrid, run.run_id))
                if charged is not None:  # settled without moving money (exact reservation)
                    view.settled_usage = int(charged or 0)
            if view.settled_usage is not None:
                settled_usage = view.settled_usage
        if await m.storage.get_processed(term_key(cgrid)):
            await m.storage.write([DeleteSession(cgrid)])
            continue
        m.sessions[cgrid] = session
        if settled_usage is not None:
            # It crashed while closing: finish with the usage it was closing at.
            async with session.lock:
                await m.close(session, settled_usage, cause=session.start_fields.get("DisconnectCause", ""))
            continue
        session.last_seen = now_mono
        if not session.loop:
            # The snapshot committed with the debit, before the grant was known.
            session.last_grant = max(session.last_grant, session.granted() - session.used)
        m.supervisor.arm(session)
        log.info("recovered session %s (%s)", cgrid, session.runs[0].event.describe())


