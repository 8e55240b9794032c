"""CGRateS filter strings (``*string:~*req.CC-Request-Type:1;2``) compiled to predicates.

Values are OR'ed; a list of filters is AND'ed by the caller; ``*not<type>`` negates.
A filter over a repeated item passes if any of its values passes.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable

from engine.templating.coerce import duration, is_empty, number, text, time_of
from engine.templating.context import MISSING, Ctx
from engine.templating.errors import ConversionError
from engine.templating.paths import split_top
from engine.templating.rsr import Part, ValueSyntaxError, parse_part, parse_ref
from engine.templating.view import DictView

_VALUE_LESS = ("*exists", "*empty")
_COMPARE = ("*gt", "*gte", "*lt", "*lte", "*eq")
_MATCHING = ("*string", "*prefix", "*suffix", "*regex", "*ipnet")
BASE_TYPES = (*_MATCHING, *_VALUE_LESS, *_COMPARE)
KNOWN = sorted([*BASE_TYPES, *("*not" + t[1:] for t in BASE_TYPES)])


class FilterSyntaxError(ValueError):
    """A filter that cannot be compiled (reported at load with the line)."""


@dataclass(slots=True)
class Filter:
    """A compiled filter: ``check(ctx) -> bool``; ``text`` is what the operator wrote."""

    text: str
    check: Callable[[Ctx], bool]
    values: Callable[[Ctx], list[Any]] | None = None   # the element's values (explain)
    # Shape, for the code generator: base kind, negation, constant values, element.
    kind: str = ""
    negate: bool = False
    constants: tuple[str, ...] | None = None
    element: Part | None = None


def _order_key(value: Any) -> tuple[int, Any] | None:
    """Comparable form: numbers first, then durations, then times."""
    if isinstance(value, datetime):
        return (2, value)
    try:
        return (0, number(value))
    except ConversionError:
        pass
    try:
        return (1, Decimal(duration(value)))
    except ConversionError:
        pass
    try:
        return (2, time_of(value))
    except ConversionError:
        return None


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "*gt": lambda a, b: a > b,
    "*gte": lambda a, b: a >= b,
    "*lt": lambda a, b: a < b,
    "*lte": lambda a, b: a <= b,
    "*eq": lambda a, b: a == b,
}


def _compare(kind: str) -> Callable[[Any, Any], bool]:
    op = _OPS[kind]

    def compare(left: Any, right: Any) -> bool:
        a, b = _order_key(left), _order_key(right)
        if a is None or b is None or a[0] != b[0]:
            return False
        return op(a[1], b[1])
    return compare


def _matcher(kind: str, constants: list[str], raw: str) -> Callable[[str], bool]:
    """A predicate on the element's text against constant values."""
    if kind == "*string":
        wanted = frozenset(constants)
        return wanted.__contains__
    if kind == "*prefix":
        prefixes = tuple(constants)
        return lambda s: s.startswith(prefixes)
    if kind == "*suffix":
        suffixes = tuple(constants)
        return lambda s: s.endswith(suffixes)
    if kind == "*regex":
        try:
            patterns = [re.compile(c) for c in constants]
        except re.error as err:
            raise FilterSyntaxError(f"bad regexp in {raw!r}: {err}") from None
        return lambda s: any(p.search(s) for p in patterns)
    if kind == "*ipnet":
        try:
            nets = [ipaddress.ip_network(c, strict=False) for c in constants]
        except ValueError as err:
            raise FilterSyntaxError(f"bad network in {raw!r}: {err}") from None

        def in_net(s: str) -> bool:
            try:
                addr = ipaddress.ip_address(s.strip())
            except ValueError:
                return False
            return any(addr in n for n in nets)
        return in_net
    raise FilterSyntaxError(f"unknown filter type {kind!r}")  # pragma: no cover - checked before


def _dynamic_match(kind: str) -> Callable[[str, str], bool]:
    if kind == "*string":
        return lambda s, v: s == v
    if kind == "*prefix":
        return lambda s, v: s.startswith(v)
    if kind == "*suffix":
        return lambda s, v: s.endswith(v)
    if kind == "*regex":
        def regex(s: str, v: str) -> bool:
            try:
                return re.search(v, s) is not None
            except re.error:
                return False
        return regex

    def ipnet(s: str, v: str) -> bool:
        try:
            return ipaddress.ip_address(s.strip()) in ipaddress.ip_network(v, strict=False)
        except ValueError:
            return False
    return ipnet


