"""CGRateS-compatible rating: prices usage against a loaded TariffPlan."""

from engine.rating.rater import (
    MAX_COST,
    Affordable,
    Charge,
    CostResult,
    Match,
    Rater,
    RatingRequest,
)

__all__ = ["MAX_COST", "Affordable", "Charge", "CostResult", "Match", "Rater", "RatingRequest"]
