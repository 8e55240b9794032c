"""``chargeway cost`` prints what a user checks: the price, its breakdown, or CGRateS JSON; errors exit != 0."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

from chargeway.commands.cost import cost_command, make_cost_command
from engine.tariffplan.loader import load_tariffplan
from tests.engine.rating.ratinghelpers import write_tp

ARGS = ["--subject", "1001", "--destination", "1002", "--answer-time", "2025-01-06T10:00:00Z", "--usage", "2m"]


def run(*args: str, command=cost_command):  # noqa: ANN001, ANN202
    return CliRunner().invoke(command, list(args))


def test_breakdown_of_the_tutorial_call() -> None:
    result = run(*ARGS)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("Cost:        0.7  (exact, *up 4 decimals")
    assert "Rating plan: RP_1001" in lines
    assert "Destination: DST_1002 (prefix 1002)" in lines
    assert "Connect fee: 0.4" in lines
    spans = [line.split() for line in lines[lines.index("Spans:") + 2:]]
    assert spans == [
        ["2025-01-06T10:00:00Z", "0s", "RT_20CNT", "0.2/1m0s", "@0s", "*any", "1", "x", "1m0s", "0.2"],
        ["2025-01-06T10:01:00Z", "1m0s", "RT_20CNT", "0.1/1m0s", "@1m0s", "*any", "60", "x", "1s", "0.1"],
    ]


def test_cgrates_compat_flag_reproduces_0_7002() -> None:
    result = run(*ARGS, "--cgrates-compat")
    assert result.exit_code == 0
    assert result.output.startswith("Cost:        0.7002  (cgrates_compat")


def test_json_is_the_cgrates_event_cost() -> None:
    result = run(*ARGS, "--json")
    assert result.exit_code == 0
    doc = orjson.loads(result.output)
    assert (doc["Cost"], doc["Usage"], doc["StartTime"]) == (0.7, 120_000_000_000, "2025-01-06T10:00:00Z")
    assert doc["Charges"][0]["Increments"][0]["Cost"] == 0.4
    assert set(doc) >= {"Charges", "Rating", "RatingFilters", "Rates", "Timings", "Accounting"}


def test_peak_to_offpeak_split_is_shown() -> None:
    result = run("--subject", "1004", "--destination", "1001", "--answer-time", "2025-01-06T18:59:30Z",
                 "--usage", "60s")
    assert result.exit_code == 0
    assert "Cost:        0.18" in result.output
    assert "PEAK" in result.output and "OFFPEAK_EVENING" in result.output


def test_data_usage_in_units() -> None:
    result = run("--category", "data", "--subject", "1004", "--tor", "*data", "--usage", "10485760")
    assert result.exit_code == 0
    assert result.output.startswith("Cost:        0.1 ")
    assert "10 x 1048576" in result.output


def test_unauthorized_destination_exits_1_with_the_cgrates_error() -> None:
    result = run("--subject", "9999", "--destination", "1002", "--usage", "90s")
    assert result.exit_code == 1
    assert "SERVER_ERROR: UNAUTHORIZED_DESTINATION" in result.output


def test_unknown_category_exits_1_with_rating_plan_not_found() -> None:
    result = run("--category", "video", "--subject", "1001", "--usage", "90s")
    assert result.exit_code == 1
    assert "SERVER_ERROR: RATING_PLAN_NOT_FOUND" in result.output


def test_bad_usage_is_a_usage_error() -> None:
    result = run("--subject", "1001", "--usage", "ninety")
    assert result.exit_code == 2
    assert "invalid duration" in result.output


def test_broken_tpdir_reports_file_line_column(tmp_path: Path) -> None:
    write_tp(tmp_path, Rates="RT,0,0.1,60x,1s,0s")
    result = run(*ARGS, "--tpdir", str(tmp_path))
    assert result.exit_code == 2
    assert "Rates.csv:2: column RateUnit: not a duration: '60x'" in result.output


def test_tpdir_and_plan_provider_choose_the_plan(tmp_path: Path) -> None:
    folder = write_tp(
        tmp_path,
        Destinations="DST,1002",
        Rates="RT,0,1,60s,60s,0s",
        DestinationRates="DR,DST,RT,*up,4,0,",
        RatingPlans="RP,DR,*any,10",
        RatingProfiles="cgrates.org,call,1001,2014-01-01T00:00:00Z,RP,",
    )
    assert run(*ARGS, "--tpdir", str(folder)).output.startswith("Cost:        2 ")
    asked: list[Path | None] = []

    def provider(tpdir: Path | None):  # noqa: ANN202
        asked.append(tpdir)
        return load_tariffplan(folder)

    result = run(*ARGS, command=make_cost_command(provider))
    assert result.output.startswith("Cost:        2 ")
    assert asked == [None]
