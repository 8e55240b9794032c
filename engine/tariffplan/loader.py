"""Load a CGRateS tariff-plan folder into a ``TariffPlan``, all or nothing.

Every CSV is parsed and every cross-reference checked before anything is
returned, so a bad row never leaves a half-loaded plan behind. Errors name the
file, the line, the column and the reason (``Rates.csv:7: column RateUnit:
...``) because operators fix tariff plans in a spreadsheet, not in a debugger.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.errors import ChargingError
from engine.tariffplan.model import (
    ANY,
    MAX_COST_STRATEGIES,
    ROUNDING_METHODS,
    AccountAction,
    Action,
    ActionPlan,
    ActionTrigger,
    Charger,
    Destination,
    DestinationRate,
    Rate,
    RateSlot,
    RatingPlanBinding,
    RatingProfile,
    TariffPlan,
    Timing,
)
from engine.units import parse_duration, parse_time, to_decimal

# (file name, column names) in CGRateS order (data/tariffplans/tutorial, v0.10 layout).
COLUMNS: dict[str, tuple[str, ...]] = {
    "Destinations.csv": ("Id", "Prefix"),
    "Timings.csv": ("Tag", "Years", "Months", "MonthDays", "WeekDays", "Time"),
    "Rates.csv": ("Id", "ConnectFee", "Rate", "RateUnit", "RateIncrement", "GroupIntervalStart"),
    "DestinationRates.csv": ("Id", "DestinationId", "RatesTag", "RoundingMethod", "RoundingDecimals",
                             "MaxCost", "MaxCostStrategy"),
    "RatingPlans.csv": ("Id", "DestinationRatesId", "TimingTag", "Weight"),
    "RatingProfiles.csv": ("Tenant", "Category", "Subject", "ActivationTime", "RatingPlanId",
                           "RatesFallbackSubject"),
    "Actions.csv": ("ActionsId", "Action", "ExtraParameters", "Filter", "BalanceId", "BalanceType",
                    "Categories", "DestinationIds", "RatingSubject", "SharedGroup", "ExpiryTime",
                    "TimingIds", "Units", "BalanceWeight", "BalanceBlocker", "BalanceDisabled",
                    "Weight"),
    "ActionPlans.csv": ("Id", "ActionsId", "TimingId", "Weight"),
    "ActionTriggers.csv": ("Tag", "UniqueId", "ThresholdType", "ThresholdValue", "Recurrent",
                           "MinSleep", "ExpiryTime", "ActivationTime", "BalanceTag", "BalanceType",
                           "BalanceCategories", "BalanceDestinationIds", "BalanceRatingSubject",
                           "BalanceSharedGroup", "BalanceExpiryTime", "BalanceTimingIds",
                           "BalanceWeight", "BalanceBlocker", "BalanceDisabled", "ActionsId",
                           "Weight"),
    "AccountActions.csv": ("Tenant", "Account", "ActionPlanId", "ActionTriggersId", "AllowNegative",
                           "Disabled"),
    "Chargers.csv": ("Tenant", "ID", "FilterIDs", "ActivationInterval", "RunID", "AttributeIDs",
                     "Weight"),
}

# Timings CGRateS knows without a Timings.csv row.
BUILTIN_RATING_TIMINGS = frozenset({ANY})
BUILTIN_ACTION_TIMINGS = frozenset({
    "*asap", ANY, "*every_minute", "*hourly", "*daily", "*weekly", "*monthly",
    "*monthly_estimated", "*month_end", "*yearly",
})
# Action names CGRateS registers (engine/action.go actionFuncMap); which of them the
# account service executes is its business, the loader only rejects typos.
KNOWN_ACTIONS = frozenset({
    "*log", "*reset_triggers", "*cdrlog", "*set_recurrent", "*unset_recurrent", "*allow_negative",
    "*deny_negative", "*reset_account", "*topup_reset", "*topup", "*debit_reset", "*debit",
    "*transfer_balance", "*reset_counters", "*enable_account", "*disable_account", "*mail_async",
    "*set_ddestinations", "*remove_account", "*remove_balance", "*set_balance",
    "*transfer_monetary_default", "*cgr_rpc", "*alter_sessions", "*force_disconnect_sessions",
    "*topup_zero_negative", "*set_expiry", "*publish_account", "*remove_session_costs",
    "*remove_expired", "*reset_account_cdr", "*export", "*reset_threshold", "*reset_stat_queue",
    "*remote_set_account", "*dynamic_threshold", "*dynamic_stats", "*dynamic_attribute",
    "*dynamic_action_plan", "*dynamic_action_plan_accounts", "*dynamic_action", "*dynamic_destination",
    "*dynamic_filter", "*dynamic_route", "*dynamic_ranking", "*dynamic_rating_profile",
    "*dynamic_trend", "*dynamic_resource", "*dynamic_action_trigger", "*sy_publish",
    "*http_post", "*http_post_async", "*cdr_account",
})
THRESHOLD_TYPES = frozenset({
    "*min_balance", "*max_balance", "*min_event_counter", "*max_event_counter",
    "*min_balance_counter", "*max_balance_counter", "*balance_expired",
})
BALANCE_TYPES = frozenset({"*monetary", "*voice", "*data", "*sms", "*mms", "*generic"})

ProgressCallback = Callable[[str, int, int], None]
"""``progress(file_name, bytes_done, bytes_total)``: bytes over the whole folder."""

_PROGRESS_EVERY = 50_000


class TariffPlanError(Exception):
    """A tariff plan that cannot be loaded, with the place a human must fix.

    ``str(err)`` is ``File.csv:LINE: column NAME: reason`` (line and column
    are left out when they do not apply, e.g. a missing folder).
    """

    def __init__(self, file: str, line: int, column: str, reason: str) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.reason = reason
        where = file + (f":{line}" if line else "")
        what = f"column {column}: {reason}" if column else reason
        super().__init__(f"{where}: {what}")


class _RowError(Exception):
    """Raised by value parsers; the loader adds file and line."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


