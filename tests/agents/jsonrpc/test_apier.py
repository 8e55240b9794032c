"""APIerSv1/APIerSv2/CDRsV1 over the real AccountService, Rater and SQLite storage."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agents.jsonrpc.dispatcher import CallContext
from agents.jsonrpc.service import build_dispatcher
from engine.accounts.service import AccountService
from engine.rating.rater import Rater
from engine.runtime import AgentContext
from engine.storage.base import CdrRow, InsertCdr, open_storage
from engine.tariffplan.loader import load_tariffplan
from engine.tariffplan.model import TariffPlan
from engine.units import parse_time

TP_DIR = Path(__file__).resolve().parents[2] / "integration" / "api" / "tp"


class Engine:
    """The pieces APIer needs, wired the way chargeway/app.py wires them."""

    def __init__(self, storage: Any) -> None:
        self.storage = storage
        self.rater_obj = Rater(TariffPlan())
        self.accounts = AccountService(storage, lambda: self.rater_obj)
        self.loaded: list[str] = []

    async def load(self, folder: str, *, dry_run: bool = False) -> TariffPlan:
        plan = load_tariffplan(folder)
        if not dry_run:
            self.rater_obj = Rater(plan)
            self.loaded.append(folder)
        return plan


@pytest.fixture
async def rpc(tmp_path: Path):
    storage = open_storage(tmp_path)
    await storage.open()
    engine = Engine(storage)
    await engine.accounts.start()
    ctx = AgentContext(sessions=None, accounts=engine.accounts, rater=lambda: engine.rater_obj,
                       storage=storage, config={}, root_dir=tmp_path, data_dir=tmp_path,
                       templates_dir=tmp_path, extras={"load_tariffplan": engine.load})
    dispatcher = build_dispatcher(ctx)

    async def call(method: str, param: Any) -> tuple[Any, str | None]:
        return await dispatcher.call(method, [param], CallContext())

    call.engine = engine  # type: ignore[attr-defined]
    yield call
    await storage.close()


async def test_load_tariffplan_then_get_cost(rpc) -> None:
    assert await rpc("APIerSv1.GetCost", {"Subject": "1001", "Destination": "1002", "Usage": "2m"}) == \
        (None, "SERVER_ERROR: RATING_PLAN_NOT_FOUND")
    assert await rpc("APIerSv1.LoadTariffPlanFromFolder", {"FolderPath": "/nonexistent"}) == (None, "INVALID_PATH")
    assert await rpc("APIerSv1.LoadTariffPlanFromFolder", {}) == (None, "MANDATORY_IE_MISSING: [FolderPath]")
    assert await rpc("ApierV1.LoadTariffPlanFromFolder", {"FolderPath": str(TP_DIR)}) == ("OK", None)
    cost, err = await rpc("APIerSv1.GetCost", {"Tenant": "cgrates.org", "Category": "call", "Subject": "1001",
                                               "AnswerTime": "2024-01-01T10:00:00Z", "Destination": "1002",
                                               "Usage": "2m"})
    assert err is None
    assert Decimal(str(cost["Cost"])) == Decimal("1.2") and cost["Usage"] == 120_000_000_000
    _, err = await rpc("APIerSv1.GetCost", {"Subject": "1001", "Destination": "999", "Usage": "60s"})
    assert err == "SERVER_ERROR: UNAUTHORIZED_DESTINATION"


async def test_accounts_and_balances_both_shapes(rpc) -> None:
    assert await rpc("APIerSv1.GetAccount", {"Tenant": "cgrates.org", "Account": "1001"}) == (None, "NOT_FOUND")
    assert await rpc("APIerSv1.SetAccount", {"Tenant": "cgrates.org"}) == (None, "MANDATORY_IE_MISSING: [Account]")
    assert await rpc("APIerSv1.SetAccount", {"Tenant": "cgrates.org", "Account": "1001",
                                             "ExtraOptions": {"AllowNegative": True}}) == ("OK", None)
    assert await rpc("APIerSv1.AddBalance", {"Tenant": "cgrates.org", "Account": "1001",
                                             "BalanceType": "*monetary", "Value": 10,
                                             "Balance": {"ID": "b1", "Weight": 10}}) == ("OK", None)
    assert await rpc("APIerSv1.DebitBalance", {"Tenant": "cgrates.org", "Account": "1001",
                                               "BalanceType": "*monetary", "Value": 2.5,
                                               "Balance": {"ID": "b1"}}) == ("OK", None)
    assert await rpc("APIerSv1.SetBalance", {"Tenant": "cgrates.org", "Account": "1001",
                                             "BalanceType": "*voice", "Value": 3600000000000,
                                             "Balance": {"ID": "min"}}) == ("OK", None)
    assert await rpc("APIerSv1.SetBalance", {"Account": "1001", "BalanceType": "*voice", "Value": 1}) == \
        (None, "MANDATORY_IE_MISSING: [BalanceID or BalanceUUID]")
    assert await rpc("APIerSv1.AddBalance", {"Account": "1001", "BalanceType": "*monetary", "Value": 0}) == \
        (None, "MANDATORY_IE_MISSING: [Value]")
    v2, _ = await rpc("APIerSv2.GetAccount", {"Tenant": "cgrates.org", "Account": "1001"})
    assert v2["ID"] == "cgrates.org:1001" and v2["AllowNegative"] is True
    [money] = v2["BalanceMap"]["*monetary"]
    assert money["ID"] == "b1" and money["Value"] == 7.5
    assert v2["BalanceMap"]["*voice"][0]["Value"] == 3600000000000
    v1, _ = await rpc("APIerSv1.GetAccount", {"Tenant": "cgrates.org", "Account": "1001"})
    assert v1["Id"] == "*out:cgrates.org:1001"
    assert v1["BalanceMap"]["*monetary*out"][0]["Value"] == 7.5
    listed, _ = await rpc("APIerSv2.GetAccounts", {"Tenant": "cgrates.org"})
    assert [a["ID"] for a in listed] == ["cgrates.org:1001"]
    assert await rpc("APIerSv2.GetAccounts", {"Tenant": "cgrates.org", "AccountIDs": ["nobody"]}) == (None, None)
    assert await rpc("APIerSv1.RemoveAccount", {"Tenant": "cgrates.org", "Account": "1001"}) == ("OK", None)
    assert await rpc("APIerSv2.GetAccount", {"Tenant": "cgrates.org", "Account": "1001"}) == (None, "NOT_FOUND")


async def test_wrong_types_are_named(rpc) -> None:
    _, err = await rpc("APIerSv1.AddBalance", {"Account": "1001", "BalanceType": "*monetary", "Value": "ten"})
    assert err.startswith("INVALID_ARGUMENT") and "ten" in err
    _, err = await rpc("APIerSv1.SetAccount", {"Account": "1001", "ExtraOptions": {"AllowNegative": "yes"}})
    assert err == "INVALID_ARGUMENT: ExtraOptions.AllowNegative must be true or false"
    _, err = await rpc("APIerSv2.GetAccounts", {"AccountIDs": "1001", "Limit": -1})
    assert err == "INVALID_ARGUMENT: Limit must be a non-negative integer"


async def test_get_cdrs_shapes(rpc) -> None:
    assert await rpc("CDRsV1.GetCDRs", {"Accounts": ["1001"]}) == (None, "SERVER_ERROR: NOT_FOUND")
    row = CdrRow(cgrid="abc", origin_id="o1", tenant="cgrates.org", account="1001", subject="1001",
                 destination="1002", request_type="*postpaid", category="call",
                 answer_time=parse_time("2024-01-01T10:00:00Z"), usage=60_000_000_000, cost=Decimal("0.6"),
                 cost_source="*cdrs")
    await rpc.engine.storage.write([InsertCdr(row)])
    [cdr], err = await rpc("CDRsV1.GetCDRs", {"Accounts": ["1001"], "OrderBy": "AnswerTime;desc", "Limit": 10})
    assert err is None
    assert cdr["CGRID"] == "abc" and cdr["Usage"] == 60_000_000_000 and cdr["Cost"] == 0.6
    assert cdr["AnswerTime"] == "2024-01-01T10:00:00Z" and cdr["RunID"] == "*default"
    assert await rpc("CDRsV1.GetCDRsCount", {"Accounts": ["1001"]}) == (1, None)
    _, err = await rpc("CDRsV1.GetCDRs", {"OrderBy": "Nonsense"})
    assert err.startswith("INVALID_ARGUMENT: OrderBy")
