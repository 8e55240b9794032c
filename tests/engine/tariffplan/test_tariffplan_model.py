"""The tariff plan survives storage: to_bytes/from_bytes is exact (Decimal, times, tuples)."""

from datetime import datetime, timezone
from decimal import Decimal

from engine.tariffplan.model import (
    Action,
    Destination,
    Rate,
    RateSlot,
    RatingProfile,
    TariffPlan,
    default_charger,
)


def test_round_trip_keeps_exact_money_and_times() -> None:
    plan = TariffPlan(
        destinations={"DST_1002": Destination("DST_1002", ("1002", "10020"))},
        rates={"RT_20CNT": Rate("RT_20CNT", (RateSlot(Decimal("0.4"), Decimal("0.2"), 60, 60, 0),))},
        rating_profiles={
            "cgrates.org:call:1001": (
                RatingProfile("cgrates.org", "call", "1001",
                              datetime(2014, 1, 14, tzinfo=timezone.utc), "RP_1001", ("*any",)),
            )
        },
        actions={
            "ACT_TOPUP": (
                Action("ACT_TOPUP", "*topup_reset", "", "", "", "*monetary", (), ("*any",), "", "",
                       "*unlimited", (), Decimal("10.0000001"), Decimal(10), None, False, Decimal(10)),
            )
        },
    )
    back = TariffPlan.from_bytes(plan.to_bytes())
    assert back == plan
    assert back.actions["ACT_TOPUP"][0].units == Decimal("10.0000001")
    assert back.rating_profiles["cgrates.org:call:1001"][0].activation_time.tzinfo is not None


def test_default_charger_run_without_chargers_csv() -> None:
    assert TariffPlan().chargers_for("cgrates.org") == [default_charger("cgrates.org")]
    assert default_charger("cgrates.org").run_id == "*default"
