"""Property: whatever sequence of top-ups, debits, session reservations, settles and refunds
runs, the ledger re-derives every balance exactly, money never goes below zero on an account
that does not allow it (except a settle's consumed overrun), and a restart sees the same books."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.accounts import AccountService, LedgerRef
from engine.errors import ChargingError
from engine.rating.rater import Rater, RatingRequest
from engine.storage import open_storage
from engine.tariffplan.loader import load_tariffplan

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
SECOND = 10**9

cents = st.integers(min_value=1, max_value=500).map(lambda c: Decimal(c) / 100)
seconds = st.integers(min_value=1, max_value=240)
operation = st.one_of(
    st.tuples(st.just("topup"), cents, st.sampled_from(["main", "bonus"])),
    st.tuples(st.just("debit"), cents, st.sampled_from(["main", "bonus"])),
    st.tuples(st.just("voice"), seconds, st.just("free")),
    st.tuples(st.just("session"), seconds, st.sampled_from(["1002", "1003"])),
    st.tuples(st.just("refund"), seconds, st.just("1002")),
)


async def _run(tp_dir: Path, data_dir: Path, ops: list[tuple]) -> None:
    storage = open_storage(data_dir)
    await storage.open()
    rater = Rater(load_tariffplan(tp_dir))
    service = AccountService(storage, lambda: rater)
    await service.start()
    await service.add_balance("cgrates.org", "1001", "*monetary", "1", {"ID": "main", "Weight": 10})
    acc = service.get("cgrates.org", "1001")
    for n, (kind, amount, target) in enumerate(ops):
        ref = LedgerRef("session_debit", f"c{n}")
        try:
            if kind == "topup":
                await service.add_balance("cgrates.org", "1001", "*monetary", amount, {"ID": target})
            elif kind == "debit":
                await service.debit_balance("cgrates.org", "1001", "*monetary", amount, {"ID": target})
            elif kind == "voice":
                await service.add_balance("cgrates.org", "1001", "*voice", amount * SECOND, {"ID": target})
            else:
                req = RatingRequest("cgrates.org", "call", "1001", target, T0 + timedelta(minutes=n),
                                    amount * SECOND)
                plan = await service.debit(acc, req, partial=True, ref=ref)
                used = plan.usage // 2 if kind == "refund" else plan.usage
                whole = RatingRequest("cgrates.org", "call", "1001", target, req.start, used)
                await service.settle(acc, whole, plan.parts, ref)
        except ChargingError as err:
            assert err.code == "INSUFFICIENT_CREDIT"
        for b in acc.all_balances():
            assert b.value >= 0, (kind, b)
        assert await service.audit("cgrates.org", "1001") == []
    snapshot = {b.uuid: b.value for b in acc.all_balances()}
    await storage.close()
    storage = open_storage(data_dir)
    await storage.open()
    again = AccountService(storage, lambda: rater)
    await again.start()
    assert {b.uuid: b.value for b in again.get("cgrates.org", "1001").all_balances()} == snapshot
    assert await again.audit("cgrates.org", "1001") == []
    await storage.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, min_size=1, max_size=12))
def test_ledger_always_rederives_every_balance(tp_dir, ops):
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_run(tp_dir, Path(tmp), ops))
