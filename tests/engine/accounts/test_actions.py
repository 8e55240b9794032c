"""Tariff-plan accounts and actions: AccountActions create accounts, *asap plans top them up
once per explicit load, triggers recharge low balances, multi-action runs are all or nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.accounts import AccountService
from engine.errors import ChargingError
from tests.engine.accounts.conftest import T0

SECOND = 10**9
T = "cgrates.org"


def balances(acc) -> dict[str, Decimal]:
    return {f"{b.type}:{b.id}": b.value for b in acc.all_balances()}


async def test_apply_tariffplan_creates_accounts_and_runs_asap_actions(service, real_plan):
    assert await service.apply_tariffplan(real_plan) == 3
    one = service.get(T, "1001")
    assert balances(one) == {"*monetary:main": 10, "*voice:free_min": 60 * SECOND}
    free = next(b for b in one.all_balances() if b.id == "free_min")
    assert free.destination_ids == {"DST_1002"} and free.weight == 20 and free.expiry is None
    three = service.get(T, "1003")
    assert three.allow_negative is True and balances(three) == {}  # *monthly is not *asap
    assert [t.id for t in service.get(T, "1002").action_triggers] == ["TR_LOW"]
    reasons = [(e.reason, e.amount) for e in await service.storage.ledger(T, "1001")]
    assert sorted(reasons) == [("topup_reset", Decimal(10)), ("topup_reset", Decimal(60 * SECOND))]


async def test_restart_does_not_rerun_the_plan(service, storage, real_plan, rater_box):
    """The plan's *asap actions run on the explicit load only, never on a restart."""
    await service.apply_tariffplan(real_plan)
    await service.debit_balance(T, "1001", "*monetary", "4", {"ID": "main"})
    again = AccountService(storage, lambda: rater_box["rater"])
    await again.start()
    assert balances(again.get(T, "1001"))["*monetary:main"] == Decimal(6)
    assert await again.audit(T, "1001") == []


async def test_min_balance_trigger_recharges_on_every_descent(service, real_plan):
    await service.apply_tariffplan(real_plan)
    await service.debit_balance(T, "1002", "*monetary", "8.5", {"ID": "main"})
    acc = service.get(T, "1002")
    assert balances(acc)["*monetary:main"] == Decimal("6.5")  # 1.5 <= 2 -> ACT_RECHARGE +5
    await service.debit_balance(T, "1002", "*monetary", "5", {"ID": "main"})
    assert balances(acc)["*monetary:main"] == Decimal("6.5")  # re-armed by the top-up, fired again
    rows = await service.storage.ledger(T, "1002")
    fired = [e for e in rows if e.ref == "trigger:TR_LOW"]
    assert [(e.reason, e.amount) for e in fired] == [("topup", Decimal(5))] * 2
    assert await service.audit(T, "1002") == []


async def test_trigger_state_survives_restart(service, storage, real_plan, rater_box):
    await service.apply_tariffplan(real_plan)
    await service.set_balance(T, "1002", "*monetary", "1", {"ID": "main"})
    acc = service.get(T, "1002")
    assert balances(acc)["*monetary:main"] == Decimal(6)
    again = AccountService(storage, lambda: rater_box["rater"])
    await again.start()
    [trigger] = again.get(T, "1002").action_triggers
    assert trigger.threshold_value == 2 and trigger.actions_id == "ACT_RECHARGE"
    assert (trigger.executed, trigger.last_executed) == (False, T0)  # fired, re-armed by its top-up
    await service.set_balance(T, "1002", "*monetary", "-10", {"ID": "main"})  # fires; -5 stays low
    again = AccountService(storage, lambda: rater_box["rater"])
    await again.start()
    [trigger] = again.get(T, "1002").action_triggers
    assert (trigger.executed, trigger.last_executed) == (True, T0)
    await service.set_balance(T, "1002", "*monetary", "7", {"ID": "main"})  # above 2: re-armed
    again = AccountService(storage, lambda: rater_box["rater"])
    await again.start()
    [trigger] = again.get(T, "1002").action_triggers
    assert (trigger.executed, trigger.last_executed) == (False, T0)


async def test_multi_action_run_is_all_or_nothing(service, real_plan):
    await service.apply_tariffplan(real_plan)
    rows_before = len(await service.storage.ledger(T, "1001"))
    with pytest.raises(ChargingError) as err:
        await service.execute_actions(T, "1001", "ACT_TWO")  # +3 then -1000: refused
    assert err.value.code == "INSUFFICIENT_CREDIT"
    assert balances(service.get(T, "1001"))["*monetary:main"] == 10
    assert len(await service.storage.ledger(T, "1001")) == rows_before


async def test_execute_actions_runs_in_weight_order(service, real_plan):
    await service.apply_tariffplan(real_plan)
    await service.set_account(T, "1003", allow_negative=True)
    await service.execute_actions(T, "1003", "ACT_TWO")
    assert balances(service.get(T, "1003")) == {"*monetary:main": Decimal(-997)}
    reasons = [e.reason for e in await service.storage.ledger(T, "1003")]
    assert reasons == ["topup", "debit"]


