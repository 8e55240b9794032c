"""The balance API (AddBalance/DebitBalance/SetBalance/SetAccount/RemoveAccount): CGRateS errors
for bad input, nothing half-applied, everything in the ledger, state survives a restart."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from engine.accounts import AccountService, account_to_v1_legacy, account_to_v2
from engine.errors import ChargingError

T = "cgrates.org"
SECOND = 10**9


def main_value(service, account="1001") -> Decimal:
    return next(b.value for b in service.get(T, account).all_balances() if b.id == "main")


async def test_add_balance_creates_account_and_balance(service):
    b = await service.add_balance(T, "1001", "*monetary", 10, {"ID": "main", "Weight": 10})
    assert b.value == 10 and b.id == "main" and b.uuid
    await service.add_balance(T, "1001", "*monetary", "2.5", {"ID": "main"})
    assert main_value(service) == Decimal("12.5")
    await service.add_balance(T, "1001", "*monetary", "-1", {"ID": "main"})  # CGRateS: absolute value
    assert main_value(service) == Decimal("13.5")
    await service.add_balance(T, "1001", "*monetary", 4, {"ID": "main"}, overwrite=True)
    assert main_value(service) == 4
    rows = await service.storage.ledger(T, "1001")
    assert [(e.reason, e.amount, e.value_after) for e in rows] == [
        ("topup", Decimal(10), Decimal(10)), ("topup", Decimal("2.5"), Decimal("12.5")),
        ("topup", Decimal(1), Decimal("13.5")), ("topup_reset", Decimal("-9.5"), Decimal(4))]


@pytest.mark.parametrize("value", [0, "0", "", None, "0.000"])
async def test_zero_value_is_mandatory_missing(service, value):
    for call in (service.add_balance, service.debit_balance):
        with pytest.raises(ChargingError) as err:
            await call(T, "1001", "*monetary", value, {"ID": "main"})
        assert str(err.value) == "MANDATORY_IE_MISSING: [Value]"
    assert service.get(T, "1001") is None


async def test_missing_account_and_type_are_mandatory(service):
    with pytest.raises(ChargingError, match=r"^MANDATORY_IE_MISSING: \[Account\]$"):
        await service.add_balance(T, "", "*monetary", 1)
    with pytest.raises(ChargingError, match=r"^MANDATORY_IE_MISSING: \[BalanceType\]$"):
        await service.add_balance(T, "1001", "", 1)
    assert service.get(T, "1001") is None


async def test_bad_value_is_invalid_argument(service):
    with pytest.raises(ChargingError) as err:
        await service.add_balance(T, "1001", "*monetary", "ten")
    assert err.value.code == "INVALID_ARGUMENT"


async def test_debit_balance_refuses_to_overdraw(service):
    with pytest.raises(ChargingError) as err:
        await service.debit_balance(T, "1001", "*monetary", 1, {"ID": "main"})
    assert err.value.code == "ACCOUNT_NOT_FOUND"
    await service.add_balance(T, "1001", "*monetary", 5, {"ID": "main"})
    with pytest.raises(ChargingError) as err:
        await service.debit_balance(T, "1001", "*monetary", "5.01", {"ID": "main"})
    assert err.value.code == "INSUFFICIENT_CREDIT"
    assert main_value(service) == 5
    await service.debit_balance(T, "1001", "*monetary", 5, {"ID": "main"})
    assert main_value(service) == 0
    await service.set_account(T, "1001", allow_negative=True)
    await service.debit_balance(T, "1001", "*monetary", 2, {"ID": "main"})
    assert main_value(service) == -2
    assert await service.audit(T, "1001") == []


async def test_set_balance_needs_an_id_and_accepts_zero(service):
    with pytest.raises(ChargingError) as err:
        await service.set_balance(T, "1001", "*monetary", 5, {})
    assert str(err.value) == "MANDATORY_IE_MISSING: [BalanceID or BalanceUUID]"
    await service.set_balance(T, "1001", "*monetary", 5, {"ID": "main", "Weight": 30,
                                                          "DestinationIDs": "DST_1;!DST_2"})
    b = await service.set_balance(T, "1001", "*monetary", 0, {"ID": "main"})
    assert b.value == 0 and b.weight == 30 and b.destination_ids == {"DST_1", "!DST_2"}
    by_uuid = await service.set_balance(T, "1001", "*monetary", 7, {"UUID": b.uuid})
    assert by_uuid is b and b.value == 7


async def test_remove_account(service):
    with pytest.raises(ChargingError) as err:
        await service.remove_account(T, "1001")
    assert err.value.code == "NOT_FOUND"
    await service.add_balance(T, "1001", "*monetary", 3, {"ID": "main"})
    await service.remove_account(T, "1001")
    assert service.get(T, "1001") is None
    assert await service.storage.load_accounts() == []
    rows = await service.storage.ledger(T, "1001")  # history stays, closed at zero
    assert [(e.reason, e.amount, e.value_after) for e in rows][-1] == ("remove_account", Decimal(-3), 0)


async def test_everything_survives_a_restart(service, storage):
    expiry = datetime(2027, 1, 1, tzinfo=timezone.utc)
    await service.set_account(T, "1001", allow_negative=True)
    await service.add_balance(T, "1001", "*voice", 90 * SECOND, {
        "ID": "free", "Weight": 20, "ExpiryTime": expiry.isoformat(), "DestinationIDs": "DST_1002",
        "Categories": "call;premium", "RatingSubject": "*zero1s", "Blocker": True})
    await service.add_balance(T, "1001", "*monetary", "10.123456789", {"ID": "main"})
    again = AccountService(storage, lambda: None)
    await again.start()
    assert account_to_v2(again.get(T, "1001")) == account_to_v2(service.get(T, "1001"))
    free = next(b for b in again.get(T, "1001").all_balances() if b.id == "free")
    assert (free.expiry, free.categories, free.blocker) == (expiry, {"call", "premium"}, True)


async def test_stored_rows_keep_each_balance_as_written_across_debits(service, storage):
    """Balance rows are rewritten on every debit: two weights that are equal numbers written
    differently (10 and 10.0) keep their own text, and the stored rows after the debits are
    those a restart loads back exactly."""
    await service.add_balance(T, "1001", "*monetary", 5, {"ID": "a", "Weight": "10"})
    await service.add_balance(T, "1001", "*monetary", 5, {"ID": "b", "Weight": "10.0"})
    await service.add_balance(T, "1001", "*monetary", 5, {"ID": "c", "Weight": "10.0",
                                                          "DestinationIDs": "DST_2;DST_1"})
    for _ in range(2):
        for balance_id in "abc":
            await service.debit_balance(T, "1001", "*monetary", 1, {"ID": balance_id})
    [stored] = await storage.load_accounts()
    data = {b.id: json.loads(b.data) for b in stored.balances}
    assert data == {"a": {"weight": "10"}, "b": {"weight": "10.0"},
                    "c": {"weight": "10.0", "destination_ids": ["DST_1", "DST_2"]}}
    assert json.loads(stored.account.data) == {"update_time": "2026-03-02T10:00:00Z"}
    again = AccountService(storage, lambda: None)
    await again.start()
    assert account_to_v2(again.get(T, "1001")) == account_to_v2(service.get(T, "1001"))
    assert {b.id: (b.value, str(b.weight)) for b in again.get(T, "1001").all_balances()} == {
        "a": (Decimal(3), "10"), "b": (Decimal(3), "10.0"), "c": (Decimal(3), "10.0")}


async def test_audit_catches_a_tampered_balance(service, storage, tmp_path):
    await service.add_balance(T, "1001", "*monetary", 10, {"ID": "main"})
    await service.debit_balance(T, "1001", "*monetary", 3, {"ID": "main"})
    await service.add_balance(T, "1001", "*monetary", 1, {"ID": "main"})
    assert await service.audit(T, "1001") == []
    with sqlite3.connect(tmp_path / "chargeway.db") as conn:  # someone edits the balance by hand
        conn.execute("UPDATE balances SET value='100'")
    [mismatch] = await service.audit(T, "1001")
    assert (mismatch.kind, mismatch.derived, mismatch.actual) == ("stored", Decimal(8), Decimal(100))


async def test_cgrates_json_shapes(service):
    await service.set_account(T, "1001")
    await service.add_balance(T, "1001", "*monetary", "10.5", {"ID": "main", "Weight": 10,
                                                             "DestinationIDs": "DST_1;!DST_2"})
    await service.add_balance(T, "1001", "*voice", 60 * SECOND, {"ID": "free", "Weight": 20})
    acc = service.get(T, "1001")
    v2 = account_to_v2(acc)
    assert v2["ID"] == "cgrates.org:1001"
    assert v2["AllowNegative"] is False and v2["Disabled"] is False and v2["UnitCounters"] is None
    [main] = v2["BalanceMap"]["*monetary"]
    assert main["Value"] == 10.5 and main["ID"] == "main" and main["Weight"] == 10
    assert main["DestinationIDs"] == {"DST_1": True, "DST_2": False}
    assert main["ExpirationDate"] == "0001-01-01T00:00:00Z" and main["Factors"] is None
    assert set(main) == {"Uuid", "ID", "Value", "ExpirationDate", "Weight", "DestinationIDs",
                         "RatingSubject", "Categories", "SharedGroups", "Timings", "TimingIDs",
                         "Disabled", "Factors", "Blocker"}
    assert v2["BalanceMap"]["*voice"][0]["Value"] == 60 * SECOND  # voice in ns
    v1 = account_to_v1_legacy(acc)
    assert v1["Id"] == "*out:cgrates.org:1001"
    [legacy] = v1["BalanceMap"]["*monetary*out"]
    assert legacy["Id"] == "main" and legacy["DestinationIds"] == "!DST_2;DST_1"
    assert "Blocker" not in legacy and "UpdateTime" not in v1


async def test_a_failed_write_rolls_memory_back_to_what_is_stored(service, storage, monkeypatch):
    """If the commit fails, the caller gets SERVER_ERROR and memory forgets the change, so no
    later answer is based on money that is not on disk."""
    await service.add_balance(T, "1001", "*monetary", 10, {"ID": "main"})
    real_write = storage.write

    async def broken(ops):
        raise OSError("disk full")

    monkeypatch.setattr(storage, "write", broken)
    with pytest.raises(ChargingError) as err:
        await service.debit_balance(T, "1001", "*monetary", 4, {"ID": "main"})
    assert err.value.code == "SERVER_ERROR" and "disk full" in str(err.value)
    assert main_value(service) == 10
    with pytest.raises(ChargingError):
        await service.add_balance(T, "1002", "*monetary", 1, {"ID": "main"})
    assert service.get(T, "1002") is None
    monkeypatch.setattr(storage, "write", real_write)
    await service.debit_balance(T, "1001", "*monetary", 4, {"ID": "main"})
    assert main_value(service) == 6 and await service.audit(T, "1001") == []
