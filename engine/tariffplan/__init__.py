"""CGRateS-format tariff plans: the typed model and the all-or-nothing CSV loader."""

from engine.tariffplan.loader import TariffPlanError, load_tariffplan
from engine.tariffplan.model import (
    Action,
    AccountAction,
    ActionPlan,
    ActionTrigger,
    Charger,
    Destination,
    DestinationRate,
    Rate,
    RateSlot,
    RatingPlanBinding,
    RatingProfile,
    TariffPlan,
    Timing,
)

__all__ = [
    "Action",
    "AccountAction",
    "ActionPlan",
    "ActionTrigger",
    "Charger",
    "Destination",
    "DestinationRate",
    "Rate",
    "RateSlot",
    "RatingPlanBinding",
    "RatingProfile",
    "TariffPlan",
    "TariffPlanError",
    "Timing",
    "load_tariffplan",
]
