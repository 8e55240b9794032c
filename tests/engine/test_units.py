"""Durations, times and money at the API edge follow CGRateS conventions exactly."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from engine.errors import INVALID_ARGUMENT, ChargingError
from engine.units import (
    HOUR, MILLISECOND, SECOND, UNLIMITED, format_duration, format_instant, format_time, parse_duration, parse_time,
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
        (" 95s ", 95 * SECOND),
        ("+95s", 95 * SECOND),
        ("-5m", -5 * 60 * SECOND),
        ("0s", 0),
        ("-60", -60),
        ("007h", 7 * HOUR),
        (10800000000000, 3 * HOUR),
        ("", 0),
        ("*unlimited", UNLIMITED),
    ],
)
def test_parse_duration(text, ns) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize("bad", ["ten seconds", "5x", "1m30", "s", "\u0663s", "\u0663", True, [1]])
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


@pytest.mark.parametrize("bad", [
    float("nan"), float("inf"), float("-inf"), Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"),
])
def test_non_finite_duration_is_invalid_argument(bad) -> None:
    with pytest.raises(ChargingError) as err:
        parse_duration(bad)
    assert err.value.code == INVALID_ARGUMENT


@pytest.mark.parametrize("bad", [
    1e300, 2**63, -(2**63), Decimal("1e999999"), "9223372036854775808", "99999999999999999999999s",
    "2562048h", "-2562048h",
])
def test_duration_beyond_a_go_duration_is_invalid_argument(bad) -> None:
    with pytest.raises(ChargingError) as err:
        parse_duration(bad)
    assert err.value.code == INVALID_ARGUMENT


def test_longest_go_duration_still_parses() -> None:
    assert parse_duration(2**63 - 1) == 2**63 - 1
    assert parse_duration("2562047h") == 2562047 * HOUR      # Go's longest whole-hour duration


@pytest.mark.parametrize("bad", [
    float("nan"), float("inf"), 1e300, 10**30, -(10**30), "99999999999999999999", 2**70, -1e20,
])
def test_epoch_out_of_range_is_invalid_argument(bad) -> None:
    with pytest.raises(ChargingError) as err:
        parse_time(bad)
    assert err.value.code == INVALID_ARGUMENT


def test_epochs_in_seconds_ms_and_us_still_parse() -> None:
    expected = datetime(2024, 1, 1, 10, 0, tzinfo=timezone.utc)
    seconds = int(expected.timestamp())
    assert parse_time(seconds) == parse_time(seconds * 1000) == parse_time(seconds * 10**6) == expected
    assert parse_time(float(seconds) + 0.5) == expected.replace(microsecond=500_000)
    assert parse_time(-86400) == datetime(1969, 12, 31, tzinfo=timezone.utc)


@pytest.mark.parametrize("bad", [
    "NaN", "nan", "sNaN", "-sNaN", "Infinity", "-Infinity", "inf", " NaN ",
    float("nan"), float("inf"), Decimal("NaN"), Decimal("-Infinity"),
])
def test_money_never_becomes_nan_or_infinite(bad) -> None:
    with pytest.raises(ChargingError) as err:
        to_decimal(bad)
    assert err.value.code == INVALID_ARGUMENT


def test_times_render_as_rfc3339_utc_with_z() -> None:
    assert format_time(datetime(2026, 3, 2, 10, 0, 7, tzinfo=timezone.utc)) == "2026-03-02T10:00:07Z"
    assert format_time(datetime(2026, 3, 2, 10, 0, 7, 5, tzinfo=timezone.utc)) == "2026-03-02T10:00:07.000005Z"
    assert format_time(datetime(5, 1, 1, 0, 0, 59, 120000, tzinfo=timezone.utc)) == "0005-01-01T00:00:59.120000Z"
    assert format_time(datetime(2026, 3, 2, 11, 0, tzinfo=timezone(timedelta(hours=1)))) == "2026-03-02T10:00:00Z"
    assert format_time(None) == "0001-01-01T00:00:00Z"


@given(st.datetimes(timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=-3))]),
                    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_format_time_is_isoformat_in_utc(value: datetime) -> None:
    """Rendered twice (the second time from what the first one remembered), always the same
    text as isoformat in UTC with Z."""
    expected = value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    assert format_time(value) == expected
    assert format_time(value) == expected


def test_a_repeated_time_text_parses_to_the_same_time_and_bad_text_stays_an_error() -> None:
    text = "2026-03-02T10:00:07Z"
    first, again = parse_time(text), parse_time("".join(text))
    assert first == again == datetime(2026, 3, 2, 10, 0, 7, tzinfo=timezone.utc)
    assert format_time(again) == text
    for _ in range(2):
        with pytest.raises(ChargingError):
            parse_time("2026-13-02T10:00:07Z")
    assert parse_time("0001-01-01T00:00:00Z") is None


def test_unix_seconds_text_is_remembered_and_exact():
    """Kamailio sends each call's times as Unix-seconds text in every event: the second parse
    returns the same datetime object, with the microseconds of the text."""
    first = parse_time("1795439929.123456")
    assert first == datetime(2026, 11, 23, 13, 18, 49, 123456, tzinfo=timezone.utc)
    assert parse_time("1795439929.123456") is first
    assert parse_time("*now") is not parse_time("*now")   # a clock reading is never remembered


@pytest.mark.parametrize("text, micros", [
    ("1795439929", 0), ("1795439929.5", 500000), ("1795439929.012808", 12808),
    ("1795439929.0128089", 12808), ("1795439929.000000999", 0), ("1795439929.999999999", 999999),
])
def test_unix_seconds_text_keeps_whole_microseconds(text, micros):
    """Digits past the microsecond are dropped, never rounded up into the next one."""
    assert parse_time(text) == datetime(2026, 11, 23, 13, 18, 49, micros, tzinfo=timezone.utc)


def test_unix_seconds_text_scaled_or_long_still_parses():
    assert parse_time("1795439929123") == datetime(2026, 11, 23, 13, 18, 49, 123000, tzinfo=timezone.utc)
    assert parse_time("1795439929.1234567890123") == datetime(2026, 11, 23, 13, 18, 49, 123456,
                                                              tzinfo=timezone.utc)


@pytest.mark.parametrize("text, ns", [
    ("2504ms", 2_504_000_000), ("0ms", 0), ("20us", 20_000), ("7ns", 7), (" 1000ms ", SECOND),
    ("1.5ms", 1_500_000), ("1s500ms", 1_500_000_000), ("-5ms", -5_000_000),
])
def test_sub_second_go_durations(text, ns):
    """What the Kamailio cfg sends as a call's Usage ("2504ms"), and its neighbours."""
    assert parse_duration(text) == ns


@pytest.mark.parametrize("bad", ["ms", "5mss", "9223372036854775808ns", "5 ms"])
def test_sub_second_nonsense_is_invalid_argument(bad):
    with pytest.raises(ChargingError):
        parse_duration(bad)


@given(st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.sampled_from(
    [timezone.utc, timezone(timedelta(hours=2))])))
def test_a_clock_reading_renders_as_format_time_does(value: datetime) -> None:
    assert format_instant(value) == format_time(value)


def test_a_clock_reading_is_not_remembered() -> None:
    """An account's update time is a new instant per debit: remembering each one would
    empty format_time's memo of the session times every few thousand debits."""
    from engine import units

    kept = dict(units._FORMATTED)
    now = datetime.now(timezone.utc)
    assert format_instant(now) == now.isoformat().replace("+00:00", "Z") and now not in units._FORMATTED
    assert format_instant(None) == "0001-01-01T00:00:00Z"
    assert units._FORMATTED == kept