@dataclass(slots=True)
class _Ref:
    """A reference to check once every file is parsed."""

    file: str
    line: int
    column: str
    table: str
    target: str


# --- value parsers -----------------------------------------------------------------

def _decimal(column: str, text: str, *, default: Decimal | None = None,
             non_negative: bool = True) -> Decimal:
    if text == "":
        if default is not None:
            return default
        raise _RowError(column, "value required")
    try:
        value = to_decimal(text)
    except ChargingError:
        raise _RowError(column, f"not a number: {text!r}") from None
    if not value.is_finite():
        raise _RowError(column, f"not a finite number: {text!r}")
    if non_negative and value < 0:
        raise _RowError(column, f"must not be negative: {text!r}")
    return value


def _units(balance_type: str, text: str) -> Decimal:
    """Actions Units: ns for ``*voice`` (``90s`` or a bare ns count, as CGRateS), else a number."""
    if balance_type == "*voice" and text and not text.lstrip("-").replace(".", "", 1).isdigit():
        return Decimal(_duration("Units", text))
    return _decimal("Units", text, default=Decimal(0), non_negative=False)


def _opt_decimal(column: str, text: str) -> Decimal | None:
    return None if text == "" else _decimal(column, text, non_negative=False)


def _duration(column: str, text: str, *, positive: bool = False) -> int:
    if text == "":
        if positive:
            raise _RowError(column, "value required")
        return 0
    try:
        value = parse_duration(text)
    except ChargingError:
        raise _RowError(column, f"not a duration: {text!r} (use 60s, 1m30s or a number of ns/units)") from None
    if value < 0:
        raise _RowError(column, f"must not be negative: {text!r}")
    if positive and value == 0:
        raise _RowError(column, f"must be greater than 0: {text!r}")
    return value


