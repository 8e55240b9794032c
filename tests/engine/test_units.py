"""Durations, times and money at the API edge follow CGRateS conventions exactly."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from engine.errors import ChargingError
from engine.units import (
    HOUR, MILLISECOND, SECOND, UNLIMITED, format_duration, format_time, parse_duration, parse_time,
    to_decimal,
)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("90s", 90 * SECOND),
        ("1m30s", 90 * SECOND),
        ("3h", 3 * HOUR),
        ("1.5s", 1500 * MILLISECOND),
        ("100ms", 100 * MILLISECOND),
        ("60", 60),  # a bare numeric string is nanoseconds, CGRateS's trap kept on purpose
        (10800000000000, 3 * HOUR),
        ("", 0),
        ("*unlimited", UNLIMITED),
    ],
)
def test_parse_duration(text, ns) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize("bad", ["ten seconds", "5x", "1m30", True, [1]])
def test_bad_duration_is_a_clear_error(bad) -> None:
    with pytest.raises(ChargingError, match="invalid duration"):
        parse_duration(bad)


@given(st.integers(min_value=0, max_value=10**15))
def test_format_then_parse_round_trips(ns: int) -> None:
    assert parse_duration(format_duration(ns)) == ns


def test_times_accept_rfc3339_epoch_sql_and_zero() -> None:
    expected = datetime(2024, 1, 1, 10, 0, tzinfo=timezone.utc)
    assert parse_time("2024-01-01T10:00:00Z") == expected
    assert parse_time("2024-01-01 10:00:00") == expected
    assert parse_time(str(int(expected.timestamp()))) == expected
    assert parse_time("0001-01-01T00:00:00Z") is None
    assert parse_time("") is None
    assert format_time(expected) == "2024-01-01T10:00:00Z"


def test_money_is_exact_decimal() -> None:
    assert to_decimal(0.1) + to_decimal(0.2) == Decimal("0.3")
    with pytest.raises(ChargingError):
        to_decimal("12abc")
