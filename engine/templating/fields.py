"""Template fields: a target path, a type and a value, compiled to ``apply(ctx)``.

``apply`` returns the value it wrote, or ``SKIPPED`` (filters failed or nothing to
write). A mandatory field with nothing usable raises ``TemplateFieldError``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import tzinfo
from decimal import Decimal
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.errors import ChargingError
from engine.templating.coerce import duration, is_empty, number, text, time_of, whole
from engine.templating.context import MISSING, Ctx
from engine.templating.errors import ConversionError, TemplateFieldError
from engine.templating.filters import Filter
from engine.templating.paths import Target
from engine.templating.rsr import Value
from engine.units import SECOND

log = logging.getLogger("chargeway.templates")

SKIPPED: Any = type("Skipped", (), {"__repr__": lambda self: "SKIPPED"})()

FIELD_TYPES = (
    "*variable", "*constant", "*composed", "*group", "*filler", "*usage_difference",
    "*cc_usage", "*sum", "*difference", "*multiply", "*divide", "*unix_timestamp",
    "*datetime", "*prefix", "*suffix", "*remove", "*none", "*template",
)
# Types whose value is evaluated part by part (``;`` separates operands, not text).
MULTI_PART = ("*usage_difference", "*cc_usage", "*sum", "*difference", "*multiply", "*divide")

_CONVERSION_ERRORS = (ConversionError, ChargingError, ArithmeticError, ValueError, TypeError,
                      OverflowError)

_GO_LAYOUT = [
    ("2006", "%Y"), ("Z07:00", "%:z"), ("-07:00", "%:z"), ("-0700", "%z"), ("MST", "%Z"),
    ("January", "%B"), ("Jan", "%b"), ("Monday", "%A"), ("Mon", "%a"), (".000000000", ".%f"),
    (".000000", ".%f"), (".000", ".%f"), ("01", "%m"), ("02", "%d"), ("15", "%H"), ("03", "%I"),
    ("04", "%M"), ("05", "%S"), ("06", "%y"), ("PM", "%p"),
]
RFC3339 = "%Y-%m-%dT%H:%M:%S%:z"


def go_layout(layout: str) -> str:
    """A Go time layout (``2006-01-02 15:04:05``) as strftime; strftime passes through."""
    if "%" in layout:
        return layout
    out = layout
    for go, py in _GO_LAYOUT:
        out = out.replace(go, py)
    return out


def format_datetime(value: Any, layout: str, tz: tzinfo) -> str:
    moment = time_of(value).astimezone(tz)
    fmt = layout
    if "%:z" in fmt:
        offset = moment.strftime("%z")
        colon = "Z" if offset in ("+0000", "") else offset[:3] + ":" + offset[3:]
        fmt = fmt.replace("%:z", colon.replace("%", "%%"))
    return moment.strftime(fmt)


def zone(name: str) -> tzinfo:
    """``UTC``, ``Local`` or an IANA zone; ``ValueError`` names a bad one."""
    if name in ("", "UTC", "utc"):
        from datetime import timezone
        return timezone.utc
    if name in ("Local", "local"):
        from datetime import datetime
        local = datetime.now().astimezone().tzinfo
        assert local is not None
        return local
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}") from None


@dataclass(slots=True)
class Field:
    """One compiled field. ``apply`` is set by ``build_apply`` at load."""

    tag: str
    line: int
    target: Target
    kind: str
    value: Value
    filters: list[Filter] = field(default_factory=list)
    mandatory: bool = False
    blocker: bool = False
    new_branch: bool = False
    width: int = 0
    padding: str = ""
    strip: str = ""
    layout: str = RFC3339
    tz: tzinfo | None = None
    apply: Callable[[Ctx], Any] = lambda ctx: SKIPPED

    def source_text(self) -> str:
        refs = self.value.refs
        return refs[0].source.lstrip("~") if refs else ""

    def missing_path(self) -> tuple[str, ...]:
        refs = self.value.refs
        if refs and refs[0].path is not None and refs[0].path.root in ("*req", "*oreq"):
            return refs[0].path.names
        return ()


# --- writing to targets ---------------------------------------------------------------

def _dict_of(ctx: Ctx, root: str) -> dict[str, Any]:
    return getattr(ctx, root[1:])


def _walk_dict(data: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    for name in names[:-1]:
        nxt = data.get(name)
        if not isinstance(nxt, dict):
            nxt = {}
            data[name] = nxt
        data = nxt
    return data


def _writer(target: Target, new_branch: bool) -> tuple[Callable[[Ctx, Any], None],
                                                      Callable[[Ctx, Any], None],
                                                      Callable[[Ctx], Any],
                                                      Callable[[Ctx], None]]:
    """(set, append, get, remove) for a target."""
    names = target.names
    if target.root == "*rep":
        def rep_set(ctx: Ctx, value: Any) -> None:
            ctx.rep.set(names, value, new_branch=new_branch)

        def rep_append(ctx: Ctx, value: Any) -> None:
            ctx.rep.append(names, value, new_branch=new_branch)
        return (rep_set, rep_append, lambda ctx: ctx.rep.get(names),
                lambda ctx: ctx.rep.remove(names))
    attr = target.root[1:]
    leaf = names[-1]
    if len(names) == 1:
        def flat_set(ctx: Ctx, value: Any) -> None:
            getattr(ctx, attr)[leaf] = value
        set_ = flat_set
    else:
        def nested_set(ctx: Ctx, value: Any) -> None:
            _walk_dict(getattr(ctx, attr), names)[leaf] = value
        set_ = nested_set

    def append(ctx: Ctx, value: Any) -> None:
        holder = _walk_dict(getattr(ctx, attr), names)
        current = holder.get(leaf)
        if current is None:
            holder[leaf] = [value]
        elif isinstance(current, list):
            current.append(value)
        else:
            holder[leaf] = [current, value]

    def get(ctx: Ctx) -> Any:
        data: Any = getattr(ctx, attr)
        for name in names:
            if not isinstance(data, dict) or name not in data:
                return None
            data = data[name]
        return data

    def remove(ctx: Ctx) -> None:
        data: Any = getattr(ctx, attr)
        for name in names[:-1]:
            if not isinstance(data, dict) or name not in data:
                return
            data = data[name]
        if isinstance(data, dict):
            data.pop(leaf, None)
    return set_, append, get, remove


# --- computing values per type -----------------------------------------------------------

def _compute(fld: Field) -> Callable[[Ctx], Any]:
    """``ctx -> value or MISSING`` for the field's type (may raise conversion errors)."""
    kind = fld.kind
    value = fld.value
    if kind in ("*variable", "*constant", "*filler", "*composed", "*prefix", "*suffix"):
        return value.first
    if kind == "*usage_difference":
        def usage_difference(ctx: Ctx) -> Any:
            parts = value.parts(ctx)
            if parts is None:
                return MISSING
            end, start = time_of(parts[0], ctx.tz), time_of(parts[1], ctx.tz)
            delta = end - start
            return (delta.days * 86400 + delta.seconds) * SECOND + delta.microseconds * 1000
        return usage_difference
    if kind == "*cc_usage":
        def cc_usage(ctx: Ctx) -> Any:
            parts = value.parts(ctx)
            if parts is None:
                return MISSING
            req_nr = int(number(parts[0]))
            used = duration(parts[1])
            interval = duration(parts[2])
            return used + interval * max(req_nr - 1, 0)
        return cc_usage
    if kind in ("*sum", "*difference", "*multiply", "*divide"):
        return _arith(kind, value)
    if kind == "*unix_timestamp":
        def unix(ctx: Ctx) -> Any:
            raw = value.first(ctx)
            return MISSING if raw is MISSING else int(time_of(raw, ctx.tz).timestamp())
        return unix
    if kind == "*datetime":
        layout = fld.layout
        out_tz = fld.tz

        def dt(ctx: Ctx) -> Any:
            raw = value.first(ctx)
            if raw is MISSING:
                return MISSING
            return format_datetime(time_of(raw, ctx.tz), layout, out_tz or ctx.tz)
        return dt
    return value.first


