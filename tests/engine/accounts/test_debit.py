"""Debits: unit balances before money, weights, expiry, filters, allow_negative, disabled,
partial grants, atomicity, exact settlement and concurrency."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from engine.accounts import LedgerRef
from engine.errors import ChargingError

SECOND = 10**9
REF = LedgerRef(reason="session_debit", cgrid="call-1", run_id="*default")


async def test_unit_balance_pays_before_money(service, rater_box, linear, make_req):
    rater_box["rater"] = linear("0.01")
    await service.add_balance("cgrates.org", "1001", "*voice", 60 * SECOND, {"ID": "free_min"})
    await service.add_balance("cgrates.org", "1001", "*monetary", "10", {"ID": "main"})
    acc = service.get("cgrates.org", "1001")
    plan = await service.debit(acc, make_req(90), partial=False, ref=REF)
    assert plan.usage == 90 * SECOND and plan.unit_usage == 60 * SECOND
    assert plan.cost == Decimal("0.30")  # only the 30 s the minutes did not cover
    assert acc.total("*voice", when=make_req(0).start) == 0
    assert acc.total("*monetary", when=make_req(0).start) == Decimal("9.70")
    assert await service.audit("cgrates.org", "1001") == []
