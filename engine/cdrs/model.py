"""CDRs in the CGRateS shape: building rows from sessions/events, JSON out, filters in.

Storage owns the row type (``CdrRow``); this module is the CGRateS edge of it:
``cdr_to_cgrates`` renders exactly what ``CDRsV1.GetCDRs`` returns (Usage in ns,
times RFC3339, Cost a JSON number) and ``filter_from_cgrates`` reads an
``RPCCDRsFilter`` mapping into storage's ``CdrFilter``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Mapping

from engine.cdrs.details import details_value
from engine.errors import INVALID_ARGUMENT, ChargingError
from engine.event import STANDARD_FIELDS, ChargingEvent
from engine.storage.base import CdrFilter, CdrRow
from engine.units import decimal_to_json, format_time, parse_duration, parse_time, to_decimal

COST_SOURCE_SESSIONS = "*sessions"
COST_SOURCE_CDRS = "*cdrs"


def cdr_from_event(event: ChargingEvent, run_id: str, *, usage: int, cost: Decimal | None,
                   cost_source: str, cost_details: Any = None, extra_info: str = "",
                   pre_rated: bool = False, partial: bool = False) -> CdrRow:
    """One CDR row for one run of an event. ``cost`` None means unrated (-1, as CGRateS)."""
    return _row(event, run_id, event.answer_time, _extra_fields(event.extra, event.disconnect_cause), usage,
                cost, cost_source, cost_details, extra_info, partial, pre_rated)


def cdr_from_session(event: ChargingEvent, run_id: str, fields: Mapping[str, Any], cause: str,
                     answer_time: datetime | None, *, usage: int, cost: Decimal | None, cost_source: str,
                     cost_details: Any = None, extra_info: str = "") -> CdrRow:
    """A session run's CDR: ``cdr_from_event`` of the run's event with ``extra`` = the
    non-standard ``fields`` (the session's EventStart), ``disconnect_cause`` = ``cause`` and
    ``answer_time`` replaced, without building that event copy first."""
    return _row(event, run_id, answer_time, _extra_fields(fields, cause, STANDARD_FIELDS), usage, cost,
                cost_source, cost_details, extra_info, False, False)


def _extra_fields(fields: Mapping[str, Any], cause: str, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """CDR ExtraFields: the non-standard fields (not ``skip``, not ``*``-internal) as JSON-able
    values, plus DisconnectCause (CGRateS keeps it there)."""
    extra = {k: v if v.__class__ is str else _plain(v) for k, v in fields.items()
             if k not in skip and not k.startswith("*")}
    if cause:
        extra["DisconnectCause"] = cause
    return extra


def _row(event: ChargingEvent, run_id: str, answer_time: datetime | None, extra_fields: dict[str, Any],
         usage: int, cost: Decimal | None, cost_source: str, cost_details: Any, extra_info: str,
         partial: bool, pre_rated: bool) -> CdrRow:
    # positional, in CdrRow's field order (built once per CDR)
    return CdrRow(event.cgrid, run_id, event.origin_host, event.origin_id, event.source, event.tor,
                  event.request_type, event.tenant, event.category, event.account, event.subject,
                  event.destination, event.setup_time, answer_time, usage,
                  _UNRATED if cost is None else cost, cost_source, cost_details, extra_fields, extra_info,
                  partial, pre_rated)


_UNRATED = Decimal(-1)


def _plain(value: Any) -> Any:
    """ExtraFields are strings in CGRateS; keep JSON scalars, stringify the rest."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return format_time(value)
    return str(value)


def cdr_to_cgrates(row: CdrRow) -> dict[str, Any]:
    """The CGRateS ``engine.CDR`` JSON for one row (what GetCDRs and exporters emit)."""
    return {
        "CGRID": row.cgrid,
        "RunID": row.run_id,
        "OrderID": row.order_id,
        "OriginHost": row.origin_host,
        "Source": row.source,
        "OriginID": row.origin_id,
        "ToR": row.tor,
        "RequestType": row.request_type,
        "Tenant": row.tenant,
        "Category": row.category,
        "Account": row.account,
        "Subject": row.subject,
        "Destination": row.destination,
        "SetupTime": format_time(row.setup_time),
        "AnswerTime": format_time(row.answer_time),
        "Usage": row.usage,
        "ExtraFields": dict(row.extra_fields),
        "ExtraInfo": row.extra_info,
        "Partial": row.partial,
        "PreRated": row.pre_rated,
        "CostSource": row.cost_source,
        "Cost": decimal_to_json(row.cost),
        "CostDetails": _json_numbers(details_value(row.cost_details)),
    }


def _json_numbers(value: Any) -> Any:
    """EventCost money is Decimal inside; CGRateS clients read JSON numbers."""
    if isinstance(value, Decimal):
        return decimal_to_json(value)
    if isinstance(value, dict):
        return {k: _json_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_numbers(v) for v in value]
    return value


_LISTS = {
    "CGRIDs": "cgrids", "RunIDs": "run_ids", "OriginIDs": "origin_ids", "OriginHosts": "origin_hosts",
    "Sources": "sources", "ToRs": "tors", "RequestTypes": "request_types", "Tenants": "tenants",
    "Categories": "categories", "Accounts": "accounts", "Subjects": "subjects",
    "DestinationPrefixes": "destination_prefixes", "NotCGRIDs": "not_cgrids", "NotRunIDs": "not_run_ids",
    "NotAccounts": "not_accounts", "NotDestinationPrefixes": "not_destination_prefixes",
}
_TIMES = {
    "SetupTimeStart": "setup_time_start", "SetupTimeEnd": "setup_time_end",
    "AnswerTimeStart": "answer_time_start", "AnswerTimeEnd": "answer_time_end",
    "CreatedAtStart": "created_at_start", "CreatedAtEnd": "created_at_end",
}
_ORDER_FIELDS = frozenset({"OrderID", "AnswerTime", "SetupTime", "Usage", "Cost"})


def filter_from_cgrates(args: Mapping[str, Any]) -> CdrFilter:
    """Read a CGRateS ``RPCCDRsFilter`` (flattened GetCDRs params); bad values are INVALID_ARGUMENT."""
    flt = CdrFilter()
    for key, attr in _LISTS.items():
        value = args.get(key)
        if value in (None, ""):
            continue
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ChargingError(INVALID_ARGUMENT, f"{key} must be a list of strings")
        setattr(flt, attr, tuple(str(v) for v in value))
    for key, attr in _TIMES.items():
        if args.get(key):
            setattr(flt, attr, parse_time(args[key]))
    if args.get("MinUsage") not in (None, ""):
        flt.min_usage = parse_duration(args["MinUsage"])
    if args.get("MaxUsage") not in (None, ""):
        flt.max_usage = parse_duration(args["MaxUsage"])
    extra = args.get("ExtraArgs") or {}
    if not isinstance(extra, Mapping):
        raise ChargingError(INVALID_ARGUMENT, "ExtraArgs must be an object")
    for key, attr in (("MinCost", "min_cost"), ("MaxCost", "max_cost")):
        source = extra.get(key, args.get(key))
        if source not in (None, ""):
            setattr(flt, attr, to_decimal(source))
    for key, attr in (("OrderIDStart", "order_id_start"), ("OrderIDEnd", "order_id_end")):
        if extra.get(key) not in (None, ""):
            setattr(flt, attr, _int(key, extra[key]))
    order_by = str(args.get("OrderBy") or "")
    if order_by:
        name, _, direction = order_by.partition(";")
        if name not in _ORDER_FIELDS or direction not in ("", "desc", "asc"):
            raise ChargingError(INVALID_ARGUMENT, f"OrderBy {order_by!r}: use OrderID|AnswerTime|SetupTime|Usage|Cost[;desc]")
        flt.order_by = order_by
    if args.get("Limit") is not None:
        flt.limit = _int("Limit", args["Limit"])
    if args.get("Offset") is not None:
        flt.offset = _int("Offset", args["Offset"])
    return flt


def _int(key: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ChargingError(INVALID_ARGUMENT, f"{key} must be an integer")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ChargingError(INVALID_ARGUMENT, f"{key} must be an integer") from None
    if number < 0:
        raise ChargingError(INVALID_ARGUMENT, f"{key} must not be negative")
    return number
