"""``chargeway cost``: price one call offline and show why it costs what it costs.

Like cgr-console's ``cost`` (APIerSv1.GetCost) but without a running engine: the
tariff plan is read from ``--tpdir`` (or from a ``plan_provider`` the composition
root supplies, e.g. the plan stored in the data dir). ``--json`` prints the
CGRateS EventCost document; errors print the CGRateS error string and exit 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import click
import orjson

from engine.errors import ChargingError, server_error
from engine.event import VOICE
from engine.rating.rater import CostResult, Rater, RatingRequest
from engine.tariffplan.loader import TariffPlanError, load_tariffplan
from engine.tariffplan.model import TariffPlan
from engine.units import format_duration, format_time, parse_duration, parse_time, utcnow

DEFAULT_TPDIR = Path(__file__).resolve().parents[2] / "config" / "tariffplan"

PlanProvider = Callable[[Path | None], TariffPlan]
"""Returns the plan to rate with; receives ``--tpdir`` (None when not given)."""


def tpdir_provider(tpdir: Path | None) -> TariffPlan:
    """Default provider: the given folder, else the sample plan shipped in config/tariffplan."""
    return load_tariffplan(tpdir or DEFAULT_TPDIR)


def _amount(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def _usage_text(value: int, tor: str) -> str:
    return format_duration(value) if tor == VOICE else str(value)


def render(result: CostResult) -> str:
    """Human breakdown: plan, destination, then one line per charged slot."""
    req = result.request
    tor = req.tor
    mode = "cgrates_compat" if result.cgrates_compat else "exact"
    lines = [
        f"Cost:        {_amount(result.cost)}  ({mode}, {result.rounding_method} "
        f"{result.rounding_decimals} decimals, unrounded {_amount(result.unrounded_cost)})",
        f"Usage:       {_usage_text(result.usage, tor)} (charged {_usage_text(result.rated_usage, tor)}) {tor}",
        f"Subject:     *out:{result.subject_key}",
        f"Rating plan: {result.rating_plan_id}",
        f"Destination: {result.destination_id} (prefix {result.prefix or '*any'})",
        f"Connect fee: {_amount(result.connect_fee)}",
    ]
    if result.max_cost_reached:
        first = result.charges[0].destination_rate if result.charges else None
        if first is not None:
            lines.append(f"MaxCost:     {_amount(first.max_cost)} reached ({first.max_cost_strategy})")
    lines.append("Spans:")
    header = ("start", "offset", "slot", "timing", "increments", "cost")
    rows = []
    for charge in result.charges:
        slot = charge.slot
        rows.append((
            format_time(charge.start),
            _usage_text(charge.offset, tor),
            f"{charge.rates_id} {_amount(slot.rate)}/{_usage_text(slot.rate_unit, tor)} "
            f"@{_usage_text(slot.group_interval_start, tor)}",
            charge.timing_id,
            f"{charge.increments} x {_usage_text(charge.increment, tor)}",
            _amount(charge.cost),
        ))
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    for row in (header, *rows):
        lines.append("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return "\n".join(lines)


def make_cost_command(plan_provider: PlanProvider = tpdir_provider) -> click.Command:
    """Build the ``cost`` command around a plan source (the lead can pass a storage-backed one)."""

    @click.command("cost")
    @click.option("--tenant", default="cgrates.org", show_default=True)
    @click.option("--category", default="call", show_default=True)
    @click.option("--subject", required=True, help="Rating subject (usually the account).")
    @click.option("--destination", default="", help="Dialled number; empty rates with *any.")
    @click.option("--answer-time", default="*now", show_default=True,
                  help="RFC3339, unix seconds or *now.")
    @click.option("--usage", required=True, help="Go duration for voice (90s, 2m); units for data/SMS.")
    @click.option("--tor", default=VOICE, show_default=True, help="*voice, *data, *sms, *generic.")
    @click.option("--tpdir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
                  help="Tariff-plan folder (default: the configured plan, config/tariffplan).")
    @click.option("--json", "as_json", is_flag=True, help="Print the CGRateS EventCost JSON.")
    @click.option("--cgrates-compat", is_flag=True,
                  help="Round every increment to 5 decimals like CGRateS (bills match to the cent).")
    def cost_command(tenant: str, category: str, subject: str, destination: str, answer_time: str,
                     usage: str, tor: str, tpdir: Path | None, as_json: bool, cgrates_compat: bool) -> None:
        """Price a call offline with its breakdown (like cgr-console cost)."""
        try:
            start = parse_time(answer_time) or utcnow()
            amount = parse_duration(usage)
        except ChargingError as exc:
            raise click.BadParameter(str(exc)) from None
        if amount < 0:
            raise click.BadParameter(f"negative usage {usage!r}", param_hint="--usage")
        try:
            plan = plan_provider(tpdir)
        except TariffPlanError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        rater = Rater(plan, cgrates_compat=cgrates_compat)
        request = RatingRequest(tenant, category, subject, destination, start, amount, tor)
        try:
            result = rater.rate(request)
        except ChargingError as exc:
            click.echo(server_error(exc.wire()).wire(), err=True)
            sys.exit(1)
        if as_json:
            click.echo(orjson.dumps(result.to_event_cost(), option=orjson.OPT_INDENT_2).decode())
        else:
            click.echo(render(result))

    return cost_command


cost_command = make_cost_command()
