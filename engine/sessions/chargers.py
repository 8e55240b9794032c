"""Charging runs: which runs an event gets, and how each run's event differs.

CGRateS needs ChargerS configured or every charge fails ("ChargerS is disabled").
Here an event always gets the ``*default`` run; Chargers.csv in the tariff plan
adds runs (e.g. a supplier run). Each charger's AttributeIDs may carry inline
overrides ``*constant:*req.Field:Value`` (CGRateS inline attribute syntax),
several joined with ``;`` or listed separately; ``*none`` means no change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from engine.errors import INVALID_ARGUMENT, ChargingError
from engine.event import RUN_ID
from engine.sessions.filters import FieldFilter, compile_filters, match_all

DEFAULT_RUN = "*default"

# Fields a charger attribute may override (others would change the session identity).
OVERRIDABLE = frozenset({"RequestType", "Tenant", "Category", "Account", "Subject", "Destination", "ToR"})


@dataclass(frozen=True, slots=True)
class RunProfile:
    """One run an event is charged under, with its field overrides."""

    run_id: str
    filters: tuple[FieldFilter, ...] = ()
    overrides: tuple[tuple[str, str], ...] = ()

    def applies(self, fields: Mapping[str, Any]) -> bool:
        return match_all(list(self.filters), fields)

    def apply(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The run's event: the original fields with overrides and RunID set."""
        out = dict(fields)
        for name, value in self.overrides:
            out[name] = value
        out[RUN_ID] = self.run_id
        return out


def parse_overrides(attribute_ids: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """``*constant:*req.Subject:SUPPL1`` entries into (field, value) pairs."""
    pairs: list[tuple[str, str]] = []
    for entry in attribute_ids:
        for item in str(entry).split(";"):
            item = item.strip()
            if not item or item == "*none":
                continue
            parts = item.split(":", 2)
            if len(parts) != 3 or parts[0] != "*constant" or not parts[1].startswith("*req."):
                raise ChargingError(INVALID_ARGUMENT, f"charger attribute {item!r}: expected *constant:*req.Field:Value")
            name = parts[1][len("*req."):]
            if name not in OVERRIDABLE:
                raise ChargingError(INVALID_ARGUMENT, f"charger attribute {item!r}: field {name} cannot be overridden")
            pairs.append((name, parts[2]))
    return tuple(pairs)


def run_profiles(plan: Any, tenant: str) -> list[RunProfile]:
    """Run profiles for a tenant from the plan's chargers; the default run if none."""
    chargers = plan.chargers_for(tenant) if plan is not None else []
    profiles = [
        RunProfile(c.run_id or DEFAULT_RUN, tuple(compile_filters(c.filter_ids)), parse_overrides(c.attribute_ids))
        for c in chargers
    ]
    return profiles or [RunProfile(DEFAULT_RUN)]


def select_runs(profiles: list[RunProfile], fields: Callable[[], Mapping[str, Any]],
                only: Iterable[str] | None = None) -> list[RunProfile]:
    """Matching run profiles (deduplicated by RunID, first wins); optional RunIDs subset.

    ``fields`` is called only if some profile has filters: building the mapping costs
    time on the hot path, and the default run has none."""
    wanted = set(only) if only else None
    seen: set[str] = set()
    out: list[RunProfile] = []
    cached: list[Mapping[str, Any]] = []
    for profile in profiles:
        if profile.run_id in seen or (wanted is not None and profile.run_id not in wanted):
            continue
        if profile.filters:
            if not cached:
                cached.append(fields())
            if not profile.applies(cached[0]):
                continue
        seen.add(profile.run_id)
        out.append(profile)
    return out