def _operand(raw: Any) -> Decimal:
    try:
        return number(raw)
    except ConversionError:
        return Decimal(duration(raw))


def _arith(kind: str, value: Value) -> Callable[[Ctx], Any]:
    def compute(ctx: Ctx) -> Any:
        parts = value.parts(ctx)
        if parts is None:
            return MISSING
        nums = [_operand(p) for p in parts]
        result = nums[0]
        for n in nums[1:]:
            if kind == "*sum":
                result += n
            elif kind == "*difference":
                result -= n
            elif kind == "*multiply":
                result *= n
            else:
                if n == 0:
                    raise ConversionError("division by zero")
                result /= n
        return whole(result)
    return compute


def _fit(fld: Field) -> Callable[[Any], str] | None:
    """Fixed width (CGRateS width/strip/padding) or None when not asked."""
    width, padding, strip = fld.width, fld.padding, fld.strip
    if not width:
        return None

    def fit(value: Any) -> str:
        raw = text(value)
        if len(raw) > width:
            if strip in ("*xleft", "*xright", ""):
                if strip == "":
                    return raw
                raise ConversionError(f"{raw!r} is longer than width {width}")
            return raw[-width:] if strip == "*left" else raw[:width]
        if padding == "*left":
            return raw.rjust(width)
        if padding == "*zeroleft":
            return raw.rjust(width, "0")
        if padding == "*right":
            return raw.ljust(width)
        return raw
    return fit


