"""Helpers for rating tests: tariff plans written as CGRateS CSV folders and loaded by the real loader."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from itertools import count
from pathlib import Path

from engine.rating import Rater, RatingRequest
from engine.tariffplan.loader import COLUMNS, load_tariffplan
from engine.tariffplan.model import TariffPlan

SECOND = 1_000_000_000
MONDAY_10H = datetime(2025, 1, 6, 10, 0, tzinfo=timezone.utc)

PlanBuilder = Callable[..., TariffPlan]


def write_tp(folder: Path, **tables: str) -> Path:
    """Write ``Name=rows`` as ``Name.csv`` with the CGRateS header comment line."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        file = f"{name}.csv"
        body = textwrap.dedent(rows).strip()
        (folder / file).write_text("#" + ",".join(COLUMNS[file]) + "\n" + body + "\n", encoding="utf-8")
    return folder


def plan_builder(root: Path) -> PlanBuilder:
    """``build(Rates="...", ...)`` -> TariffPlan, each call in a fresh folder under ``root``."""
    numbers = count()

    def build(**tables: str) -> TariffPlan:
        return load_tariffplan(write_tp(root / f"tp{next(numbers)}", **tables))

    return build


def one_rate_plan(build: PlanBuilder, rates: str, *, method: str = "*up", decimals: int = 4,
                  max_cost: str = "0", strategy: str = "", subject: str = "1001",
                  prefix: str = "1002") -> TariffPlan:
    """Subject ``1001`` calling destination ``prefix`` at the rows in ``rates`` (id RT)."""
    return build(
        Destinations=f"DST,{prefix}",
        Rates="\n".join(f"RT,{row}" for row in textwrap.dedent(rates).strip().splitlines()),
        DestinationRates=f"DR,DST,RT,{method},{decimals},{max_cost},{strategy}",
        RatingPlans="RP,DR,*any,10",
        RatingProfiles=f"cgrates.org,call,{subject},2014-01-01T00:00:00Z,RP,",
    )


def call(subject: str = "1001", destination: str = "1002", seconds: float = 0, *,
         start: datetime = MONDAY_10H, tenant: str = "cgrates.org", category: str = "call",
         tor: str = "*voice", offset: int = 0, usage: int | None = None,
         cost_so_far: Decimal = Decimal(0)) -> RatingRequest:
    return RatingRequest(tenant, category, subject, destination, start,
                         int(seconds * SECOND) if usage is None else usage, tor, offset, cost_so_far)


def cost(plan: TariffPlan, seconds: float, *, compat: bool = False, **kwargs: object) -> Decimal:
    return Rater(plan, cgrates_compat=compat).rate(call(seconds=seconds, **kwargs)).cost  # type: ignore[arg-type]
