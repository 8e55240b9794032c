"""The small subset of CGRateS inline filters sessions need.

Used by GetActiveSessions/ForceDisconnect (``Filters: ["*string:~*req.Account:1001"]``)
and by charger profiles (``FilterIDs``). Supported: ``*string``, ``*notstring``,
``*prefix``, ``*notprefix``, ``*suffix``, ``*exists``, ``*notexists``, values separated
by ``|`` meaning "any of". A plain ``Field`` -> value mapping means equality.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from engine.errors import INVALID_ARGUMENT, ChargingError

_OPS: dict[str, Callable[[str, tuple[str, ...]], bool]] = {
    "*string": lambda have, want: have in want,
    "*prefix": lambda have, want: any(have.startswith(w) for w in want),
    "*suffix": lambda have, want: any(have.endswith(w) for w in want),
}


@dataclass(frozen=True, slots=True)
class FieldFilter:
    """One parsed ``*type:~*req.Field:values`` rule."""

    kind: str
    field: str
    values: tuple[str, ...]
    negate: bool

    def matches(self, fields: Mapping[str, Any]) -> bool:
        present = self.field in fields and fields[self.field] not in (None, "")
        if self.kind == "*exists":
            return present != self.negate
        have = "" if not present else _text(fields[self.field])
        result = _OPS[self.kind](have, self.values)
        return result != self.negate


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_filter(rule: str) -> FieldFilter:
    """Parse one inline filter; a malformed rule is INVALID_ARGUMENT naming it."""
    parts = rule.split(":", 2)
    if len(parts) < 2 or not parts[0].startswith("*"):
        raise ChargingError(INVALID_ARGUMENT, f"unsupported filter {rule!r}")
    kind = parts[0]
    negate = kind.startswith("*not")
    base = "*" + kind[4:] if negate else kind
    path = parts[1]
    if path.startswith("~"):
        path = path[1:]
    for prefix in ("*req.", "*opts."):
        if path.startswith(prefix):
            path = path[len(prefix):]
            break
    if not path:
        raise ChargingError(INVALID_ARGUMENT, f"filter {rule!r} has no field")
    if base == "*exists":
        return FieldFilter("*exists", path, (), negate)
    if base not in _OPS or len(parts) != 3:
        raise ChargingError(INVALID_ARGUMENT, f"unsupported filter {rule!r}")
    return FieldFilter(base, path, tuple(parts[2].split("|")), negate)


def compile_filters(filters: Iterable[str] | Mapping[str, Any] | None) -> list[FieldFilter]:
    """Inline rules, or a plain mapping of field to value (equality), into matchers."""
    if not filters:
        return []
    if isinstance(filters, Mapping):
        return [FieldFilter("*string", str(k), (_text(v),), False) for k, v in filters.items()]
    if isinstance(filters, str):
        filters = [filters]
    return [parse_filter(str(rule)) for rule in filters if str(rule) and str(rule) != "*none"]


def match_all(filters: list[FieldFilter], fields: Mapping[str, Any]) -> bool:
    return all(f.matches(fields) for f in filters)
