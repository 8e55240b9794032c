"""A small CGRateS tariff-plan folder for the RADIUS benchmark and integration tests.

Voice to 1002 (and any 100x): 1 cent per second, billed per second, no
connect fee; data: 1 cent per MB (1048576 bytes, billed per 1024 bytes). Every account gets
its balance of *monetary once (*asap top-up).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable


def write_plan(folder: Path, accounts: Iterable[str] | dict[str, str], balance: str = "10",
               tenant: str = "cgrates.org") -> Path:
    """``accounts``: names (all get ``balance``) or {name: balance}."""
    folder.mkdir(parents=True, exist_ok=True)
    balances = dict(accounts) if isinstance(accounts, dict) else {a: balance for a in accounts}
    amounts = sorted(set(balances.values()))
    plan_of = {amount: f"AP_TOPUP_{i}" for i, amount in enumerate(amounts)}
    files = {
        "Destinations.csv": "#Id,Prefix\nDST_100X,100\nDST_DATA,*any\n",
        "Rates.csv": ("#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\n"
                      "RT_1CPS,0,0.01,1s,1s,0s\n"
                      "RT_DATA,0,0.01,1048576,1024,0\n"),
        "DestinationRates.csv": ("#Id,DestinationId,RatesTag,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy\n"
                                 "DR_VOICE,DST_100X,RT_1CPS,*up,4,0,\n"
                                 "DR_DATA,*any,RT_DATA,*up,4,0,\n"),
        "RatingPlans.csv": ("#Id,DestinationRatesId,TimingTag,Weight\n"
                            "RP_VOICE,DR_VOICE,*any,10\n"
                            "RP_DATA,DR_DATA,*any,10\n"),
        "RatingProfiles.csv": ("#Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject\n"
                               f"{tenant},call,*any,2014-01-14T00:00:00Z,RP_VOICE,\n"
                               f"{tenant},data,*any,2014-01-14T00:00:00Z,RP_DATA,\n"),
        "Actions.csv": ("#ActionsId,Action,ExtraParameters,Filter,BalanceId,BalanceType,Categories,"
                        "DestinationIds,RatingSubject,SharedGroup,ExpiryTime,TimingIds,Units,BalanceWeight,"
                        "BalanceBlocker,BalanceDisabled,Weight\n"
                        + "".join(f"ACT_TOPUP_{i},*topup_reset,,,main,*monetary,,*any,,,*unlimited,,{amount},10,"
                                  "false,false,10\n" for i, amount in enumerate(amounts))),
        "ActionPlans.csv": "#Id,ActionsId,TimingId,Weight\n" + "".join(
            f"AP_TOPUP_{i},ACT_TOPUP_{i},*asap,10\n" for i, _ in enumerate(amounts)),
        "AccountActions.csv": "#Tenant,Account,ActionPlanId,ActionTriggersId,AllowNegative,Disabled\n" + "".join(
            f"{tenant},{account},{plan_of[amount]},,false,false\n" for account, amount in balances.items()),
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder
