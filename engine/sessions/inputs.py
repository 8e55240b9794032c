"""What an agent sends, checked before anything is charged: the event and the duration opts.

Why here: a negative usage is not a parse error (``"-30s"`` is a valid Go duration), but in
a charging request it is money: a terminate with ``Usage: -30s`` would close a call free of
charge (the whole reservation refunded), ``LastUsed: -60s`` would have the same 60 s granted
again unpaid. Each is refused with ``INVALID_ARGUMENT`` naming the field, before any state
changes. A NaN or infinite number makes ``int()`` raise ValueError/OverflowError inside the
duration parser; that becomes the same clear error instead of a crash of the request.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Mapping

from engine.errors import INVALID_ARGUMENT, ChargingError
from engine.event import COST, LAST_USED, TOTAL_USAGE, USAGE, ChargingEvent, EventDefaults
from engine.units import parse_duration

_NUMBERS = (USAGE, LAST_USED, TOTAL_USAGE, COST)
_NON_FINITE_TEXT = frozenset({"nan", "snan", "inf", "infinity"})


def parse_event(fields: Any, defaults: EventDefaults) -> ChargingEvent:
    """The normalised event, or ``ChargingError(INVALID_ARGUMENT)`` naming the bad field."""
    if fields.__class__ is not dict and not isinstance(fields, Mapping):  # ABC check: ~3 µs
        raise ChargingError(INVALID_ARGUMENT, "event must be a mapping of CGRateS fields")
    try:
        event = ChargingEvent.from_fields(fields, defaults)
    except (ValueError, ArithmeticError) as exc:  # OverflowError, decimal errors: non-finite numbers
        raise ChargingError(INVALID_ARGUMENT, _unparsable(fields, exc)) from None
    except ChargingError as exc:  # the unit parsers refuse NaN/inf themselves: still name the field
        named = _non_finite(fields) if exc.code == INVALID_ARGUMENT else None
        if named is None:
            raise
        raise ChargingError(INVALID_ARGUMENT, named) from None
    for name, value in ((USAGE, event.usage), (LAST_USED, event.last_used), (TOTAL_USAGE, event.total_usage)):
        if value is not None and value < 0:
            raise ChargingError(INVALID_ARGUMENT, f"negative {name} {fields.get(name)}")
    if event.cost is not None and not event.cost.is_finite():
        raise ChargingError(INVALID_ARGUMENT, f"invalid {COST} {fields.get(COST)}")
    return event


def _unparsable(fields: Mapping[str, Any], exc: Exception) -> str:
    return _non_finite(fields) or f"invalid event: {exc}"


def _non_finite(fields: Mapping[str, Any]) -> str | None:
    """The message naming the first NaN/infinite number field, if there is one."""
    for name in _NUMBERS:
        value = fields.get(name)
        if isinstance(value, (float, Decimal)) and not _finite(value):
            return f"invalid {name} {value}"
        if isinstance(value, str) and value.strip().lower().lstrip("+-") in _NON_FINITE_TEXT:
            return f"invalid {name} {value}"
    return None


def _finite(value: float | Decimal) -> bool:
    return value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)


def opt_duration(opts: Mapping[str, Any], name: str, default: int) -> int:
    """A duration APIOpt (``*sessionsDebitInterval``, ``*sessionsTTL``): ``default`` when
    absent, never below 0; a value that is no duration is ``INVALID_ARGUMENT``."""
    value = opts.get(name)
    if value is None:
        return default
    try:
        return max(0, parse_duration(value))
    except (ValueError, ArithmeticError, ChargingError):
        raise ChargingError(INVALID_ARGUMENT, f"invalid {name} {value}") from None
