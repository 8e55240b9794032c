"""Render a CostResult as CGRateS ``EventCost`` JSON (GetCost reply, CDR CostDetails).

Shape as in CGRateS ``engine/eventcost.go``: ``Charges`` reference ``Rating``
entries, which reference ``Rates``, ``Timings`` and ``RatingFilters`` by short
ids. Increments are compressed (one entry with ``CompressFactor``), the way
CGRateS stores them, so the document stays small whatever the call length.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.rating.rounding import to_decimal
from engine.units import decimal_to_json, format_time

if TYPE_CHECKING:
    from engine.rating.rater import CostResult


class _Ids:
    """Stable short ids for deduplicated sub-documents (CGRateS uses random ones; any id works)."""

    def __init__(self, prefix: str, table: dict[str, Any]) -> None:
        self.prefix = prefix
        self.table = table
        self.by_key: dict[Any, str] = {}

    def get(self, key: Any, build: Any) -> str:
        found = self.by_key.get(key)
        if found is None:
            found = f"{self.prefix}{len(self.by_key) + 1}"
            self.by_key[key] = found
            self.table[found] = build()
        return found


def build_event_cost(result: "CostResult", cgrid: str, run_id: str) -> dict[str, Any]:
    rating: dict[str, Any] = {}
    rates: dict[str, Any] = {}
    timings: dict[str, Any] = {}
    filters: dict[str, Any] = {}
    rating_ids = _Ids("r", rating)
    rate_ids = _Ids("x", rates)
    timing_ids = _Ids("t", timings)
    filter_ids = _Ids("f", filters)
    charges: list[dict[str, Any]] = []
    for index, charge in enumerate(result.charges):
        binding = charge.binding
        dr = binding.destination_rate
        timing = binding.timing.source
        match = charge.match
        rates_ref = rate_ids.get(binding.rate.id, lambda: [
            {"GroupIntervalStart": s.group_interval_start, "Value": decimal_to_json(s.rate),
             "RateIncrement": s.rate_increment, "RateUnit": s.rate_unit}
            for s in binding.rate.slots
        ])
        timing_ref = timing_ids.get(timing.id, lambda: {
            "Years": list(timing.years), "Months": list(timing.months),
            "MonthDays": list(timing.month_days), "WeekDays": list(timing.week_days),
            "StartTime": timing.start_time or "00:00:00",
        })
        filter_ref = filter_ids.get((match.destination_id, match.prefix, match.rating_plan_id, match.subject_key),
                                    lambda: {
                                        "DestinationID": match.destination_id,
                                        "DestinationPrefix": match.prefix,
                                        "RatingPlanID": match.rating_plan_id,
                                        "Subject": "*out:" + match.subject_key,
                                    })
        connect_fee = charge.slot.connect_fee
        rating_ref = rating_ids.get((dr, binding.rate.id, timing.id, filter_ref), lambda: {
            "ConnectFee": decimal_to_json(connect_fee),
            "RoundingMethod": dr.rounding_method,
            "RoundingDecimals": dr.rounding_decimals,
            "MaxCost": decimal_to_json(dr.max_cost),
            "MaxCostStrategy": dr.max_cost_strategy,
            "TimingID": timing_ref,
            "RatesID": rates_ref,
            "RatingFiltersID": filter_ref,
        })
        increments: list[dict[str, Any]] = []
        if index == 0 and result.connect_fee:
            increments.append({"Usage": 0, "Cost": decimal_to_json(result.connect_fee),
                               "AccountingID": "", "CompressFactor": 1})
        unit_cost = charge.charged_cost / charge.increments if charge.increments else charge.increment_cost
        increments.append({"Usage": charge.increment, "Cost": decimal_to_json(to_decimal(unit_cost)),
                           "AccountingID": "", "CompressFactor": charge.increments})
        charges.append({"RatingID": rating_ref, "Increments": increments, "CompressFactor": 1})
    return {
        "CGRID": cgrid,
        "RunID": run_id,
        "StartTime": format_time(result.request.start),
        "Usage": result.rated_usage,
        "Cost": decimal_to_json(result.cost),
        "Charges": charges,
        "AccountSummary": None,
        "Accounting": {},
        "Rating": rating,
        "RatingFilters": filters,
        "Rates": rates,
        "Timings": timings,
    }
