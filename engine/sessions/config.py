"""Session manager settings, built from the ``sessions:`` config mapping.

Durations accept what CGRateS config accepts (``"30s"``, int ns) and are kept
as int nanoseconds. Defaults are the ones documented in config/chargeway.yaml so
the engine behaves the same whether or not a config file is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from engine.errors import INVALID_ARGUMENT, ChargingError
from engine.event import DATA, SMS, VOICE
from engine.units import HOUR, SECOND, parse_duration

DEFAULT_USAGE: dict[str, int] = {VOICE: 3 * HOUR, DATA: 1_048_576, SMS: 1, "*any": 3 * HOUR}

_DURATION_KEYS = (
    "debit_interval", "session_ttl", "session_ttl_debit_loop", "min_dur_low_balance",
    "terminate_grace", "recovery_ttl",
)


@dataclass(frozen=True, slots=True)
class SessionsConfig:
    """How sessions are charged and supervised (CGRateS ``sessions`` section, plus our additions)."""

    # Prepaid debit-loop slice; 0 = manual mode (initiate/update debit the requested Usage).
    debit_interval: int = 30 * SECOND
    # Close sessions not heard from for this long (re-armed on every update); 0 = off.
    session_ttl: int = 0
    # Debit-loop sessions never get updates: they are checked with their agent after this.
    session_ttl_debit_loop: int = 3 * HOUR
    # Warn the agent this long before the credit runs out.
    min_dur_low_balance: int = 10 * SECOND
    # DisconnectSession attempts towards the agent before ending the session ourselves.
    terminate_attempts: int = 5
    # After a successful disconnect, wait this long for the agent's terminate, then end it ourselves.
    terminate_grace: int = 10 * SECOND
    # Sessions recovered after a crash, or whose agent went away, are checked with their agent
    # after this time and closed unless it still has them.
    recovery_ttl: int = 60 * SECOND
    # Write a CDR for calls never answered (OpenSIPS cgrates ``missed`` flag).
    store_missed_calls: bool = True
    # Requested usage when the event has none, per ToR.
    default_usage: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_USAGE))
    # Upper bound of any grant per ToR (CGRateS rals.max_computed_usage); absent = no cap.
    max_usage: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any] | None) -> "SessionsConfig":
        """Validate the ``sessions:`` mapping; a wrong value fails start-up with the key named."""
        section = dict(section or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(section) - known)
        if unknown:
            raise ChargingError(INVALID_ARGUMENT, f"sessions: unknown key(s) {', '.join(unknown)}")
        kwargs: dict[str, Any] = {}
        for key in _DURATION_KEYS:
            if key in section and section[key] is not None:
                value = _duration(key, section[key])
                if value < 0:
                    raise ChargingError(INVALID_ARGUMENT, f"sessions.{key}: must not be negative")
                kwargs[key] = value
        if "terminate_attempts" in section:
            attempts = section["terminate_attempts"]
            if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
                raise ChargingError(INVALID_ARGUMENT, "sessions.terminate_attempts: must be an integer >= 1")
            kwargs["terminate_attempts"] = attempts
        if "store_missed_calls" in section:
            flag = section["store_missed_calls"]
            if not isinstance(flag, bool):
                raise ChargingError(INVALID_ARGUMENT, "sessions.store_missed_calls: must be true or false")
            kwargs["store_missed_calls"] = flag
        for key in ("default_usage", "max_usage"):
            if section.get(key) is not None:
                value = section[key]
                if not isinstance(value, Mapping):
                    raise ChargingError(INVALID_ARGUMENT, f"sessions.{key}: must be a mapping of ToR to usage")
                parsed = {str(tor): _duration(f"{key}.{tor}", v) for tor, v in value.items()}
                if key == "default_usage":
                    parsed = {**DEFAULT_USAGE, **parsed}
                kwargs[key] = parsed
        return cls(**kwargs)

    def usage_for(self, tor: str) -> int:
        """Default requested usage for a ToR (``*any`` entry, else 3h)."""
        return self.default_usage.get(tor, self.default_usage.get("*any", 3 * HOUR))

    def cap(self, tor: str, usage: int) -> int:
        """Apply the per-ToR max_usage cap."""
        limit = self.max_usage.get(tor)
        return usage if limit is None or limit <= 0 else min(usage, limit)


def _duration(key: str, value: Any) -> int:
    try:
        return parse_duration(value)
    except ChargingError:
        raise ChargingError(INVALID_ARGUMENT, f"sessions.{key}: invalid duration {value!r}") from None
