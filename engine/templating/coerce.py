"""Turning message values (str, int, bytes, Decimal, datetime ...) into what a field needs.

Every helper raises ``ConversionError`` on a value it cannot use, so the field
evaluator has one error type to turn into "skip" or ``TemplateFieldError``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.errors import ChargingError
from engine.templating.errors import ConversionError
from engine.units import SECOND, format_time, parse_duration, parse_time


def text(value: Any) -> str:
    """Text form used for concatenation, comparison and filler (Go-like rendering)."""
    kind = type(value)
    if kind is str:
        return value
    if kind is int:
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, timedelta):
        return str(duration(value))
    if value is None:
        return ""
    return str(value)


def whole(value: Decimal) -> int | Decimal:
    """An int when the Decimal is whole (CC-Time 30, not Decimal('30.000'))."""
    if value == value.to_integral_value():
        return int(value)
    return value.normalize()


def number(value: Any) -> Decimal:
    """Exact Decimal from a number or numeric text."""
    if type(value) is int:
        return Decimal(value)
    if isinstance(value, bool):
        raise ConversionError(f"not a number: {value!r}")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ConversionError(f"not a finite number: {value!r}")
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ConversionError(f"not a finite number: {value!r}")
        return Decimal(repr(value))
    raw = text(value).strip()
    try:
        result = Decimal(raw)
    except (InvalidOperation, ValueError):
        raise ConversionError(f"not a number: {raw!r}") from None
    if not result.is_finite():
        raise ConversionError(f"not a finite number: {raw!r}")
    return result


def duration(value: Any) -> int:
    """Integer nanoseconds (CGRateS rules: numbers are ns, ``"1m30s"`` Go durations)."""
    if type(value) is int:
        return value
    if isinstance(value, timedelta):
        return (value.days * 86400 + value.seconds) * SECOND + value.microseconds * 1000
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ConversionError(f"not a duration: {value!r}")
        return int(value)
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise ConversionError(f"not a duration: {value!r}")
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = text(value)
    try:
        return parse_duration(value)
    except ChargingError:
        raise ConversionError(f"not a duration: {value!r}") from None
    except (ValueError, ArithmeticError):
        raise ConversionError(f"not a duration: {value!r}") from None


def time_of(value: Any, tz: tzinfo = timezone.utc) -> datetime:
    """Aware datetime from a datetime, RFC3339/SQL text or unix epoch (s, ms, µs)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = text(value)
    if isinstance(value, Decimal):
        value = str(value)
    try:
        parsed = parse_time(value, tz)  # type: ignore[arg-type]
    except ChargingError:
        raise ConversionError(f"not a time: {value!r}") from None
    except (ValueError, OverflowError, OSError, ArithmeticError):
        raise ConversionError(f"not a time: {value!r}") from None
    if parsed is None:
        raise ConversionError(f"empty time: {value!r}")
    return parsed


def is_empty(value: Any) -> bool:
    """Empty for ``*empty``/mandatory: None, "" (also as bytes), empty containers."""
    if value is None:
        return True
    if isinstance(value, (str, bytes, bytearray, list, dict, tuple)):
        return len(value) == 0
    return False