def build_apply(fld: Field, processor_id: str | None) -> Callable[[Ctx], Any]:
    """The per-message closure for a field (explain traces, named lists and the fields the
    code generator does not inline use it; see codegen.py for the hot path)."""
    set_, append, get, remove = _writer(fld.target, fld.new_branch)
    filters = [f.check for f in fld.filters]
    kind = fld.kind
    mandatory = fld.mandatory
    compute = _compute(fld)
    fit = _fit(fld)
    tag = fld.tag

    def fail(reason: str) -> TemplateFieldError:
        log.warning("template processor %s field %s (line %d): %s value at %s",
                    processor_id, tag, fld.line, reason, fld.source_text() or "(constant)")
        return TemplateFieldError(processor_id, tag, fld.source_text(), fld.missing_path(), reason)

    if kind == "*none":
        return lambda ctx: SKIPPED
    if kind == "*remove":
        def apply_remove(ctx: Ctx) -> Any:
            for check in filters:
                if not check(ctx):
                    return SKIPPED
            remove(ctx)
            return None
        return apply_remove

    def apply(ctx: Ctx) -> Any:
        for check in filters:
            if not check(ctx):
                return SKIPPED
        if kind == "*group":
            try:
                values = fld.value.all(ctx)
                if fit is not None:
                    values = [fit(v) for v in values]
            except _CONVERSION_ERRORS as err:
                if mandatory:
                    raise fail(f"invalid ({err})") from None
                log.warning("template processor %s field %s: skipped, %s", processor_id, tag, err)
                return SKIPPED
            if not values:
                if mandatory:
                    raise fail("missing")
                return SKIPPED
            for v in values:
                append(ctx, v)
            return values
        try:
            value = compute(ctx)
            if value is not MISSING and fit is not None:
                value = fit(value)
        except _CONVERSION_ERRORS as err:
            if mandatory:
                raise fail(f"invalid ({err})") from None
            log.warning("template processor %s field %s: skipped, %s", processor_id, tag, err)
            return SKIPPED
        if value is MISSING or (mandatory and is_empty(value)):
            if mandatory:
                raise fail("missing")
            return SKIPPED
        if kind == "*composed":
            current = get(ctx)
            if current is not None:
                value = text(current) + text(value)
        elif kind == "*prefix":
            current = get(ctx)
            value = text(value) + ("" if current is None else text(current))
        elif kind == "*suffix":
            current = get(ctx)
            value = ("" if current is None else text(current)) + text(value)
        set_(ctx, value)
        return value

    return apply