async def test_disable_and_enable_actions(service, real_plan, make_req):
    await service.apply_tariffplan(real_plan)
    await service.execute_actions(T, "1001", "ACT_OFF")
    acc = service.get(T, "1001")
    assert acc.disabled
    with pytest.raises(ChargingError, match="ACCOUNT_DISABLED"):
        service.plan_debit(acc, make_req(10), partial=True)
    await service.execute_actions(T, "1001", "ACT_LOG")  # *log changes nothing
    assert balances(acc)["*monetary:main"] == 10


async def test_unknown_actions_and_plans_are_not_found(service, real_plan):
    await service.apply_tariffplan(real_plan)
    with pytest.raises(ChargingError) as err:
        await service.execute_actions(T, "1001", "NO_SUCH")
    assert err.value.code == "NOT_FOUND"
    with pytest.raises(ChargingError) as err:
        await service.set_account(T, "new", action_plan_id="NO_PLAN")
    assert err.value.code == "NOT_FOUND"
    assert service.get(T, "new") is None
    with pytest.raises(ChargingError) as err:
        await service.execute_actions(T, "ghost", "ACT_LOG")
    assert err.value.code == "ACCOUNT_NOT_FOUND"


async def test_set_account_with_action_plan_runs_it_now(service, real_plan):
    acc = await service.set_account(T, "2001", action_plan_id="AP_PACKAGE",
                                    action_triggers_id="TR_LOW")
    assert balances(acc) == {"*monetary:main": 10, "*voice:free_min": 60 * SECOND}
    assert [t.unique_id for t in acc.action_triggers] == ["low"]


async def test_recurrent_trigger_fires_once_per_change_while_below(service, real_plan):
    await service.set_account(T, "r", action_triggers_id="TR_EVERY")
    await service.add_balance(T, "r", "*monetary", 10, {"ID": "main"})
    for _ in range(3):  # each debit leaves main <= 5: ACT_CENT adds 0.01 once per debit
        await service.debit_balance(T, "r", "*monetary", 2, {"ID": "main"})
    # 10 - 2 = 8 (above), 8 - 2 = 6 (above), 6 - 2 = 4 (below: +0.01)
    assert balances(service.get(T, "r"))["*monetary:main"] == Decimal("4.01")
    await service.debit_balance(T, "r", "*monetary", 1, {"ID": "main"})
    assert balances(service.get(T, "r"))["*monetary:main"] == Decimal("3.02")


async def test_recurrent_trigger_respects_min_sleep(service, real_plan):
    await service.set_account(T, "s", action_triggers_id="TR_SLEEPY")
    await service.add_balance(T, "s", "*monetary", 4, {"ID": "main"})  # fires: 4.01
    await service.debit_balance(T, "s", "*monetary", 1, {"ID": "main"})  # same instant: asleep
    assert balances(service.get(T, "s"))["*monetary:main"] == Decimal("3.01")


async def test_a_failing_account_action_loads_no_account_at_all(service, real_plan):
    import dataclasses

    from engine.tariffplan.model import AccountAction, ActionPlan

    bad = dataclasses.replace(
        real_plan,
        action_plans={**real_plan.action_plans, "AP_BAD": (ActionPlan("AP_BAD", "ACT_TWO", "*asap", Decimal(10)),)},
        account_actions={**real_plan.account_actions,
                         "cgrates.org:bad": AccountAction("cgrates.org", "bad", "AP_BAD", "", False, False)})
    with pytest.raises(ChargingError) as err:
        await service.apply_tariffplan(bad)
    assert err.value.code == "INSUFFICIENT_CREDIT"
    assert service.accounts() == [] and await service.storage.load_accounts() == []


async def test_triggers_show_in_the_v2_account(service, real_plan):
    from engine.accounts import account_to_v2

    await service.apply_tariffplan(real_plan)
    [trigger] = account_to_v2(service.get(T, "1002"))["ActionTriggers"]
    assert trigger["ID"] == "TR_LOW" and trigger["ThresholdType"] == "*min_balance"
    assert trigger["ThresholdValue"] == 2 and trigger["ActionsID"] == "ACT_RECHARGE"
    assert trigger["Balance"]["ID"] == "main" and trigger["Executed"] is False


async def test_outside_actions_are_skipped_and_remove_balance_closes_it(service, real_plan):
    await service.apply_tariffplan(real_plan)
    await service.execute_actions(T, "1001", "ACT_WITH_CDRLOG")  # *cdrlog skipped, top-up applied
    assert balances(service.get(T, "1001"))["*monetary:main"] == 11
    await service.execute_actions(T, "1001", "ACT_REMOVE")
    assert "*monetary:main" not in balances(service.get(T, "1001"))
    last = (await service.storage.ledger(T, "1001"))[-1]
    assert (last.reason, last.amount, last.value_after) == ("remove_balance", Decimal(-11), 0)
    assert await service.audit(T, "1001") == []
