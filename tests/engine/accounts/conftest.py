"""Shared fixtures for account tests: a real SQLite storage and a started AccountService."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from engine.accounts import AccountService
from engine.rating.rater import RatingRequest
from engine.storage import open_storage

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
async def storage(tmp_path):
    store = open_storage(tmp_path)
    await store.open()
    yield store
    await store.close()


@pytest.fixture
def rater_box():
    """Holds the rater the service sees (tests put a real Rater built from a small plan in it)."""
    return {"rater": None, "plan": None}


@pytest.fixture
async def service(storage, rater_box):
    svc = AccountService(storage, lambda: rater_box["rater"], tariffplan=lambda: rater_box["plan"],
                         clock=lambda: T0)
    await svc.start()
    return svc


# --- a small real tariff plan (CGRateS CSV) -----------------------------------------------------
TP_FILES = {
    "Destinations.csv": "#Id,Prefix\nDST_1002,1002\nDST_1003,1003\nDST_49,49\n",
    "Timings.csv": ("#Tag,Years,Months,MonthDays,WeekDays,Time\n"
                    "WEEKEND,*any,*any,*any,6;7,00:00:00\n"
                    "EVENING,*any,*any,*any,*any,18:00:00\n"),
    "Rates.csv": ("#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\n"
                  "RT_1CNT,0,0.01,1s,1s,0s\n"
                  "RT_20CNT,0.4,0.2,60s,60s,0s\n"
                  "RT_20CNT,0,0.1,60s,1s,60s\n"),
    "DestinationRates.csv": ("#Id,DestinationId,RatesTag,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy\n"
                             "DR_1002,DST_1002,RT_1CNT,*up,4,0,\n"
                             "DR_1003,DST_1003,RT_20CNT,*up,4,0,\n"
                             "DR_49,DST_49,RT_1CNT,*up,4,0,\n"),
    "RatingPlans.csv": ("#Id,DestinationRatesId,TimingTag,Weight\n"
                        "RP_1001,DR_1002,*any,10\nRP_1001,DR_1003,*any,10\nRP_1001,DR_49,*any,10\n"),
    "RatingProfiles.csv": ("#Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject\n"
                           "cgrates.org,call,*any,2014-01-14T00:00:00Z,RP_1001,\n"),
    "Actions.csv": (
        "#ActionsId,Action,ExtraParameters,Filter,BalanceId,BalanceType,Categories,DestinationIds,"
        "RatingSubject,SharedGroup,ExpiryTime,TimingIds,Units,BalanceWeight,BalanceBlocker,"
        "BalanceDisabled,Weight\n"
        "ACT_TOPUP,*topup_reset,,,main,*monetary,,*any,,,*unlimited,,10,10,false,false,10\n"
        "ACT_VOICE,*topup_reset,,,free_min,*voice,,DST_1002,,,*unlimited,,60s,20,false,false,10\n"
        "ACT_RECHARGE,*topup,,,main,*monetary,,,,,,,5,10,false,false,10\n"
        "ACT_TWO,*topup,,,main,*monetary,,,,,,,3,10,false,false,20\n"
        "ACT_TWO,*debit,,,main,*monetary,,,,,,,1000,10,false,false,10\n"
        "ACT_CENT,*topup,,,main,*monetary,,,,,,,0.01,10,false,false,10\n"
        "ACT_WITH_CDRLOG,*topup,,,main,*monetary,,,,,,,1,10,false,false,20\n"
        "ACT_WITH_CDRLOG,*cdrlog,,,,,,,,,,,,,,,10\n"
        "ACT_REMOVE,*remove_balance,,,main,*monetary,,,,,,,,,,,10\n"
        "ACT_OFF,*disable_account,,,,,,,,,,,,,,,10\n"
        "ACT_LOG,*log,,,,,,,,,,,,,,,10\n"),
    "ActionPlans.csv": "#Id,ActionsId,TimingId,Weight\nAP_PACKAGE,ACT_TOPUP,*asap,10\nAP_PACKAGE,ACT_VOICE,*asap,10\n"
                       "AP_MONTHLY,ACT_RECHARGE,*monthly,10\n",
    "ActionTriggers.csv": (
        "#Tag,UniqueId,ThresholdType,ThresholdValue,Recurrent,MinSleep,ExpiryTime,ActivationTime,"
        "BalanceTag,BalanceType,BalanceCategories,BalanceDestinationIds,BalanceRatingSubject,"
        "BalanceSharedGroup,BalanceExpiryTime,BalanceTimingIds,BalanceWeight,BalanceBlocker,"
        "BalanceDisabled,ActionsId,Weight\n"
        "TR_LOW,low,*min_balance,2,false,0,,,main,*monetary,,,,,,,,,,ACT_RECHARGE,10\n"
        "TR_EVERY,every,*min_balance,5,true,0,,,main,*monetary,,,,,,,,,,ACT_CENT,10\n"
        "TR_SLEEPY,sleepy,*min_balance,5,true,1h,,,main,*monetary,,,,,,,,,,ACT_CENT,10\n"),
    "AccountActions.csv": ("#Tenant,Account,ActionPlanId,ActionTriggersId,AllowNegative,Disabled\n"
                           "cgrates.org,1001,AP_PACKAGE,,false,false\n"
                           "cgrates.org,1002,AP_PACKAGE,TR_LOW,false,false\n"
                           "cgrates.org,1003,AP_MONTHLY,,true,false\n"),
}


@pytest.fixture
def tp_dir(tmp_path):
    folder = tmp_path / "tp"
    folder.mkdir()
    for name, text in TP_FILES.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture
def real_plan(tp_dir, rater_box):
    """Load the CSV plan, build the real Rater and make the service use both."""
    from engine.rating.rater import Rater
    from engine.tariffplan.loader import load_tariffplan

    plan = load_tariffplan(tp_dir)
    rater_box["plan"] = plan
    rater_box["rater"] = Rater(plan)
    return plan


SECOND = 10**9


@pytest.fixture
def make_req():
    """RatingRequest for account 1001 (Subject 1001) at T0; usage in seconds unless ``units``."""
    def make(usage_s: float, destination: str = "1002", *, tor: str = "*voice",
             category: str = "call", start: datetime = T0, offset_s: float = 0,
             units: int | None = None) -> RatingRequest:
        usage = units if units is not None else int(Decimal(str(usage_s)) * SECOND)
        return RatingRequest("cgrates.org", category, "1001", destination, start, usage, tor,
                             int(Decimal(str(offset_s)) * SECOND))
    return make
