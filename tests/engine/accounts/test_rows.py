"""Storage rows of accounts: every debit rewrites them from remembered JSON pieces, so check
that the text is exactly the canonical msgspec encoding the rows always had, and that a
restart decodes the same account (trigger state, update time, balance attributes)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import msgspec
import pytest

from engine.accounts.model import (
    Account, Balance, TriggerState, _AccountData, _BalanceData, _TriggerData, account_from_rows,
    account_to_row, account_to_v2, balance_to_row,
)
from engine.units import format_time

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
CET = timezone(timedelta(hours=1))


def canonical_account_data(acc: Account) -> str:
    """How account rows were encoded before the JSON pieces were remembered."""
    return msgspec.json.encode(_AccountData(update_time=format_time(acc.update_time), action_triggers=[
        _TriggerData(id=t.id, unique_id=t.unique_id, threshold_type=t.threshold_type,
                     threshold_value=str(t.threshold_value), recurrent=t.recurrent,
                     min_sleep=t.min_sleep, balance_type=t.balance_type, balance_id=t.balance_id,
                     actions_id=t.actions_id, weight=str(t.weight),
                     balance_destination_ids=sorted(t.balance_destination_ids),
                     balance_categories=sorted(t.balance_categories), executed=t.executed,
                     last_executed=format_time(t.last_executed) if t.last_executed else "")
        for t in acc.action_triggers])).decode()


def trigger(uid: str, threshold: str, *, recurrent: bool = False, min_sleep: int = 0, **kw) -> TriggerState:
    return TriggerState(id="TR", unique_id=uid, threshold_type="*min_balance",
                        threshold_value=Decimal(threshold), recurrent=recurrent, min_sleep=min_sleep,
                        balance_type="*monetary", balance_id="", actions_id="ACT", **kw)


ACCOUNTS = {
    "no triggers": Account("t", "a", update_time=T0),
    "microseconds, two triggers": Account("t", "b", update_time=T0.replace(microsecond=120), action_triggers=[
        trigger("low", "2", weight=Decimal("10.0")),
        trigger("lower", "2.0", executed=True, last_executed=T0.astimezone(CET), recurrent=True,
                min_sleep=3_600_000_000_000, balance_destination_ids=frozenset({"DST_B", "DST_A"}),
                balance_categories=frozenset({"call"}))]),
    "non-UTC update time": Account("t", "c", update_time=T0.astimezone(CET), allow_negative=True,
                                   action_triggers=[trigger("low", "5")]),
}


@pytest.mark.parametrize("name", list(ACCOUNTS))
def test_account_row_is_the_canonical_json_and_decodes_to_the_same_account(name):
    acc = ACCOUNTS[name]
    for _ in range(2):  # the second time from the remembered pieces
        row = account_to_row(acc)
        assert row.data == canonical_account_data(acc)
    again = account_from_rows(row, [])
    assert account_to_v2(again) == account_to_v2(acc)
    assert [(t.threshold_value, t.weight, t.executed, t.last_executed) for t in again.action_triggers] == [
        (t.threshold_value, t.weight, t.executed, t.last_executed) for t in acc.action_triggers]


def test_a_trigger_state_change_is_written():
    acc = Account("t", "d", update_time=T0, action_triggers=[trigger("low", "2")])
    before = account_to_row(acc).data
    acc.action_triggers[0].executed, acc.action_triggers[0].last_executed = True, T0
    after = account_to_row(acc).data
    assert after != before and after == canonical_account_data(acc)
    assert '"executed":true' in after and '"last_executed":"2026-03-02T10:00:00Z"' in after


def test_balance_row_is_the_canonical_json():
    acc = Account("t", "e")
    b = Balance("u", "main", "*monetary", Decimal("1.5"), expiry=T0.astimezone(CET), weight=Decimal("10.0"),
                destination_ids=frozenset({"DST_2", "!DST_1"}), timing_ids=frozenset({"WEEKEND"}))
    for _ in range(2):
        row = balance_to_row(acc, b)
        assert row.data == msgspec.json.encode(_BalanceData(
            expiry=format_time(b.expiry), weight="10.0", destination_ids=["!DST_1", "DST_2"],
            timing_ids=["WEEKEND"])).decode()
    b.blocker = True  # an attribute change shows in the next row
    assert '"blocker":true' in balance_to_row(acc, b).data