def _int(column: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _RowError(column, f"not an integer: {text!r}") from None
    if not low <= value <= high:
        raise _RowError(column, f"{value} out of range {low}..{high}")
    return value


def _bool(column: str, text: str) -> bool:
    value = _opt_bool(column, text)
    return bool(value)


def _opt_bool(column: str, text: str) -> bool | None:
    low = text.lower()
    if low == "":
        return None
    if low == "true":
        return True
    if low == "false":
        return False
    raise _RowError(column, f"expected true or false, got {text!r}")


def _list(text: str) -> tuple[str, ...]:
    """A ``;`` list where ``*any``/empty means "no restriction" (empty tuple)."""
    if text == "" or text == ANY:
        return ()
    return tuple(part.strip() for part in text.split(";") if part.strip())


def _int_list(column: str, text: str, low: int, high: int) -> tuple[int, ...]:
    return tuple(_int(column, part, low, high) for part in _list(text))


def _required(column: str, text: str) -> str:
    if text == "":
        raise _RowError(column, "value required")
    return text


def _clock(column: str, text: str) -> str:
    if text in ("", "*asap", "*any"):
        return text
    parts = text.split(":")
    if len(parts) != 3:
        raise _RowError(column, f"expected HH:MM:SS, got {text!r}")
    _int(column, parts[0], 0, 23)
    _int(column, parts[1], 0, 59)
    _int(column, parts[2], 0, 59)
    return text


def _time(column: str, text: str) -> datetime:
    try:
        value = parse_time(_required(column, text))
    except ChargingError:
        raise _RowError(column, f"not a time: {text!r} (use RFC3339, e.g. 2014-01-14T00:00:00Z)") from None
    if value is None:
        raise _RowError(column, f"not a time: {text!r}")
    return value


def _choice(column: str, text: str, allowed: frozenset[str]) -> str:
    if text not in allowed:
        raise _RowError(column, f"{text!r} is not one of {', '.join(sorted(a or '(empty)' for a in allowed))}")
    return text


# --- the loader ----------------------------------------------------------------------

class _Builder:
    """Accumulates rows of one load; turned into a TariffPlan only if everything checks out."""

    def __init__(self) -> None:
        self.prefixes: dict[str, list[str]] = {}
        self.rate_slots: dict[str, list[tuple[int, RateSlot]]] = {}
        self.destination_rates: dict[str, list[DestinationRate]] = {}
        self.timings: dict[str, Timing] = {}
        self.rating_plans: dict[str, list[RatingPlanBinding]] = {}
        self.rating_profiles: dict[str, list[RatingProfile]] = {}
        self.actions: dict[str, list[Action]] = {}
        self.action_plans: dict[str, list[ActionPlan]] = {}
        self.action_triggers: dict[str, list[ActionTrigger]] = {}
        self.account_actions: dict[str, AccountAction] = {}
        self.chargers: dict[str, Charger] = {}
        self.refs: list[_Ref] = []
        self.seen: dict[tuple[str, ...], int] = {}

    def ref(self, file: str, line: int, column: str, table: str, target: str) -> None:
        self.refs.append(_Ref(file, line, column, table, target))

    def unique(self, key: tuple[str, ...], line: int, column: str, what: str) -> None:
        first = self.seen.get(key)
        if first is not None:
            raise _RowError(column, f"duplicate {what} (first defined on line {first})")
        self.seen[key] = line

    # One method per file; ``row`` already has the right number of stripped fields.

    def destinations(self, row: list[str], line: int, file: str) -> None:
        dest_id = _required("Id", row[0])
        prefix = _required("Prefix", row[1])
        if " " in prefix:
            raise _RowError("Prefix", f"prefix must not contain spaces: {prefix!r}")
        bucket = self.prefixes.get(dest_id)
        if bucket is None:
            self.prefixes[dest_id] = [prefix]
        else:
            bucket.append(prefix)

    def timings_row(self, row: list[str], line: int, file: str) -> None:
        tag = _required("Tag", row[0])
        self.unique(("Timings", tag), line, "Tag", f"timing {tag!r}")
        week_days = tuple(sorted({d % 7 for d in _int_list("WeekDays", row[4], 0, 7)}))
        self.timings[tag] = Timing(
            id=tag,
            years=_int_list("Years", row[1], 1, 9999),
            months=_int_list("Months", row[2], 1, 12),
            month_days=_int_list("MonthDays", row[3], 1, 31),
            week_days=week_days,
            start_time=_clock("Time", row[5]),
        )

    def rates(self, row: list[str], line: int, file: str) -> None:
        rate_id = _required("Id", row[0])
        rate = _decimal("Rate", row[2])
        slot = RateSlot(
            connect_fee=_decimal("ConnectFee", row[1], default=Decimal(0)),
            rate=rate,
            # a connect-fee-only slot (Rate 0) may leave RateUnit 0, as CGRateS plans do
            rate_unit=_duration("RateUnit", row[3], positive=rate != 0),
            rate_increment=_duration("RateIncrement", row[4], positive=True),
            group_interval_start=_duration("GroupIntervalStart", row[5]),
        )
        self.unique(("Rates", rate_id, str(slot.group_interval_start)), line, "GroupIntervalStart",
                    f"GroupIntervalStart {row[5]!r} for rate {rate_id!r}")
        self.rate_slots.setdefault(rate_id, []).append((line, slot))

    def destination_rates_row(self, row: list[str], line: int, file: str) -> None:
        dr_id = _required("Id", row[0])
        destination = _required("DestinationId", row[1])
        rates_id = _required("RatesTag", row[2])
        # No silent default: how money is rounded must be written in the plan.
        method = _choice("RoundingMethod", _required("RoundingMethod", row[3]), ROUNDING_METHODS)
        decimals = _int("RoundingDecimals", _required("RoundingDecimals", row[4]), 0, 30)
        max_cost = _decimal("MaxCost", row[5], default=Decimal(0))
        strategy = _choice("MaxCostStrategy", row[6], MAX_COST_STRATEGIES)
        if strategy and max_cost == 0:
            raise _RowError("MaxCost", f"MaxCostStrategy {strategy} needs a MaxCost above 0")
        self.unique(("DestinationRates", dr_id, destination), line, "DestinationId",
                    f"destination {destination!r} in {dr_id!r}")
        if destination != ANY:
            self.ref(file, line, "DestinationId", "destinations", destination)
        self.ref(file, line, "RatesTag", "rates", rates_id)
        self.destination_rates.setdefault(dr_id, []).append(
            DestinationRate(dr_id, destination, rates_id, method, decimals, max_cost, strategy))

    def rating_plans_row(self, row: list[str], line: int, file: str) -> None:
        plan_id = _required("Id", row[0])
        dr_id = _required("DestinationRatesId", row[1])
        timing = row[2] or ANY
        weight = _decimal("Weight", row[3], default=Decimal(0), non_negative=False)
        self.unique(("RatingPlans", plan_id, dr_id, timing), line, "TimingTag",
                    f"binding {dr_id!r}/{timing!r} in plan {plan_id!r}")
        self.ref(file, line, "DestinationRatesId", "destination_rates", dr_id)
        if timing not in BUILTIN_RATING_TIMINGS:
            self.ref(file, line, "TimingTag", "timings", timing)
        self.rating_plans.setdefault(plan_id, []).append(RatingPlanBinding(plan_id, dr_id, timing, weight))

    def rating_profiles_row(self, row: list[str], line: int, file: str) -> None:
        profile = RatingProfile(
            tenant=_required("Tenant", row[0]),
            category=_required("Category", row[1]),
            subject=_required("Subject", row[2]),
            activation_time=_time("ActivationTime", row[3]),
            rating_plan_id=_required("RatingPlanId", row[4]),
            fallback_subjects=_list(row[5]) if row[5] != ANY else (ANY,),
        )
        self.unique(("RatingProfiles", profile.key, profile.activation_time.isoformat()), line,
                    "ActivationTime", f"activation time for {profile.key!r}")
        self.ref(file, line, "RatingPlanId", "rating_plans", profile.rating_plan_id)
        self.rating_profiles.setdefault(profile.key, []).append(profile)

    def actions_row(self, row: list[str], line: int, file: str) -> None:
        actions_id = _required("ActionsId", row[0])
        action = _choice("Action", row[1], KNOWN_ACTIONS)
        balance_type = row[5]
        if balance_type:
            _choice("BalanceType", balance_type, BALANCE_TYPES)
        if action in ("*topup", "*topup_reset", "*debit", "*debit_reset", "*set_balance") and not balance_type:
            raise _RowError("BalanceType", f"{action} needs a BalanceType")
        destination_ids = _list(row[7])
        for dest in destination_ids:
            self.ref(file, line, "DestinationIds", "destinations", dest.lstrip("!"))
        timing_ids = _list(row[11])
        for timing in timing_ids:
            if timing not in BUILTIN_ACTION_TIMINGS:
                self.ref(file, line, "TimingIds", "timings", timing)
        self.actions.setdefault(actions_id, []).append(Action(
            actions_id=actions_id,
            action=action,
            extra_parameters=row[2],
            filter=row[3],
            balance_id=row[4],
            balance_type=balance_type,
            categories=_list(row[6]),
            destination_ids=destination_ids,
            rating_subject=row[8],
            shared_group=row[9],
            expiry_time=row[10],
            timing_ids=timing_ids,
            units=_units(balance_type, row[12]),
            balance_weight=_opt_decimal("BalanceWeight", row[13]),
            balance_blocker=_opt_bool("BalanceBlocker", row[14]),
            balance_disabled=_opt_bool("BalanceDisabled", row[15]),
            weight=_decimal("Weight", row[16], default=Decimal(0), non_negative=False),
        ))

    def action_plans_row(self, row: list[str], line: int, file: str) -> None:
        plan_id = _required("Id", row[0])
        actions_id = _required("ActionsId", row[1])
        timing = _required("TimingId", row[2])
        self.ref(file, line, "ActionsId", "actions", actions_id)
        if timing not in BUILTIN_ACTION_TIMINGS:
            self.ref(file, line, "TimingId", "timings", timing)
        self.action_plans.setdefault(plan_id, []).append(ActionPlan(
            plan_id, actions_id, timing, _decimal("Weight", row[3], default=Decimal(0), non_negative=False)))

    def action_triggers_row(self, row: list[str], line: int, file: str) -> None:
        tag = _required("Tag", row[0])
        actions_id = _required("ActionsId", row[19])
        self.ref(file, line, "ActionsId", "actions", actions_id)
        balance_type = row[9]
        if balance_type:
            _choice("BalanceType", balance_type, BALANCE_TYPES)
        self.action_triggers.setdefault(tag, []).append(ActionTrigger(
            id=tag,
            unique_id=row[1],
            threshold_type=_choice("ThresholdType", row[2], THRESHOLD_TYPES),
            threshold_value=_decimal("ThresholdValue", row[3], non_negative=False),
            recurrent=_bool("Recurrent", row[4]),
            min_sleep=_duration("MinSleep", row[5]),
            expiry_time=row[6],
            activation_time=row[7],
            balance_id=row[8],
            balance_type=balance_type,
            balance_categories=_list(row[10]),
            balance_destination_ids=_list(row[11]),
            balance_rating_subject=row[12],
            balance_shared_group=row[13],
            balance_expiry_time=row[14],
            balance_timing_ids=_list(row[15]),
            balance_weight=_opt_decimal("BalanceWeight", row[16]),
            balance_blocker=_opt_bool("BalanceBlocker", row[17]),
            balance_disabled=_opt_bool("BalanceDisabled", row[18]),
            actions_id=actions_id,
            weight=_decimal("Weight", row[20], default=Decimal(0), non_negative=False),
        ))

    def account_actions_row(self, row: list[str], line: int, file: str) -> None:
        account = AccountAction(
            tenant=_required("Tenant", row[0]),
            account=_required("Account", row[1]),
            action_plan_id=row[2],
            action_triggers_id=row[3],
            allow_negative=_bool("AllowNegative", row[4]),
            disabled=_bool("Disabled", row[5]),
        )
        self.unique(("AccountActions", account.key), line, "Account", f"account {account.key!r}")
        if account.action_plan_id:
            for plan_id in _list(account.action_plan_id):
                self.ref(file, line, "ActionPlanId", "action_plans", plan_id)
        if account.action_triggers_id:
            for trigger_id in _list(account.action_triggers_id):
                self.ref(file, line, "ActionTriggersId", "action_triggers", trigger_id)
        self.account_actions[account.key] = account

    def chargers_row(self, row: list[str], line: int, file: str) -> None:
        tenant = _required("Tenant", row[0])
        charger_id = _required("ID", row[1])
        key = f"{tenant}:{charger_id}"
        previous = self.chargers.get(key)
        # CGRateS lets later rows of the same profile add filters/attributes.
        filters = _list(row[2])
        attributes = _list(row[5])
        if previous is None:
            self.chargers[key] = Charger(
                tenant, charger_id, filters, row[3], _required("RunID", row[4]), attributes,
                _decimal("Weight", row[6], default=Decimal(0), non_negative=False))
        else:
            self.chargers[key] = Charger(
                tenant, charger_id, previous.filter_ids + filters, previous.activation_interval or row[3],
                row[4] or previous.run_id, previous.attribute_ids + attributes,
                previous.weight if row[6] == "" else _decimal("Weight", row[6], non_negative=False))

    def check_references(self, tables: dict[str, Any]) -> None:
        for ref in self.refs:
            if ref.target not in tables[ref.table]:
                what = {
                    "destinations": "destination", "rates": "rates id",
                    "destination_rates": "destination rates id", "timings": "timing",
                    "rating_plans": "rating plan", "actions": "actions id",
                    "action_plans": "action plan", "action_triggers": "action triggers id",
                }[ref.table]
                raise TariffPlanError(ref.file, ref.line, ref.column, f"unknown {what} {ref.target!r}")

    def build(self) -> TariffPlan:
        rates: dict[str, Rate] = {}
        for rate_id, slots in self.rate_slots.items():
            ordered = sorted(slots, key=lambda item: item[1].group_interval_start)
            rates[rate_id] = Rate(rate_id, tuple(slot for _, slot in ordered))
        plan = TariffPlan(
            destinations={k: Destination(k, tuple(v)) for k, v in self.prefixes.items()},
            rates=rates,
            destination_rates={k: tuple(v) for k, v in self.destination_rates.items()},
            timings=self.timings,
            rating_plans={k: tuple(v) for k, v in self.rating_plans.items()},
            rating_profiles={k: tuple(sorted(v, key=lambda p: p.activation_time))
                             for k, v in self.rating_profiles.items()},
            actions={k: tuple(v) for k, v in self.actions.items()},
            action_plans={k: tuple(v) for k, v in self.action_plans.items()},
            action_triggers={k: tuple(v) for k, v in self.action_triggers.items()},
            account_actions=self.account_actions,
            chargers=self.chargers,
        )
        self.check_references({
            "destinations": plan.destinations, "rates": plan.rates,
            "destination_rates": plan.destination_rates, "timings": plan.timings,
            "rating_plans": plan.rating_plans, "actions": plan.actions,
            "action_plans": plan.action_plans, "action_triggers": plan.action_triggers,
        })
        for rate in rates.values():
            if rate.slots[0].group_interval_start != 0:
                line = min(line for line, _ in self.rate_slots[rate.id])
                raise TariffPlanError("Rates.csv", line, "GroupIntervalStart",
                                      f"rate {rate.id!r} has no slot starting at 0s")
        return plan


def _handlers(builder: _Builder) -> dict[str, Callable[[list[str], int, str], None]]:
    return {
        "Destinations.csv": builder.destinations,
        "Timings.csv": builder.timings_row,
        "Rates.csv": builder.rates,
        "DestinationRates.csv": builder.destination_rates_row,
        "RatingPlans.csv": builder.rating_plans_row,
        "RatingProfiles.csv": builder.rating_profiles_row,
        "Actions.csv": builder.actions_row,
        "ActionPlans.csv": builder.action_plans_row,
        "ActionTriggers.csv": builder.action_triggers_row,
        "AccountActions.csv": builder.account_actions_row,
        "Chargers.csv": builder.chargers_row,
    }


def load_tariffplan(folder: str | os.PathLike[str], progress: ProgressCallback | None = None) -> TariffPlan:
    """Parse and validate every known CSV in ``folder``; raise ``TariffPlanError`` on the first problem.

    Files CGRateS has but chargeway does not use (Filters.csv, Attributes.csv...)
    are ignored. At least one known file must exist.
    """
    root = Path(folder)
    if not root.is_dir():
        raise TariffPlanError(str(root), 0, "", "not a directory")
    present = [(name, root / name) for name in COLUMNS if (root / name).is_file()]
    if not present:
        raise TariffPlanError(str(root), 0, "", "no tariff plan CSV files (Destinations.csv, Rates.csv, ...)")
    total = sum(path.stat().st_size for _, path in present)
    builder = _Builder()
    handlers = _handlers(builder)
    done = 0
    for name, path in present:
        done = _load_file(name, path, handlers[name], done, total, progress)
    return builder.build()


def _load_file(name: str, path: Path, handler: Callable[[list[str], int, str], None],
               done: int, total: int, progress: ProgressCallback | None) -> int:
    width = len(COLUMNS[name])
    header = ",".join(COLUMNS[name])
    finished = done + path.stat().st_size
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            line_no = 0
            for raw in handle:
                line_no += 1
                done += len(raw)
                text = raw.strip()
                if not text or text[0] == "#":
                    continue
                if not text.isprintable():
                    raise TariffPlanError(name, line_no, "", "contains control characters (binary data?)")
                if '"' in text:
                    row = [field.strip() for field in next(csv.reader([text]))]
                else:
                    row = [field.strip() for field in text.split(",")]
                if len(row) != width:
                    raise TariffPlanError(name, line_no, "",
                                          f"expected {width} columns ({header}), got {len(row)}")
                try:
                    handler(row, line_no, name)
                except _RowError as err:
                    raise TariffPlanError(name, line_no, err.column, err.reason) from None
                if progress is not None and line_no % _PROGRESS_EVERY == 0:
                    progress(name, done, total)
    except UnicodeDecodeError as err:
        raise TariffPlanError(name, 0, "", f"not UTF-8 text ({err.reason})") from None
    except OSError as err:
        raise TariffPlanError(name, 0, "", f"cannot read: {err.strerror}") from None
    if progress is not None:
        progress(name, finished, total)
    return finished
