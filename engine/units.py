"""Units at the edge: durations as integer nanoseconds, money as Decimal, times as aware UTC.

CGRateS conventions: a JSON number duration is nanoseconds, a string is a Go
duration (``"1m30s"``) and a bare numeric string is nanoseconds too (``"60"`` is
60 ns, a known trap kept for compatibility). ``"*unlimited"`` is -1.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.errors import INVALID_ARGUMENT, ChargingError
from engine.memo import remember

NANOSECOND = 1
MICROSECOND = 1_000
MILLISECOND = 1_000_000
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
UNLIMITED = -1

_UNIT_NS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "µs": MICROSECOND,
    "μs": MICROSECOND,
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}
_GO_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_INT_RE = re.compile(r"[+-]?[0-9]+")
_WHOLE_UNIT_NS = {"s": SECOND, "m": MINUTE, "h": HOUR}
_SUB_SECOND_NS = {"ms": MILLISECOND, "us": MICROSECOND, "ns": NANOSECOND}
_EPOCH_RE = re.compile(r"[0-9]+(\.[0-9]+)?")
_EPOCH_PLAIN_MAX = 10**11     # above this an epoch is taken as ms or µs (see _from_epoch)
# The range of a Go time.Duration (int64 ns, about 292 years): what CGRateS can express.
# Anything longer is a bad input, not a duration to rate or reserve.
MAX_DURATION = 2**63 - 1


def parse_duration(value: Any) -> int:
    """Parse a CGRateS duration into integer nanoseconds.

    Accepts int (ns), a float (ns, truncated), ``""``/None (0), ``"*unlimited"``
    (-1), a bare integer string (ns) or a Go duration such as ``"1h2m3.5s"``. NaN,
    infinities and anything beyond a Go duration's range (``MAX_DURATION``, about 292
    years either way) are ``ChargingError(INVALID_ARGUMENT)``.
    """
    kind = value.__class__
    if kind is int:
        if -MAX_DURATION <= value <= MAX_DURATION:
            return value
    elif kind is str:
        # "95s", "5m", "1h": what templates render from a RADIUS/Diameter seconds counter,
        # and bare nanoseconds ("60")
        text = value.strip()
        unit = _WHOLE_UNIT_NS.get(text[-1:])
        if unit is not None:
            digits = text[:-1]
            if not digits.isdigit():
                # "2504ms": the call length the Kamailio cfg sends in every CGR_CALL_END
                unit = _SUB_SECOND_NS.get(text[-2:])
                digits = text[:-2]
            if unit is not None and digits.isdigit() and digits.isascii():
                ns = int(digits) * unit
                if ns <= MAX_DURATION:
                    return ns
        elif text.isdigit() and text.isascii():
            ns = int(text)
            if ns <= MAX_DURATION:
                return ns
    return _parse_duration(value)


def _parse_duration(value: Any) -> int:
    """``parse_duration`` of everything its fast paths do not answer (and their errors)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ChargingError(INVALID_ARGUMENT, f"invalid duration {value!r}")
    if isinstance(value, int):
        return _in_range(value, value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ChargingError(INVALID_ARGUMENT, f"invalid duration {value!r}")
        return _in_range(int(value), value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ChargingError(INVALID_ARGUMENT, f"invalid duration {value!r}")
        if abs(value) > MAX_DURATION:     # before int(): Decimal("1e999999") has a million digits
            return _in_range(MAX_DURATION + 1, value)
        return _in_range(int(value), value)
    if not isinstance(value, str):
        raise ChargingError(INVALID_ARGUMENT, f"invalid duration {value!r}")
    text = value.strip()
    if text == "":
        return 0
    if text == "*unlimited":
        return UNLIMITED
    if _INT_RE.fullmatch(text):
        return _in_range(int(text), value)
    sign = 1
    if text[0] in "+-":
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    pos = 0
    total = Decimal(0)
    for match in _GO_DURATION.finditer(text):
        if match.start() != pos:
            break
        total += Decimal(match.group(1)) * _UNIT_NS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise ChargingError(INVALID_ARGUMENT, f"invalid duration {value!r}")
    return _in_range(sign * int(total), value)


def _in_range(ns: int, value: Any) -> int:
    if -MAX_DURATION <= ns <= MAX_DURATION:
        return ns
    raise ChargingError(INVALID_ARGUMENT, f"duration out of range {value!r}")


def format_duration(ns: int) -> str:
    """Go-style rendering (``"1m30s"``, ``"0s"``, ``"1.5s"``) for humans and consoles."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < SECOND:
        for unit, size in (("ms", MILLISECOND), ("µs", MICROSECOND)):
            if ns >= size:
                return sign + _trim(Decimal(ns) / size) + unit
        return f"{sign}{ns}ns"
    hours, rest = divmod(ns, HOUR)
    minutes, rest = divmod(rest, MINUTE)
    out = sign
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    out += _trim(Decimal(rest) / SECOND) + "s"
    return out


def _trim(d: Decimal) -> str:
    text = format(d.normalize(), "f")
    return text


def seconds_to_ns(seconds: Any) -> int:
    """Whole or fractional seconds (int, str or Decimal) to nanoseconds, exactly."""
    return int(to_decimal(seconds) * SECOND)


def ns_to_seconds(ns: int, *, round_up: bool = False) -> int:
    """Nanoseconds to integer seconds; by default truncating, optionally rounding up."""
    if round_up:
        return -((-ns) // SECOND)
    return ns // SECOND


def to_decimal(value: Any) -> Decimal:
    """Exact Decimal from int/str/Decimal; floats go through ``repr`` so 0.1 stays 0.1.

    NaN and infinities (``"NaN"``, ``"sNaN"``, ``"Infinity"``, ``float("inf")`` ...) are
    ``ChargingError(INVALID_ARGUMENT)``: money must never become NaN, which compares false
    with everything and would slip through every credit check.
    """
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, bool):
        raise ChargingError(INVALID_ARGUMENT, f"invalid number {value!r}")
    elif isinstance(value, int):
        return Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ChargingError(INVALID_ARGUMENT, f"invalid number {value!r}") from None
    else:
        raise ChargingError(INVALID_ARGUMENT, f"invalid number {value!r}")
    if not number.is_finite():
        raise ChargingError(INVALID_ARGUMENT, f"invalid number {value!r}")
    return number


def decimal_to_json(value: Decimal) -> int | float:
    """Money for JSON output: CGRateS clients expect numbers (floats).

    Only for rendering at the API edge; never feed the result back into arithmetic.
    """
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


_SQL_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y%m%d%H%M%S")


def parse_time(value: Any, tz: timezone = timezone.utc) -> datetime | None:
    """Parse an event time as CGRateS does: RFC3339, unix seconds, SQL datetime, ``*now``.

    Returns an aware datetime, or None for empty/zero values
    (``""``, ``0``, ``"0001-01-01T00:00:00Z"``).
    """
    if value.__class__ is str:
        # Every message of a session repeats its SetupTime/AnswerTime text: the datetime
        # (immutable) of a text parsed before is remembered, so a session's events share one
        # object, whose hash format_time's memo then finds already computed. Bounded;
        # cleared when full. RFC3339 UTC and Unix-seconds text are remembered.
        parsed = _PARSED.get(value)
        if parsed is not None:
            return parsed
    if value.__class__ is str and value[-1:] == "Z" and not value.startswith("0001-01-01"):
        # Fast path for RFC3339 UTC ("2026-03-02T10:00:07Z"), what templates and agents send;
        # anything fromisoformat refuses takes the general route below.
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return remember(_PARSED, _PARSED_MAX, value, parsed)
    if value is None or value == "":
        return None
    if value.__class__ is int:
        if value == 0:
            return None
        if 0 < value <= _EPOCH_PLAIN_MAX:
            return datetime.fromtimestamp(value, timezone.utc)
        return _from_epoch(value)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value == 0:
            return None
        return _from_epoch(value)
    if not isinstance(value, str):
        raise ChargingError(INVALID_ARGUMENT, f"invalid time {value!r}")
    text = value.strip()
    if text in ("", "0"):
        return None
    if text == "*now":
        return utcnow()
    if text.startswith("0001-01-01"):
        return None
    if _EPOCH_RE.fullmatch(text):
        # Unix seconds as text ("1795439929.123456") is what Kamailio sends, in every event
        # of a call: remembered like RFC3339 text (see the top).
        return remember(_PARSED, _PARSED_MAX, value, _from_epoch_text(text))
    iso = text.replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = datetime.fromisoformat(iso)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
    except ValueError:
        pass
    for fmt in _SQL_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=tz)
        except ValueError:
            continue
    raise ChargingError(INVALID_ARGUMENT, f"invalid time {value!r}")


def _from_epoch(value: int | float | Decimal) -> datetime:
    """Unix time (seconds, or obviously scaled ms/µs) to UTC; NaN, infinities and epochs
    outside the years 1..9999 are ``ChargingError(INVALID_ARGUMENT)``."""
    number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    if not number.is_finite() or abs(number) > _EPOCH_MAX:
        raise ChargingError(INVALID_ARGUMENT, f"invalid time {value!r}")
    # FreeSWITCH sends microseconds, Asterisk/ARI milliseconds; agents convert,
    # but guard the engine against obviously scaled epochs.
    if number > 10**14:
        number /= 10**6
    elif number > 10**11:
        number /= 10**3
    whole = int(number)
    micros = int((number - whole) * 10**6)
    try:
        return _EPOCH + timedelta(seconds=whole, microseconds=micros)
    except OverflowError:
        raise ChargingError(INVALID_ARGUMENT, f"time out of range {value!r}") from None


def _from_epoch_text(text: str) -> datetime:
    """``_from_epoch`` of Unix-seconds text (digits, optional fraction).

    Kamailio's times (``"1795364999.012808"``) are taken apart as text: whole seconds and the
    first six decimals are exactly what the Decimal route computes (it truncates below the
    microsecond) at a third of the cost; each call's time is new text, parsed once.
    Scaled epochs (ms, µs) and long fractions take the Decimal route."""
    seconds, _, fraction = text.partition(".")
    if len(seconds) <= 11 and len(fraction) <= 9:
        whole = int(seconds)
        if whole < _EPOCH_PLAIN_MAX:  # the largest such epoch is in the year 5138: in range
            return _EPOCH + timedelta(seconds=whole, microseconds=int(fraction[:6].ljust(6, "0")))
    return _from_epoch(Decimal(text))


_PARSED: dict[str, datetime] = {}
_PARSED_MAX = 4096
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_MAX = 10**21     # beyond any epoch in seconds, ms or µs that datetime can hold


def format_time(value: datetime | None) -> str:
    """RFC3339 with nanosecond-free precision; the zero time as CGRateS renders it.

    The text is ``datetime.isoformat`` with ``Z`` for ``+00:00``, built here from a remembered
    ``YYYY-MM-DDTHH:MM:`` per minute (isoformat of an aware datetime is ~1 µs). A session's
    setup/answer time (whole seconds from most agents, microseconds from Kamailio) and balance
    expiries are rendered about 10-20 times per session (events, account rows, EventCost,
    snapshots), so the text of every UTC time is remembered; a clock reading rendered once
    costs one more dict insert. Both memos are bounded (cleared when full).
    """
    if value is None:
        return "0001-01-01T00:00:00Z"
    if value.tzinfo is timezone.utc and value.__class__ is datetime:
        text = _FORMATTED.get(value)
        if text is None:
            text = remember(_FORMATTED, _FORMATTED_MAX, value, format_instant(value))
        return text
    text = value.astimezone(timezone.utc).isoformat()
    return text.replace("+00:00", "Z")


def format_instant(value: datetime | None) -> str:
    """``format_time`` of a clock reading rendered once (an account's update time, written
    with every debit): the same text, but not remembered. Remembering a new instant per
    debit filled ``format_time``'s memo with texts never asked for again, so it was emptied
    every few thousand debits, taking the session times it is there for with it."""
    if value is not None and value.tzinfo is timezone.utc and value.__class__ is datetime:
        micro = value.microsecond
        head = minute_head(value)
        return (f"{head}{TWO_DIGITS[value.second]}.{micro:06}Z" if micro
                else head + TWO_DIGITS[value.second] + "Z")
    return format_time(value)


def minute_head(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:`` of a UTC ``value`` from year 1000 on, remembered per minute:
    RFC3339 renderings (``format_time``, the SQLite writer's ``ts_text``) add the seconds."""
    minute = value.toordinal() * 1440 + value.hour * 60 + value.minute
    head = _MINUTES.get(minute)
    if head is None:
        head = remember(_MINUTES, _MINUTES_MAX, minute, value.isoformat()[:17])
    return head


_FORMATTED: dict[datetime, str] = {}
_FORMATTED_MAX = 8192
_MINUTES: dict[int, str] = {}
_MINUTES_MAX = 4096
TWO_DIGITS = tuple(f"{n:02d}" for n in range(60))   # seconds as text
