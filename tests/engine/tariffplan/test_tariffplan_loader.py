"""The loader reads CGRateS CSV folders as CGRateS writes them, and refuses bad ones precisely:
``File.csv:LINE: column NAME: reason``, with nothing returned (all-or-nothing)."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from engine.tariffplan.loader import COLUMNS, TariffPlanError, load_tariffplan
from engine.tariffplan.model import TariffPlan

SAMPLE = Path(__file__).resolve().parents[3] / "config" / "tariffplan"
SECOND = 1_000_000_000


@pytest.fixture
def tp(tmp_path: Path) -> Path:
    """A copy of the sample plan to break in each test."""
    folder = tmp_path / "tp"
    shutil.copytree(SAMPLE, folder)
    return folder


def append(folder: Path, name: str, row: str) -> int:
    """Append ``row`` to ``name`` and return its line number."""
    path = folder / name
    text = path.read_text()
    if not text.endswith("\n"):
        text += "\n"
    path.write_text(text + row + "\n")
    return len((text + row).splitlines())


def load_error(folder: Path) -> TariffPlanError:
    with pytest.raises(TariffPlanError) as err:
        load_tariffplan(folder)
    return err.value


def test_sample_plan_loads_every_file() -> None:
    plan = load_tariffplan(SAMPLE)
    assert plan.destinations["DST_DE_MOBILE"].prefixes == ("+4915", "+4916", "+4917")
    first, second = plan.rates["RT_20CNT"].slots
    assert (first.connect_fee, first.rate, first.rate_unit, first.rate_increment) == (
        Decimal("0.4"), Decimal("0.2"), 60 * SECOND, 60 * SECOND)
    assert (second.rate_increment, second.group_interval_start) == (SECOND, 60 * SECOND)
    assert plan.rates["RT_DATA"].slots[0].rate_unit == 1048576          # bare numbers are units
    assert plan.timings["OFFPEAK_WEEKEND"].week_days == (0, 6)
    assert plan.timings["PEAK"].start_time == "08:00:00"
    dr = plan.destination_rates["DR_1003_MAXCOST_DISC"][0]
    assert (dr.max_cost, dr.max_cost_strategy, dr.rounding_method, dr.rounding_decimals) == (
        Decimal("0.12"), "*disconnect", "*up", 4)
    profiles = plan.rating_profiles["cgrates.org:call:1001"]
    assert [p.rating_plan_id for p in profiles] == ["RP_1001_OLD", "RP_1001"]   # by activation time
    assert plan.rating_profiles["cgrates.org:call:1004"][0].fallback_subjects == ("1001",)
    voice = plan.actions["TOPUP_VOICE_90S"][0]
    assert (voice.balance_type, voice.units, voice.destination_ids) == ("*voice", Decimal(90 * SECOND),
                                                                        ("DST_1001",))
    assert plan.actions["TOPUP_RST_10"][0].destination_ids == ()                # *any = no filter
    assert [a.actions_id for a in plan.action_plans["AP_PACKAGE_10_VOICE"]] == ["TOPUP_RST_10", "TOPUP_VOICE_90S"]
    assert plan.action_triggers["STANDARD_TRIGGERS"][0].threshold_value == Decimal(2)
    assert set(plan.account_actions) == {"cgrates.org:1001", "cgrates.org:1002", "cgrates.org:1003",
                                         "cgrates.org:1004"}
    assert plan.chargers_for("cgrates.org")[0].run_id == "*default"


def test_sample_plan_survives_storage_round_trip() -> None:
    plan = load_tariffplan(SAMPLE)
    assert TariffPlan.from_bytes(plan.to_bytes()) == plan


def test_comments_blank_lines_quotes_and_bom_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "Destinations.csv").write_text(
        "\ufeff#Id,Prefix\n\nDST_A,100\n# a comment in the middle\n\"DST_A\",\" 101 \"\n", encoding="utf-8")
    plan = load_tariffplan(tmp_path)
    assert plan.destinations["DST_A"].prefixes == ("100", "101")


def test_without_chargers_csv_the_default_run_exists(tp: Path) -> None:
    (tp / "Chargers.csv").unlink()
    plan = load_tariffplan(tp)
    assert plan.chargers == {}
    assert [c.run_id for c in plan.chargers_for("cgrates.org")] == ["*default"]


@pytest.mark.parametrize(("file", "row", "column", "reason"), [
    ("Rates.csv", "RT_BAD,0,0.1,sixty,1s,0s", "RateUnit", "not a duration: 'sixty'"),
    ("Rates.csv", "RT_BAD,0,abc,60s,1s,0s", "Rate", "not a number: 'abc'"),
    ("Rates.csv", "RT_BAD,0,-1,60s,1s,0s", "Rate", "must not be negative"),
    ("Rates.csv", "RT_BAD,0,1,60s,0s,0s", "RateIncrement", "must be greater than 0"),
    ("Rates.csv", "RT_BAD,0,1,0,1s,0s", "RateUnit", "must be greater than 0"),
    ("Rates.csv", "RT_20CNT,0,0.3,60s,1s,60s", "GroupIntervalStart", "duplicate GroupIntervalStart"),
    ("DestinationRates.csv", "DR_BAD,DST_1002,RT_20CNT,*sideways,4,0,", "RoundingMethod", "'*sideways' is not one of"),
    ("DestinationRates.csv", "DR_BAD,DST_1002,RT_20CNT,*up,four,0,", "RoundingDecimals", "not an integer"),
    ("DestinationRates.csv", "DR_BAD,DST_1002,RT_20CNT,,4,0,", "RoundingMethod", "value required"),
    ("DestinationRates.csv", "DR_BAD,DST_1002,RT_20CNT,*up,,0,", "RoundingDecimals", "value required"),
    ("DestinationRates.csv", "DR_BAD,DST_1002,RT_20CNT,*up,4,0,*disconnect", "MaxCost", "needs a MaxCost above 0"),
    ("DestinationRates.csv", "DR_BAD,DST_1002,RT_20CNT,*up,4,1,*later", "MaxCostStrategy", "is not one of"),
    ("DestinationRates.csv", "DR_BAD,DST_NOPE,RT_20CNT,*up,4,0,", "DestinationId", "unknown destination 'DST_NOPE'"),
    ("DestinationRates.csv", "DR_BAD,DST_1002,RT_NOPE,*up,4,0,", "RatesTag", "unknown rates id 'RT_NOPE'"),
    ("Timings.csv", "BAD,*any,13,*any,*any,00:00:00", "Months", "13 out of range 1..12"),
    ("Timings.csv", "BAD,*any,*any,*any,1;9,00:00:00", "WeekDays", "9 out of range 0..7"),
    ("Timings.csv", "BAD,*any,*any,*any,*any,25:00:00", "Time", "out of range 0..23"),
    ("Timings.csv", "PEAK,*any,*any,*any,*any,00:00:00", "Tag", "duplicate timing 'PEAK' (first defined on line 2)"),
    ("RatingPlans.csv", "RP_BAD,DR_1002_20CNT,NO_SUCH_TIMING,10", "TimingTag", "unknown timing 'NO_SUCH_TIMING'"),
    ("RatingPlans.csv", "RP_BAD,DR_NOPE,*any,10", "DestinationRatesId", "unknown destination rates id 'DR_NOPE'"),
    ("RatingPlans.csv", "RP_BAD,DR_1002_20CNT,*any,heavy", "Weight", "not a number"),
    ("RatingProfiles.csv", "cgrates.org,call,2001,yesterday,RP_1001,", "ActivationTime", "not a time: 'yesterday'"),
    ("RatingProfiles.csv", "cgrates.org,call,2001,2014-01-14T00:00:00Z,RP_NOPE,", "RatingPlanId",
     "unknown rating plan 'RP_NOPE'"),
    ("RatingProfiles.csv", "cgrates.org,call,1001,2014-01-14T00:00:00Z,RP_1002,", "ActivationTime", "duplicate"),
    ("Actions.csv", "ACT_BAD,*explode,,,,*monetary,,,,,,,1,,,,10", "Action", "'*explode' is not one of"),
    ("Actions.csv", "ACT_BAD,*topup,,,,,,,,,,,1,,,,10", "BalanceType", "*topup needs a BalanceType"),
    ("Actions.csv", "ACT_BAD,*topup,,,,*monetary,,DST_NOPE,,,,,1,,,,10", "DestinationIds",
     "unknown destination 'DST_NOPE'"),
    ("Actions.csv", "ACT_BAD,*topup,,,,*monetary,,,,,,,1,,maybe,,10", "BalanceBlocker", "expected true or false"),
    ("ActionPlans.csv", "AP_BAD,ACT_NOPE,*asap,10", "ActionsId", "unknown actions id 'ACT_NOPE'"),
    ("ActionPlans.csv", "AP_BAD,TOPUP_RST_10,EVERY_FULL_MOON,10", "TimingId", "unknown timing 'EVERY_FULL_MOON'"),
    ("ActionTriggers.csv", "TR_BAD,,*min_balance,x,false,0,,,,*monetary,,,,,,,,,,LOG_WARNING,10",
     "ThresholdValue", "not a number"),
    ("ActionTriggers.csv", "TR_BAD,,*min_balance,1,false,0,,,,*monetary,,,,,,,,,,ACT_NOPE,10",
     "ActionsId", "unknown actions id 'ACT_NOPE'"),
    ("AccountActions.csv", "cgrates.org,2001,AP_NOPE,,false,false", "ActionPlanId", "unknown action plan 'AP_NOPE'"),
    ("AccountActions.csv", "cgrates.org,1001,AP_PACKAGE_10,,false,false", "Account", "duplicate account"),
    ("AccountActions.csv", "cgrates.org,2001,AP_PACKAGE_10,,perhaps,false", "AllowNegative", "expected true or false"),
])
def test_bad_row_names_file_line_column_and_reason(tp: Path, file: str, row: str, column: str,
                                                   reason: str) -> None:
    line = append(tp, file, row)
    err = load_error(tp)
    assert (err.file, err.line, err.column) == (file, line, column)
    assert reason in err.reason
    assert str(err).startswith(f"{file}:{line}: column {column}: ")


def test_wrong_column_count(tp: Path) -> None:
    line = append(tp, "Rates.csv", "RT_SHORT,0,0.1,60s")
    err = load_error(tp)
    assert str(err) == (f"Rates.csv:{line}: expected 6 columns "
                        f"({','.join(COLUMNS['Rates.csv'])}), got 4")


def test_rate_without_a_slot_at_zero(tp: Path) -> None:
    line = append(tp, "Rates.csv", "RT_LATE,0,0.1,60s,1s,60s")
    err = load_error(tp)
    assert (err.line, err.column) == (line, "GroupIntervalStart")
    assert "no slot starting at 0s" in err.reason


def test_a_single_bad_row_in_the_last_file_loads_nothing(tp: Path) -> None:
    append(tp, "Chargers.csv", "cgrates.org,SUPPLIER,,,*supplier,*none,heavy")
    with pytest.raises(TariffPlanError) as err:
        load_tariffplan(tp)
    assert err.value.file == "Chargers.csv"


def test_missing_folder_and_empty_folder(tmp_path: Path) -> None:
    missing = load_error(tmp_path / "nope")
    assert "not a directory" in str(missing)
    empty = load_error(tmp_path)
    assert "no tariff plan CSV files" in str(empty)


def test_progress_reports_bytes_up_to_the_total(tmp_path: Path) -> None:
    rows = "\n".join(f"DST_{i % 10},{100000 + i}" for i in range(120_000))
    (tmp_path / "Destinations.csv").write_text("#Id,Prefix\n" + rows + "\n")
    calls: list[tuple[str, int, int]] = []
    plan = load_tariffplan(tmp_path, progress=lambda name, done, total: calls.append((name, done, total)))
    assert sum(len(d.prefixes) for d in plan.destinations.values()) == 120_000
    assert len(calls) >= 3
    assert [c[1] for c in calls] == sorted(c[1] for c in calls)
    assert calls[-1][1] == calls[-1][2] == (tmp_path / "Destinations.csv").stat().st_size


def test_cgrates_leniencies_connect_fee_only_slot_fine_rounding_and_other_actions(tp: Path) -> None:
    # CGRateS tutorial2 writes a connect-fee-only rate with RateUnit 0; test plans round to 20
    # decimals; actions chargeway does not execute still load (the account service decides).
    append(tp, "Rates.csv", "RT_10C_CN,0.1,0,0,1s,0")
    append(tp, "DestinationRates.csv", "DR_FINE,DST_1002,RT_10C_CN,*up,20,0,")
    append(tp, "Actions.csv", "ACT_RPC,*cgr_rpc,{},,,,,,,,,,,,,,10")
    plan = load_tariffplan(tp)
    assert plan.rates["RT_10C_CN"].slots[0].rate_unit == 0
    assert plan.destination_rates["DR_FINE"][0].rounding_decimals == 20
    assert plan.actions["ACT_RPC"][0].action == "*cgr_rpc"


def test_control_characters_are_refused(tmp_path: Path) -> None:
    (tmp_path / "Destinations.csv").write_text("#Id,Prefix\nDST_A,100\nDST_A,10\x000\n")
    err = load_error(tmp_path)
    assert (err.file, err.line) == ("Destinations.csv", 3)
    assert "control characters" in err.reason
