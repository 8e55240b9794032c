"""Render a CostResult as CGRateS ``EventCost`` JSON (GetCost reply, CDR CostDetails).

Shape as in CGRateS ``engine/eventcost.go``: ``Charges`` reference ``Rating``
entries, which reference ``Rates``, ``Timings`` and ``RatingFilters`` by short
ids. Increments are compressed (one entry with ``CompressFactor``), the way
CGRateS stores them, so the document stays small whatever the call length.

Everything but ``CGRID``, ``RunID`` and ``StartTime`` depends only on the priced
shape, which the Rater re-uses for calls at other starts: the first rendering is
kept as JSON on the result (shared with its re-based copies) and later ones are
parsed back from it, which gives the same values and fresh containers for less work.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from engine.rating.rounding import round_scaled
from engine.tariffplan.model import ROUND_MIDDLE
from engine.units import decimal_to_json, format_time

if TYPE_CHECKING:
    from engine.rating.rater import CostResult


class _BindingDocs:
    """The parts of an EventCost that depend only on a plan binding, rendered once per binding.

    Documents get fresh copies (callers may mutate what they receive); only the Decimal to
    JSON conversions and the timing lists are shared work.
    """

    __slots__ = ("binding", "rate_id", "timing_id", "rates", "timing", "dr_token", "dr_fields", "connect_fees")

    def __init__(self, binding: Any) -> None:
        self.binding = binding       # keeps id(binding) from being reused while cached
        dr = binding.destination_rate
        timing = binding.timing.source
        self.rate_id = binding.rate.id
        self.timing_id = timing.id
        self.rates = tuple(
            (s.group_interval_start, decimal_to_json(s.rate), s.rate_increment, s.rate_unit)
            for s in binding.rate.slots
        )
        self.timing = (list(timing.years), list(timing.months), list(timing.month_days),
                       list(timing.week_days), timing.start_time or "00:00:00")
        # Equal DestinationRates dedupe to one Rating entry, as keying by the dataclass did.
        self.dr_token = id(_CANONICAL_DR.setdefault(dr, dr))
        self.dr_fields = (dr.rounding_method, dr.rounding_decimals, decimal_to_json(dr.max_cost),
                          dr.max_cost_strategy)
        self.connect_fees = tuple(decimal_to_json(c.slot.connect_fee) for c in binding.slots)

    def rates_doc(self) -> list[dict[str, Any]]:
        return [{"GroupIntervalStart": g, "Value": v, "RateIncrement": i, "RateUnit": u}
                for g, v, i, u in self.rates]

    def timing_doc(self) -> dict[str, Any]:
        years, months, month_days, week_days, start = self.timing
        return {"Years": years[:], "Months": months[:], "MonthDays": month_days[:],
                "WeekDays": week_days[:], "StartTime": start}


_CACHE_LIMIT = 10_000
_DOCS: dict[int, _BindingDocs] = {}
_CANONICAL_DR: dict[Any, Any] = {}


def _docs(binding: Any) -> _BindingDocs:
    docs = _DOCS.get(id(binding))
    if docs is None or docs.binding is not binding:
        if len(_DOCS) >= _CACHE_LIMIT:      # plan reloads leave old bindings behind: start over
            _DOCS.clear()
            _CANONICAL_DR.clear()
        docs = _DOCS[id(binding)] = _BindingDocs(binding)
    return docs


def _unit_cost(numerator: int, denominator: int) -> int | float:
    """``decimal_to_json(to_decimal(Fraction(numerator, denominator)))`` without the Fraction."""
    rounded = round_scaled(numerator, denominator, 12, ROUND_MIDDLE)
    return decimal_to_json(rounded.normalize() if rounded else Decimal(0))


def build_event_cost(result: "CostResult", cgrid: str, run_id: str) -> dict[str, Any]:
    """The EventCost of ``result``: rendered the first time, parsed from that rendering after."""
    rendered = result.priced.rendered
    if rendered and rendered[0]:
        usage, cost, charges, rating, filters, rates, timings = orjson.loads(rendered[0])
        return {"CGRID": cgrid, "RunID": run_id, "StartTime": format_time(result.request.start),
                "Usage": usage, "Cost": cost, "Charges": charges, "AccountSummary": None,
                "Accounting": {}, "Rating": rating, "RatingFilters": filters, "Rates": rates,
                "Timings": timings}
    doc = _render(result, cgrid, run_id)
    if not rendered:
        try:
            rendered.append(orjson.dumps([doc["Usage"], doc["Cost"], doc["Charges"], doc["Rating"],
                                          doc["RatingFilters"], doc["Rates"], doc["Timings"]]))
        except orjson.JSONEncodeError:      # an integer beyond 64 bits: render every time
            rendered.append(b"")
    return doc


def _render(result: CostResult, cgrid: str, run_id: str) -> dict[str, Any]:
    rating: dict[str, Any] = {}
    rates: dict[str, Any] = {}
    timings: dict[str, Any] = {}
    filters: dict[str, Any] = {}
    rate_ids: dict[Any, str] = {}
    timing_ids: dict[Any, str] = {}
    filter_ids: dict[Any, str] = {}
    rating_ids: dict[Any, str] = {}
    charges: list[dict[str, Any]] = []
    for index, charge in enumerate(result.priced.charges):   # start times are not rendered
        binding = charge.binding
        docs = _docs(binding)
        match = charge.match
        rates_ref = rate_ids.get(docs.rate_id)
        if rates_ref is None:
            rates_ref = rate_ids[docs.rate_id] = f"x{len(rate_ids) + 1}"
            rates[rates_ref] = docs.rates_doc()
        timing_ref = timing_ids.get(docs.timing_id)
        if timing_ref is None:
            timing_ref = timing_ids[docs.timing_id] = f"t{len(timing_ids) + 1}"
            timings[timing_ref] = docs.timing_doc()
        filter_key = (match.destination_id, match.prefix, match.rating_plan_id, match.subject_key)
        filter_ref = filter_ids.get(filter_key)
        if filter_ref is None:
            filter_ref = filter_ids[filter_key] = f"f{len(filter_ids) + 1}"
            filters[filter_ref] = {
                "DestinationID": match.destination_id,
                "DestinationPrefix": match.prefix,
                "RatingPlanID": match.rating_plan_id,
                "Subject": "*out:" + match.subject_key,
            }
        rating_key = (docs.dr_token, docs.rate_id, docs.timing_id, filter_ref)
        rating_ref = rating_ids.get(rating_key)
        if rating_ref is None:
            rating_ref = rating_ids[rating_key] = f"r{len(rating_ids) + 1}"
            method, decimals, max_cost, strategy = docs.dr_fields
            rating[rating_ref] = {
                "ConnectFee": docs.connect_fees[binding.slot_index(charge.offset)],
                "RoundingMethod": method,
                "RoundingDecimals": decimals,
                "MaxCost": max_cost,
                "MaxCostStrategy": strategy,
                "TimingID": timing_ref,
                "RatesID": rates_ref,
                "RatingFiltersID": filter_ref,
            }
        increments: list[dict[str, Any]] = []
        if index == 0 and result.connect_fee:
            increments.append({"Usage": 0, "Cost": decimal_to_json(result.connect_fee),
                               "AccountingID": "", "CompressFactor": 1})
        if charge.increments:
            unit_cost = _unit_cost(charge.charged_scaled, charge.scale * charge.increments)
        else:
            unit_cost = _unit_cost(charge.unit_scaled, charge.scale)
        increments.append({"Usage": charge.increment, "Cost": unit_cost,
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
