"""Debits against the real rater: unit balances before money, weights, expiry, destination and
category filters, allow_negative, disabled accounts, partial grants, all-or-nothing, exact
settlement at terminate, and concurrent sessions that can never overspend.

Plan (conftest): calls to 1002 cost 0.01/s (1 s increments); calls to 1003 use RT_20CNT
(connect fee 0.4, 0.2 per first minute, then 0.1/min per second).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from engine.accounts import LedgerRef
from engine.errors import ChargingError
from engine.storage import MarkProcessed

SECOND = 10**9
T = "cgrates.org"
REF = LedgerRef(reason="session_debit", cgrid="call-1", run_id="*default")


def money(acc) -> Decimal:
    return sum((b.value for b in acc.balances.get("*monetary", ())), Decimal(0))


def value(acc, balance_id: str) -> Decimal:
    return next(b.value for b in acc.all_balances() if b.id == balance_id)


async def ledger_reasons(service, account="1001"):
    return [(e.reason, e.amount) for e in await service.storage.ledger(T, account)]


@pytest.fixture
async def acc(service, real_plan):
    await service.add_balance(T, "1001", "*monetary", "10", {"ID": "main", "Weight": 10})
    return service.get(T, "1001")


async def test_unit_balance_pays_before_money(service, acc, make_req):
    await service.add_balance(T, "1001", "*voice", 60 * SECOND, {"ID": "free_min", "Weight": 20})
    plan = await service.debit(acc, make_req(90), partial=False, ref=REF)
    assert plan.usage == 90 * SECOND and plan.unit_usage == 60 * SECOND
    assert plan.cost == Decimal("0.30")  # only the 30 s the free minute did not cover
    assert value(acc, "free_min") == 0 and value(acc, "main") == Decimal("9.70")
    assert await service.audit(T, "1001") == []


async def test_units_cover_the_start_so_no_second_connect_fee(service, acc, make_req):
    """Free seconds pay the start of a 1003 call; the money part (from offset 30 s) costs what
    it adds to the call: C(120 s) - C(30 s) = 0.70 - 0.60. The call's first 30 s (connect fee
    0.4 and the 60 s first-group increment 0.2, which runs to 60 s) are the units' share, so
    money pays 60 x 1 s at 0.1/min and no second connect fee."""
    await service.add_balance(T, "1001", "*voice", 30 * SECOND, {"ID": "free", "Weight": 20})
    plan = await service.debit(acc, make_req(120, "1003"), partial=False, ref=REF)
    assert plan.unit_usage == 30 * SECOND
    assert plan.cost == Decimal("0.10")
    assert value(acc, "main") == Decimal("9.90")


async def test_destination_filter_limits_a_unit_balance(service, acc, make_req):
    await service.add_balance(T, "1001", "*voice", 60 * SECOND,
                              {"ID": "to_1002", "DestinationIDs": "DST_1002", "Weight": 20})
    plan = await service.debit(acc, make_req(120, "1003"), partial=False, ref=REF)
    assert plan.unit_usage == 0 and plan.cost == Decimal("0.7")  # tutorial price, money only
    assert value(acc, "to_1002") == 60 * SECOND
    plan = await service.debit(acc, make_req(20, "10021"), partial=False, ref=REF)
    assert plan.unit_usage == 20 * SECOND and plan.cost == 0


async def test_excluded_destination_is_not_paid_by_the_balance(service, acc, make_req):
    await service.add_balance(T, "1001", "*voice", 60 * SECOND,
                              {"ID": "not_1003", "DestinationIDs": "!DST_1003", "Weight": 20})
    await service.debit(acc, make_req(60, "1003"), partial=False, ref=REF)
    assert value(acc, "not_1003") == 60 * SECOND and value(acc, "main") == Decimal("9.4")
    await service.debit(acc, make_req(10, "1002"), partial=False, ref=REF)
    assert value(acc, "not_1003") == 50 * SECOND


async def test_category_filter(service, acc, make_req):
    await service.add_balance(T, "1001", "*voice", 60 * SECOND,
                              {"ID": "premium_only", "Categories": "premium", "Weight": 20})
    plan = await service.debit(acc, make_req(10), partial=False, ref=REF)
    assert plan.unit_usage == 0 and value(acc, "premium_only") == 60 * SECOND
    plan = service.plan_debit(acc, make_req(10, category="premium"), partial=False)
    assert plan.unit_usage == 10 * SECOND


async def test_heavier_monetary_balance_is_spent_first(service, acc, make_req):
    await service.add_balance(T, "1001", "*monetary", "0.2", {"ID": "bonus", "Weight": 20})
    plan = await service.debit(acc, make_req(60), partial=False, ref=REF)
    assert [(p.balance_id, p.amount) for p in plan.parts] == [("bonus", Decimal("0.2")),
                                                              ("main", Decimal("0.40"))]
    assert value(acc, "bonus") == 0 and value(acc, "main") == Decimal("9.60")


async def test_expired_balance_is_skipped(service, acc, make_req):
    start = make_req(0).start
    await service.set_balance(T, "1001", "*monetary", "100",
                              {"ID": "old", "Weight": 50, "ExpiryTime": (start - timedelta(days=1)).isoformat()})
    await service.set_balance(T, "1001", "*monetary", "1",
                              {"ID": "later", "Weight": 40, "ExpiryTime": (start + timedelta(days=1)).isoformat()})
    plan = await service.debit(acc, make_req(30), partial=False, ref=REF)
    assert [p.balance_id for p in plan.parts] == ["later"]
    assert value(acc, "old") == 100
    # the credit counted for partial grants ignores the expired 100 too: 0.7 + 10 left
    grant = service.plan_debit(acc, make_req(3600), partial=True)
    assert grant.usage == 1070 * SECOND and grant.reason == "INSUFFICIENT_CREDIT"


async def test_monetary_filters_blocker_and_disabled_money_decide_who_pays(service, acc, make_req):
    """Money for another destination or category (the plan rates only "call"), or disabled,
    does not pay; a monetary blocker pays what it can and stops the fall-through to lighter
    balances ("main", 10.00, is never reached)."""
    await service.add_balance(T, "1001", "*monetary", "5", {"ID": "intl", "Weight": 50,
                                                            "DestinationIDs": "DST_49"})
    await service.add_balance(T, "1001", "*monetary", "5", {"ID": "premium", "Weight": 40,
                                                            "Categories": "premium"})
    await service.add_balance(T, "1001", "*monetary", "5", {"ID": "off", "Weight": 35,
                                                            "Disabled": True})
    await service.add_balance(T, "1001", "*monetary", "0.05", {"ID": "capped", "Weight": 30,
                                                               "Blocker": True})
    plan = service.plan_debit(acc, make_req(60), partial=True)
    assert (plan.usage, plan.cost, plan.reason) == (5 * SECOND, Decimal("0.05"), "INSUFFICIENT_CREDIT")
    assert [(p.balance_id, p.amount) for p in plan.parts] == [("capped", Decimal("0.05"))]
    plan = service.plan_debit(acc, make_req(60, "4930"), partial=False)
    assert [(p.balance_id, p.amount) for p in plan.parts] == [("intl", Decimal("0.60"))]


async def test_insufficient_credit_debits_nothing(service, acc, make_req):
    await service.add_balance(T, "1001", "*voice", 30 * SECOND, {"ID": "free", "Weight": 20})
    before = await ledger_reasons(service)
    with pytest.raises(ChargingError) as err:
        await service.debit(acc, make_req(1200), partial=False, ref=REF)  # 11.70 > 10
    assert err.value.code == "INSUFFICIENT_CREDIT"
    assert value(acc, "free") == 30 * SECOND and value(acc, "main") == 10  # no half debit
    assert await ledger_reasons(service) == before


async def test_partial_grants_what_the_credit_buys(service, acc, make_req):
    await service.debit_balance(T, "1001", "*monetary", "9.75", {"ID": "main"})
    plan = await service.debit(acc, make_req(60), partial=True, ref=REF)
    assert (plan.usage, plan.cost, plan.reason) == (25 * SECOND, Decimal("0.25"), "INSUFFICIENT_CREDIT")
    assert value(acc, "main") == 0
    plan = await service.debit(acc, make_req(60, offset_s=25), partial=True, ref=REF)
    assert (plan.usage, plan.reason, plan.parts) == (0, "INSUFFICIENT_CREDIT", [])


async def test_unknown_destination(service, acc, make_req):
    plan = service.plan_debit(acc, make_req(60, "999"), partial=True)
    assert plan.usage == 0 and plan.reason == "UNAUTHORIZED_DESTINATION"
    with pytest.raises(ChargingError) as err:
        await service.debit(acc, make_req(60, "999"), partial=False, ref=REF)
    assert err.value.code == "UNAUTHORIZED_DESTINATION"
    assert value(acc, "main") == 10


async def test_allow_negative_goes_below_zero_on_the_top_balance(service, real_plan, make_req):
    await service.set_account(T, "neg", allow_negative=True)
    acc = service.get(T, "neg")
    plan = await service.debit(acc, make_req(60), partial=False, ref=REF)
    assert [(p.balance_id, p.amount, p.create) for p in plan.parts] == [("*default", Decimal("0.60"), True)]
    assert money(acc) == Decimal("-0.60")
    await service.add_balance(T, "neg", "*monetary", "0.5", {"ID": "*default"})
    await service.debit(acc, make_req(20), partial=False, ref=REF)
    assert money(acc) == Decimal("-0.30")
    assert service.plan_debit(acc, make_req(3600), partial=True).usage == 3600 * SECOND
    assert await service.audit(T, "neg") == []


async def test_debt_on_one_balance_is_paid_before_another_balance_buys_usage(service, acc, make_req):
    """main owes 0.50 (a settled call went beyond the credit), 'extra' holds 0.10: the account's
    money is net -0.40, so no new usage; once 'extra' makes the net positive, only that net is
    spendable (0.01/s to 1002)."""
    await service.set_balance(T, "1001", "*monetary", "-0.5", {"ID": "main"})
    await service.add_balance(T, "1001", "*monetary", "0.1", {"ID": "extra", "Weight": 20})
    grant = service.plan_debit(acc, make_req(600), partial=True)
    assert (grant.usage, grant.cost, grant.parts, grant.reason) == (0, 0, [], "INSUFFICIENT_CREDIT")
    with pytest.raises(ChargingError) as err:
        await service.debit(acc, make_req(5), partial=False, ref=REF)
    assert err.value.code == "INSUFFICIENT_CREDIT"
    assert (value(acc, "main"), value(acc, "extra")) == (Decimal("-0.5"), Decimal("0.1"))
    await service.add_balance(T, "1001", "*monetary", "0.5", {"ID": "extra", "Weight": 20})
    plan = await service.debit(acc, make_req(600), partial=True, ref=REF)     # net 0.10
    assert (plan.usage, plan.cost) == (10 * SECOND, Decimal("0.10"))
    assert (value(acc, "main"), value(acc, "extra")) == (Decimal("-0.5"), Decimal("0.5"))
    assert money(acc) == 0
    assert await service.audit(T, "1001") == []


async def test_allow_negative_account_in_debt_still_gets_usage(service, real_plan, make_req):
    await service.set_account(T, "neg", allow_negative=True)
    await service.set_balance(T, "neg", "*monetary", "-5", {"ID": "*default"})
    acc = service.get(T, "neg")
    assert service.plan_debit(acc, make_req(60), partial=True).usage == 60 * SECOND


async def test_disabled_account_cannot_be_charged(service, acc, make_req):
    await service.set_account(T, "1001", disabled=True)
    with pytest.raises(ChargingError) as err:
        await service.debit(acc, make_req(10), partial=True, ref=REF)
    assert err.value.code == "ACCOUNT_DISABLED"
    assert value(acc, "main") == 10


async def test_unknown_account(service, real_plan, make_req):
    from engine.accounts import Account

    with pytest.raises(ChargingError) as err:
        await service.debit(Account(T, "ghost"), make_req(10), partial=True, ref=REF)
    assert err.value.code == "ACCOUNT_NOT_FOUND"


async def test_data_and_sms_unit_balances(service, acc, make_req):
    await service.add_balance(T, "1001", "*data", 1_048_576, {"ID": "1MiB"})
    await service.add_balance(T, "1001", "*sms", 10, {"ID": "sms"})
    plan = await service.debit(acc, make_req(0, tor="*data", units=600_000), partial=False, ref=REF)
    assert plan.usage == 600_000 and plan.cost == 0
    await service.debit(acc, make_req(0, tor="*sms", units=1), partial=False, ref=REF)
    assert value(acc, "1MiB") == 448_576 and value(acc, "sms") == 9


async def test_blocker_balance_stops_fall_through_to_money(service, acc, make_req):
    await service.add_balance(T, "1001", "*voice", 30 * SECOND, {"ID": "bundle", "Weight": 20, "Blocker": True})
    plan = await service.debit(acc, make_req(60), partial=True, ref=REF)
    assert (plan.usage, plan.reason) == (30 * SECOND, "INSUFFICIENT_CREDIT")
    assert value(acc, "main") == 10


# --- settle: exact charge at terminate ---------------------------------------------------------

async def reserve(service, acc, make_req, slices, dest="1002"):
    charged = []
    offset = 0
    for seconds in slices:
        plan = await service.debit(acc, make_req(seconds, dest, offset_s=offset,
                                                 start=make_req(0).start + timedelta(seconds=offset)),
                                   partial=False, ref=REF)
        charged.extend(plan.parts)
        offset += seconds
    return charged


async def test_settle_refunds_the_unused_reservation(service, acc, make_req):
    charged = await reserve(service, acc, make_req, [30, 30, 30])
    assert value(acc, "main") == Decimal("9.10")
    result = await service.settle(acc, make_req(70), charged, REF)
    assert result.cost == Decimal("0.70") and result.refunded == Decimal("0.20") and result.debited == 0
    assert value(acc, "main") == Decimal("9.30")
    reasons = [r for r, _ in await ledger_reasons(service)]
    assert reasons == ["topup", "session_debit", "session_debit", "session_debit", "refund"]
    assert await service.audit(T, "1001") == []


async def test_settle_debits_usage_beyond_the_reservation(service, acc, make_req):
    charged = await reserve(service, acc, make_req, [30])
    result = await service.settle(acc, make_req(45), charged, REF)
    assert (result.debited, result.refunded) == (Decimal("0.15"), 0)
    assert value(acc, "main") == Decimal("9.55")


async def test_settle_rounds_the_whole_call_not_each_slice(service, acc, make_req):
    """RT_20CNT: two 60 s slices cost 0.6 + 0.1; a 61 s call costs 0.6 + 0.1/60 -> 0.6017."""
    charged = await reserve(service, acc, make_req, [60, 60], dest="1003")
    assert value(acc, "main") == Decimal("9.3")
    result = await service.settle(acc, make_req(61, "1003"), charged, REF)
    assert result.cost == Decimal("0.6017")
    assert value(acc, "main") == Decimal("10") - Decimal("0.6017")
    assert await service.audit(T, "1001") == []


async def test_settle_gives_back_unused_free_seconds_first_to_money(service, acc, make_req):
    await service.add_balance(T, "1001", "*voice", 60 * SECOND, {"ID": "free", "Weight": 20})
    charged = await reserve(service, acc, make_req, [90])  # 60 free seconds + 0.30
    result = await service.settle(acc, make_req(40), charged, REF)
    assert result.refunded == Decimal("0.30")
    assert value(acc, "free") == 20 * SECOND and value(acc, "main") == 10


async def test_settle_charges_consumed_usage_even_beyond_credit(service, acc, make_req):
    """The call already happened: the overrun becomes debt, it is not lost."""
    await service.debit_balance(T, "1001", "*monetary", "9.5", {"ID": "main"})
    charged = await reserve(service, acc, make_req, [50])
    result = await service.settle(acc, make_req(60), charged, REF)
    assert result.debited == Decimal("0.10") and value(acc, "main") == Decimal("-0.10")


async def test_settle_sees_other_sessions_debits(service, acc, make_req):
    first = await reserve(service, acc, make_req, [60])
    second = await reserve(service, acc, make_req, [60])
    await service.settle(acc, make_req(10), first, REF)
    await service.settle(acc, make_req(60), second, REF)
    assert value(acc, "main") == Decimal("9.30")


async def test_settle_hands_its_exact_plan_to_extra_ops_for_in_the_same_commit(service, storage, acc, make_req):
    """The terminate's CDR is built from the settle's own plan and commits with it."""
    charged = await reserve(service, acc, make_req, [30, 30, 30])
    seen = []

    def ops_for(plan):
        seen.append(plan)
        return [MarkProcessed("cdr:call-1", str(plan.cost))]

    result = await service.settle(acc, make_req(70), charged, REF, extra_ops_for=ops_for)
    assert [p.cost for p in seen] == [Decimal("0.70")] and seen[0] is result.plan
    assert Decimal(await storage.get_processed("cdr:call-1")) == Decimal("0.70")
    assert value(acc, "main") == Decimal("9.30")


async def test_settle_applies_nothing_when_extra_ops_for_fails(service, acc, make_req):
    charged = await reserve(service, acc, make_req, [30])

    def broken(plan):
        raise ChargingError("SERVER_ERROR", reason="cdr could not be built")

    with pytest.raises(ChargingError):
        await service.settle(acc, make_req(10), charged, REF, extra_ops_for=broken)
    assert value(acc, "main") == Decimal("9.70")
    assert await service.audit(T, "1001") == []


def test_plan_settle_is_pure_and_matches_settle(service, acc, make_req):
    before = value(acc, "main")
    plan = service.plan_settle(acc, make_req(61, "1003"), [])
    assert plan.cost == Decimal("0.6017") and value(acc, "main") == before


async def test_plan_settle_gives_back_on_a_what_if_copy_only(service, acc, make_req):
    """The earlier charges are given back for the pricing only: the live balances keep
    their values, and the plan pays from the balances as they would be after the refund."""
    await service.add_balance(T, "1001", "*voice", 60 * SECOND, {"ID": "free", "Weight": 20})
    charged = await reserve(service, acc, make_req, [90])  # 60 free seconds + 0.30
    plan = service.plan_settle(acc, make_req(80), charged)
    assert (value(acc, "free"), value(acc, "main")) == (0, Decimal("9.70"))
    assert plan.unit_usage == 60 * SECOND and plan.cost == Decimal("0.20")
    assert {p.balance_id: p.amount for p in plan.parts} == {"free": 60 * SECOND, "main": Decimal("0.20")}


# --- plan once, debit that plan -----------------------------------------------------------------

async def test_debit_applies_the_plan_made_for_it(service, acc, make_req):
    """A session sizes its grant with plan_debit, then debits that very plan (no second pricing)."""
    req = make_req(30)
    plan = service.plan_debit(acc, req, partial=True)
    done = await service.debit(acc, req, partial=True, ref=REF, plan=plan)
    assert done is plan and done.cost == Decimal("0.30")
    assert value(acc, "main") == Decimal("9.70")
    assert await service.audit(T, "1001") == []


async def test_the_ledger_row_names_the_balance_the_session_and_the_grant(service, acc, make_req):
    main = next(b for b in acc.all_balances() if b.id == "main")
    await service.debit(acc, make_req(30), partial=True,
                        ref=LedgerRef("session debit", "cg-7", "*default", "debit:1:30000000000"))
    row = (await service.storage.ledger(T, "1001"))[-1]
    assert (row.tenant, row.account, row.balance_uuid, row.balance_id, row.balance_type) == (
        T, "1001", main.uuid, "main", "*monetary")
    assert (row.amount, row.value_after, row.reason) == (Decimal("-0.30"), Decimal("9.70"), "session debit")
    assert (row.cgrid, row.run_id, row.ref) == ("cg-7", "*default", "debit:1:30000000000")
    assert row.ts == make_req(0).start  # the service clock of the fixture


async def test_a_plan_made_before_another_debit_is_planned_again(service, acc, make_req):
    """Another session spent the money in between: the stale plan (10 s for 0.10) must not be
    applied; the debit grants only what the 0.05 left buys."""
    req = make_req(10)
    stale = service.plan_debit(acc, req, partial=True)
    assert stale.usage == 10 * SECOND
    await service.debit(acc, make_req(995), partial=False, ref=REF)
    done = await service.debit(acc, req, partial=True, ref=REF, plan=stale)
    assert done is not stale
    assert (done.usage, done.cost) == (5 * SECOND, Decimal("0.05"))
    assert value(acc, "main") == 0
    assert await service.audit(T, "1001") == []


async def test_a_plan_for_another_request_is_planned_again(service, acc, make_req):
    other = service.plan_debit(acc, make_req(60), partial=True)
    done = await service.debit(acc, make_req(20), partial=True, ref=REF, plan=other)
    assert (done.usage, done.cost) == (20 * SECOND, Decimal("0.20"))
    assert value(acc, "main") == Decimal("9.80")


async def test_a_plan_made_before_a_topup_is_planned_again(service, acc, make_req):
    """Not only debits: any change (here a top-up that lifts a short grant) re-plans."""
    await service.debit_balance(T, "1001", "*monetary", "9.95", {"ID": "main"})
    req = make_req(10)
    short = service.plan_debit(acc, req, partial=True)
    assert short.usage == 5 * SECOND
    await service.add_balance(T, "1001", "*monetary", "1", {"ID": "main"})
    done = await service.debit(acc, req, partial=True, ref=REF, plan=short)
    assert (done.usage, done.cost) == (10 * SECOND, Decimal("0.10"))
    assert value(acc, "main") == Decimal("0.95")


# --- concurrency -------------------------------------------------------------------------------

async def test_concurrent_debits_never_overspend(service, acc, make_req):
    """100 sessions at once on a 1.00 balance, each asking 10 s (0.10): exactly 10 win."""
    await service.debit_balance(T, "1001", "*monetary", "9", {"ID": "main"})
    results = await asyncio.gather(
        *(service.debit(acc, make_req(10), partial=False, ref=LedgerRef("session_debit", f"c{i}"))
          for i in range(100)), return_exceptions=True)
    won = [r for r in results if not isinstance(r, Exception)]
    lost = [r for r in results if isinstance(r, ChargingError)]
    assert len(won) == 10 and len(lost) == 90
    assert all(e.code == "INSUFFICIENT_CREDIT" for e in lost)
    assert sum(p.cost for p in won) == Decimal("1.00") and value(acc, "main") == 0
    assert await service.audit(T, "1001") == []


async def test_concurrent_partial_debits_split_the_last_cent_exactly(service, acc, make_req):
    await service.debit_balance(T, "1001", "*monetary", "9.05", {"ID": "main"})
    commits = service.storage.stats.transactions
    results = await asyncio.gather(*(service.debit(acc, make_req(30), partial=True, ref=REF)
                                     for _ in range(100)))
    assert service.storage.stats.transactions - commits < 10  # group commit: shared fsyncs
    assert sum(r.cost for r in results) == Decimal("0.95")
    assert sum(r.usage for r in results) == 95 * SECOND
    assert value(acc, "main") == 0


async def test_zero_rating_subject_consumes_whole_steps(service, acc, make_req):
    """*zero60s minute bundles: a 61 s call uses two whole minutes of the bundle."""
    await service.add_balance(T, "1001", "*voice", 300 * SECOND,
                              {"ID": "minutes", "RatingSubject": "*zero60s", "Weight": 20})
    plan = await service.debit(acc, make_req(61), partial=False, ref=REF)
    assert plan.usage == 61 * SECOND and plan.cost == 0
    assert value(acc, "minutes") == 180 * SECOND
    # 150 s left in steps of 60 s: 2 whole steps (120 s) pay for the start, money for the rest
    await service.set_balance(T, "1001", "*voice", 150 * SECOND, {"ID": "minutes"})
    plan = await service.debit(acc, make_req(130), partial=False, ref=REF)
    assert plan.unit_usage == 120 * SECOND and plan.cost == Decimal("0.10")
    assert value(acc, "minutes") == 30 * SECOND


async def test_timed_balance_pays_only_while_its_timing_is_active(service, acc, make_req):
    """Weekend minutes (TimingIDs WEEKEND = Sat/Sun) and evening minutes (from 18:00)."""
    from datetime import datetime, timezone

    await service.add_balance(T, "1001", "*voice", 600 * SECOND,
                              {"ID": "weekend", "TimingIDs": "WEEKEND", "Weight": 20})
    await service.add_balance(T, "1001", "*voice", 600 * SECOND,
                              {"ID": "evening", "TimingIDs": "EVENING", "Weight": 30})
    monday_noon = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
    saturday_noon = datetime(2026, 3, 7, 12, 0, tzinfo=timezone.utc)
    monday_evening = datetime(2026, 3, 2, 19, 0, tzinfo=timezone.utc)
    assert service.plan_debit(acc, make_req(60, start=monday_noon), partial=False).unit_usage == 0
    weekend = service.plan_debit(acc, make_req(60, start=saturday_noon), partial=False)
    assert [p.balance_id for p in weekend.parts] == ["weekend"]
    evening = service.plan_debit(acc, make_req(60, start=monday_evening), partial=False)
    assert [p.balance_id for p in evening.parts] == ["evening"]


async def test_negative_usage_is_refused(service, acc, make_req):
    with pytest.raises(ChargingError) as err:
        await service.debit(acc, make_req(-5), partial=True, ref=REF)
    assert err.value.code == "INVALID_ARGUMENT" and value(acc, "main") == 10
