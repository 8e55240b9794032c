"""Reading CGRateS argument objects: the flattened CGREvent and typed scalar fields.

A wrong type is answered with an error naming the field (``INVALID_ARGUMENT:
Event must be an object``) rather than a Python traceback string.
"""

from __future__ import annotations

from typing import Any, Mapping

from engine.errors import INVALID_ARGUMENT, ChargingError, mandatory_missing
from engine.event import TENANT


def cgr_event(args: Mapping[str, Any], *, required: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Event fields, APIOpts) of a flattened CGREvent; the top-level Tenant fills the event's."""
    event = args.get("Event")
    if event is None:
        if required:
            raise mandatory_missing("Event")
        event = {}
    if not isinstance(event, dict):
        raise ChargingError(INVALID_ARGUMENT, "Event must be an object")
    fields = dict(event)
    tenant = args.get("Tenant")
    if tenant not in (None, ""):
        if not isinstance(tenant, str):
            raise ChargingError(INVALID_ARGUMENT, "Tenant must be a string")
        fields.setdefault(TENANT, tenant)
    return fields, opts_of(args)


def opts_of(args: Mapping[str, Any]) -> dict[str, Any]:
    opts = args.get("APIOpts")
    if opts is None:
        return {}
    if not isinstance(opts, dict):
        raise ChargingError(INVALID_ARGUMENT, "APIOpts must be an object")
    return {k: v for k, v in opts.items() if k != "*token"}


def flag(args: Mapping[str, Any], name: str) -> bool:
    value = args.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ChargingError(INVALID_ARGUMENT, f"{name} must be true or false")
    return value


def text(args: Mapping[str, Any], name: str, default: str = "", *, required: bool = False) -> str:
    value = args.get(name)
    if value is None or value == "":
        if required:
            raise mandatory_missing(name)
        return default
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ChargingError(INVALID_ARGUMENT, f"{name} must be a string")
    return str(value)


def string_list(args: Mapping[str, Any], name: str) -> list[str]:
    value = args.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        raise ChargingError(INVALID_ARGUMENT, f"{name} must be a list of strings")
    return [str(v) for v in value]


def optional_int(args: Mapping[str, Any], name: str) -> int | None:
    value = args.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ChargingError(INVALID_ARGUMENT, f"{name} must be a non-negative integer")
    return value


def require(args: Mapping[str, Any], *names: str) -> None:
    """``MANDATORY_IE_MISSING: [A B]`` listing every missing one, as CGRateS does."""
    missing = [n for n in names if args.get(n) in (None, "")]
    if missing:
        raise mandatory_missing(*missing)
