"""Names sessions share: CGRateS APIOpts keys, idempotency keys, small parsers."""

from __future__ import annotations

from typing import Any, Mapping

from engine.errors import INVALID_ARGUMENT, ChargingError
from engine.event import POSTPAID, PSEUDOPREPAID
from engine.sessions.session import PREPAID_TYPES

OPT_DEBIT_INTERVAL = "*sessionsDebitInterval"
OPT_TTL = "*sessionsTTL"
OPT_CHARGEABLE = "*sessionsChargeable"
OPT_RUN_IDS = "RunIDs"

CHARGED_TYPES = frozenset({*PREPAID_TYPES, PSEUDOPREPAID, POSTPAID})


def term_key(cgrid: str) -> str:
    """Committed with a session's (or one-shot call's) CDRs: it is closed and recorded."""
    return f"term:{cgrid}"


def charged_key(cgrid: str, run_id: str) -> str:
    """Committed with the debit that charged a run in full: never charge it again."""
    return f"charged:{cgrid}:{run_id}"


def opts_of(opts: Any) -> dict[str, Any]:
    """CGRateS APIOpts: a mapping or nothing."""
    if opts is None:
        return {}
    if type(opts) is dict:  # what every agent passes; isinstance(.., Mapping) is an ABC check
        return dict(opts)
    if not isinstance(opts, Mapping):
        raise ChargingError(INVALID_ARGUMENT, "APIOpts must be an object")
    return dict(opts)


def flag(value: Any, default: bool = True) -> bool:
    """A CGRateS boolean option (true/false, "false", 0...)."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in ("false", "0", "no", "off")