def compile_filter(raw: str) -> Filter:
    """``*type:~element:v1;v2`` -> ``Filter``; ``FilterSyntaxError`` explains a bad one."""
    if isinstance(raw, dict) and len(raw) == 1 and next(iter(raw.values())) is None:
        # YAML read "[*exists:~*req.X:]" as a mapping {"*exists:~*req.X": None}.
        raw = next(iter(raw)) + ":"
    if not isinstance(raw, str):
        raise FilterSyntaxError(f"a filter must be text like '*string:~*req.X:value', not {raw!r}")
    raw = raw.strip()
    kind, sep, rest = raw.partition(":")
    if not sep or not kind.startswith("*"):
        raise FilterSyntaxError(
            f"bad filter {raw!r}: expected '*type:~path:values' (filter profiles by ID are "
            "not supported; write the filter inline)")
    negate = False
    base = kind
    if kind not in BASE_TYPES and kind.startswith("*not") and "*" + kind[4:] in BASE_TYPES:
        negate, base = True, "*" + kind[4:]
    if base not in BASE_TYPES:
        raise FilterSyntaxError(f"unknown filter type {kind!r} in {raw!r} (known: {', '.join(KNOWN)})")
    if rest.startswith("~"):
        element, pos = parse_ref(rest, 1, stop_at_colon=True)
    elif rest.startswith("*"):
        element, pos = parse_ref("~" + rest, 1, stop_at_colon=True)
        pos -= 1
    else:
        raise FilterSyntaxError(f"bad filter {raw!r}: the element must be a path like ~*req.X")
    values_text = ""
    if pos < len(rest):
        if rest[pos] != ":":
            raise FilterSyntaxError(f"bad filter {raw!r}: expected ':' after the path")
        values_text = rest[pos + 1:]
    parts: list[Part] = []
    if base not in _VALUE_LESS:
        if values_text == "":
            raise FilterSyntaxError(f"filter {raw!r} has no value to compare with")
        try:
            parts = [parse_part(v) for v in split_top(values_text, ";")]
        except ValueSyntaxError as err:
            raise FilterSyntaxError(f"in filter {raw!r}: {err}") from None
    check = _build(base, element, parts, raw)
    if negate and base == "*empty":
        values_of = _element_values(element)

        def check(ctx: Ctx) -> bool:
            for value in values_of(ctx):
                if not (value == "" or is_empty(value) or text(value) == ""):
                    return True
            return False
    elif negate:
        positive = check

        def check(ctx: Ctx) -> bool:
            return not positive(ctx)
    constants = (tuple(text(p.constant) for p in parts)
                 if parts and all(not p.is_ref for p in parts) else None)
    return Filter(raw, check, _element_values(element), base, negate, constants, element)


def _element_values(element: Part) -> Callable[[Ctx], list[Any]]:
    getter = element.getter
    transforms = element.transforms
    assert getter is not None
    if not transforms:
        return getter

    def converted(ctx: Ctx) -> list[Any]:
        out = []
        for value in getter(ctx):
            try:
                for conv in transforms:
                    value = conv(value)
            except (ConversionError, ArithmeticError, ValueError, TypeError):
                continue
            out.append(value)
        return out
    return converted


def _build(kind: str, element: Part, parts: list[Part], raw: str) -> Callable[[Ctx], bool]:
    values_of = _element_values(element)
    if kind == "*exists":
        return lambda ctx: bool(values_of(ctx))
    if kind == "*empty":
        def empty(ctx: Ctx) -> bool:
            for value in values_of(ctx):
                if not (value == "" or is_empty(value) or text(value) == ""):
                    return False
            return True
        return empty
    if kind in _COMPARE:
        compare = _compare(kind)
        fns = [p for p in parts]

        def comparing(ctx: Ctx) -> bool:
            found = values_of(ctx)
            if not found:
                return False
            for part in fns:
                right = _part_value(part, ctx)
                if right is MISSING:
                    continue
                if any(compare(left, right) for left in found):
                    return True
            return False
        return comparing
    if all(not p.is_ref for p in parts):
        match = _matcher(kind, [text(p.constant) for p in parts], raw)
        scalar = _scalar_reader(element)
        if scalar is not None:
            def matching_scalar(ctx: Ctx) -> bool:
                value = scalar(ctx)
                if value is MISSING:
                    return False
                if type(value) is str:
                    return match(value)
                if type(value) is list:
                    return any(match(text(v)) for v in value)
                return match(text(value))
            return matching_scalar

        def matching(ctx: Ctx) -> bool:
            for value in values_of(ctx):
                if match(value if type(value) is str else text(value)):
                    return True
            return False
        return matching
    dynamic = _dynamic_match(kind)

    def matching_dynamic(ctx: Ctx) -> bool:
        found = [text(v) for v in values_of(ctx)]
        for part in parts:
            right = _part_value(part, ctx)
            if right is MISSING:
                continue
            wanted = text(right)
            if any(dynamic(s, wanted) for s in found):
                return True
        return False
    return matching_dynamic


def single_name(element: Part | None) -> tuple[str, str] | None:
    """``(root, name)`` when ``element`` reads one plain name (``~*req.Account``: no
    converters, no selectors, no deeper path), else None: the shape of almost every
    processor filter, which the filter readers, the generated code and the processor index
    handle without the general path machinery."""
    if element is None or element.transforms:
        return None
    path = element.path
    if path is None or path.has_selectors or len(path.segments) != 1:
        return None
    return path.root, path.names[0]


def _scalar_reader(element: Part) -> Callable[[Ctx], Any] | None:
    """``ctx -> the raw value`` (a list when repeated, MISSING when absent) for a
    single-name element (``single_name``)."""
    plain = single_name(element)
    if plain is None:
        return None
    root, key = plain
    if root in ("*req", "*oreq"):
        getter = element.getter
        assert getter is not None

        def req_value(ctx: Ctx) -> Any:
            req = ctx.req
            if type(req) is DictView and type(req.data) is dict:
                return req.data.get(key, MISSING)
            found = getter(ctx)
            if not found:
                return MISSING
            return found[0] if len(found) == 1 else found
        return req_value
    if root == "*rep":
        return None
    attr = root[1:]
    return lambda ctx: getattr(ctx, attr).get(key, MISSING)


def _part_value(part: Part, ctx: Ctx) -> Any:
    if not part.is_ref:
        return part.constant
    assert part.getter is not None
    found = part.getter(ctx)
    if not found:
        return MISSING
    value = found[0]
    try:
        for conv in part.transforms:
            value = conv(value)
    except (ConversionError, ArithmeticError, ValueError, TypeError):
        return MISSING
    return value
