"""Typed, immutable objects for every CGRateS tariff-plan CSV row.

One dataclass per CSV file (column order and meaning as in CGRateS
``data/tariffplans/tutorial``). Values are parsed once by the loader: money is
``Decimal``, durations int ns (data/SMS units stay plain ints), times aware UTC.
The ``TariffPlan`` container is what rating and accounts read, and what storage
persists through ``to_bytes``/``from_bytes`` (msgspec msgpack, compact and fast).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import msgspec

ANY = "*any"
ASAP = "*asap"

# RoundingMethod values.
ROUND_UP = "*up"
ROUND_DOWN = "*down"
ROUND_MIDDLE = "*middle"
ROUNDING_METHODS = frozenset({ROUND_UP, ROUND_DOWN, ROUND_MIDDLE})

# MaxCostStrategy values ("" means no cap).
MAX_COST_FREE = "*free"
MAX_COST_DISCONNECT = "*disconnect"
MAX_COST_STRATEGIES = frozenset({"", MAX_COST_FREE, MAX_COST_DISCONNECT})

DEFAULT_RUN_ID = "*default"


@dataclass(frozen=True, slots=True)
class Destination:
    """Destinations.csv: one id, many prefixes (one CSV row per prefix)."""

    id: str
    prefixes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RateSlot:
    """One Rates.csv row: a rate group active from ``group_interval_start`` into the call.

    ``rate_unit``, ``rate_increment`` and ``group_interval_start`` are ns for
    voice and plain units (bytes, messages) for other ToRs, exactly like CGRateS.
    """

    connect_fee: Decimal
    rate: Decimal
    rate_unit: int
    rate_increment: int
    group_interval_start: int


@dataclass(frozen=True, slots=True)
class Rate:
    """Rates.csv id with its slots sorted by ``group_interval_start``."""

    id: str
    slots: tuple[RateSlot, ...]


@dataclass(frozen=True, slots=True)
class DestinationRate:
    """DestinationRates.csv row: which Rates apply to one destination (or ``*any``)."""

    id: str
    destination_id: str
    rates_id: str
    rounding_method: str
    rounding_decimals: int
    max_cost: Decimal
    max_cost_strategy: str


@dataclass(frozen=True, slots=True)
class Timing:
    """Timings.csv row. Empty tuples mean ``*any``.

    ``week_days`` uses Go's numbering (0 = Sunday ... 6 = Saturday) because
    that is what CGRateS tariff plans are written in; the loader also reads 7 as
    Sunday (plans in the wild write weekends as ``6;7``). ``start_time`` is the CSV
    text (``"18:00:00"``, ``""``/``"00:00:00"`` for midnight, ``"*asap"``).
    """

    id: str
    years: tuple[int, ...]
    months: tuple[int, ...]
    month_days: tuple[int, ...]
    week_days: tuple[int, ...]
    start_time: str


@dataclass(frozen=True, slots=True)
class RatingPlanBinding:
    """RatingPlans.csv row: a DestinationRates id active during a timing, with a weight."""

    plan_id: str
    destination_rates_id: str
    timing_id: str
    weight: Decimal


@dataclass(frozen=True, slots=True)
class RatingProfile:
    """RatingProfiles.csv row: from ``activation_time`` this subject rates with ``rating_plan_id``."""

    tenant: str
    category: str
    subject: str
    activation_time: datetime
    rating_plan_id: str
    fallback_subjects: tuple[str, ...]

    @property
    def key(self) -> str:
        return profile_key(self.tenant, self.category, self.subject)


@dataclass(frozen=True, slots=True)
class Action:
    """Actions.csv row (17 columns). Balance fields left empty in the CSV stay None/empty.

    ``expiry_time`` is kept as written (``*unlimited``, ``*month``, RFC3339...)
    because it is resolved relative to the moment the action executes. List fields
    are empty when the CSV says ``*any`` or nothing (no filter); ``!ID`` negations are
    kept. ``units`` of a ``*voice`` balance are nanoseconds (``90s`` in the CSV).
    """

    actions_id: str
    action: str
    extra_parameters: str
    filter: str
    balance_id: str
    balance_type: str
    categories: tuple[str, ...]
    destination_ids: tuple[str, ...]
    rating_subject: str
    shared_group: str
    expiry_time: str
    timing_ids: tuple[str, ...]
    units: Decimal
    balance_weight: Decimal | None
    balance_blocker: bool | None
    balance_disabled: bool | None
    weight: Decimal


@dataclass(frozen=True, slots=True)
class ActionPlan:
    """ActionPlans.csv row: run ``actions_id`` at ``timing_id`` (``*asap``, ``*monthly``...)."""

    id: str
    actions_id: str
    timing_id: str
    weight: Decimal


@dataclass(frozen=True, slots=True)
class ActionTrigger:
    """ActionTriggers.csv row (21 columns): run ``actions_id`` when a balance crosses a threshold."""

    id: str
    unique_id: str
    threshold_type: str
    threshold_value: Decimal
    recurrent: bool
    min_sleep: int
    expiry_time: str
    activation_time: str
    balance_id: str
    balance_type: str
    balance_categories: tuple[str, ...]
    balance_destination_ids: tuple[str, ...]
    balance_rating_subject: str
    balance_shared_group: str
    balance_expiry_time: str
    balance_timing_ids: tuple[str, ...]
    balance_weight: Decimal | None
    balance_blocker: bool | None
    balance_disabled: bool | None
    actions_id: str
    weight: Decimal


@dataclass(frozen=True, slots=True)
class AccountAction:
    """AccountActions.csv row: creates the account and attaches its plan and triggers."""

    tenant: str
    account: str
    action_plan_id: str
    action_triggers_id: str
    allow_negative: bool
    disabled: bool

    @property
    def key(self) -> str:
        return f"{self.tenant}:{self.account}"


@dataclass(frozen=True, slots=True)
class Charger:
    """Chargers.csv profile: one charging run (``run_id``) per matching event."""

    tenant: str
    id: str
    filter_ids: tuple[str, ...]
    activation_interval: str
    run_id: str
    attribute_ids: tuple[str, ...]
    weight: Decimal

    @property
    def key(self) -> str:
        return f"{self.tenant}:{self.id}"


def profile_key(tenant: str, category: str, subject: str) -> str:
    """Key of ``TariffPlan.rating_profiles`` (CGRateS prints it with an ``*out:`` prefix)."""
    return f"{tenant}:{category}:{subject}"


def default_charger(tenant: str) -> Charger:
    """The run every event gets when Chargers.csv is absent (CGRateS tutorial ``DEFAULT``)."""
    return Charger(tenant, "DEFAULT", (), "", DEFAULT_RUN_ID, ("*none",), Decimal(0))


@dataclass(frozen=True, slots=True)
class TariffPlan:
    """A whole loaded tariff plan, every table keyed by its CGRateS id.

    Ids that CGRateS allows on several rows (DestinationRates, RatingPlans,
    Actions, ActionPlans, ActionTriggers) map to tuples in file order.
    ``rating_profiles`` is keyed by ``profile_key`` and sorted by activation time.
    """

    destinations: dict[str, Destination] = field(default_factory=dict)
    rates: dict[str, Rate] = field(default_factory=dict)
    destination_rates: dict[str, tuple[DestinationRate, ...]] = field(default_factory=dict)
    timings: dict[str, Timing] = field(default_factory=dict)
    rating_plans: dict[str, tuple[RatingPlanBinding, ...]] = field(default_factory=dict)
    rating_profiles: dict[str, tuple[RatingProfile, ...]] = field(default_factory=dict)
    actions: dict[str, tuple[Action, ...]] = field(default_factory=dict)
    action_plans: dict[str, tuple[ActionPlan, ...]] = field(default_factory=dict)
    action_triggers: dict[str, tuple[ActionTrigger, ...]] = field(default_factory=dict)
    account_actions: dict[str, AccountAction] = field(default_factory=dict)
    chargers: dict[str, Charger] = field(default_factory=dict)

    def chargers_for(self, tenant: str) -> list[Charger]:
        """Charger profiles of a tenant by weight (highest first); the default run if none."""
        found = [c for c in self.chargers.values() if c.tenant == tenant]
        if not found:
            return [default_charger(tenant)]
        return sorted(found, key=lambda c: c.weight, reverse=True)

    def row_count(self) -> int:
        """Number of CSV rows this plan came from (for load reports)."""
        return (
            sum(len(d.prefixes) for d in self.destinations.values())
            + sum(len(r.slots) for r in self.rates.values())
            + sum(len(v) for v in self.destination_rates.values())
            + len(self.timings)
            + sum(len(v) for v in self.rating_plans.values())
            + sum(len(v) for v in self.rating_profiles.values())
            + sum(len(v) for v in self.actions.values())
            + sum(len(v) for v in self.action_plans.values())
            + sum(len(v) for v in self.action_triggers.values())
            + len(self.account_actions)
            + len(self.chargers)
        )

    def summary(self) -> str:
        """One line for load reports: what the plan contains."""
        prefixes = sum(len(d.prefixes) for d in self.destinations.values())
        parts = [
            f"{len(self.destinations)} destinations ({prefixes} prefixes)",
            f"{len(self.rates)} rates",
            f"{len(self.destination_rates)} destination rates",
            f"{len(self.timings)} timings",
            f"{len(self.rating_plans)} rating plans",
            f"{sum(len(v) for v in self.rating_profiles.values())} rating profiles",
            f"{len(self.actions)} actions",
            f"{len(self.action_plans)} action plans",
            f"{len(self.action_triggers)} action triggers",
            f"{len(self.account_actions)} accounts",
            f"{len(self.chargers)} chargers",
        ]
        return ", ".join(parts)

    def to_bytes(self) -> bytes:
        """Serialise for storage (msgpack; Decimal as exact strings)."""
        return _ENCODER.encode(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> "TariffPlan":
        """Inverse of ``to_bytes``."""
        return _DECODER.decode(data)


_ENCODER = msgspec.msgpack.Encoder(decimal_format="string")
_DECODER = msgspec.msgpack.Decoder(TariffPlan)
