"""Values in CGRateS RSR syntax, parsed once into small callables.

``~*req.A;-;~*req.B`` concatenates; ``~*req.X:s/re/repl/`` replaces by regexp (Go
``${1}`` accepted); ``{*conv1&*conv2:arg}`` converts. A reference that finds nothing
makes the whole value ``MISSING``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from engine.memo import remember
from engine.templating.coerce import text
from engine.templating.context import MISSING, Ctx
from engine.templating.converters import Converter, ConverterSpecError, build_converter
from engine.templating.paths import Getter, ParsedPath, PathError, compile_getter, parse_path
from engine.templating.readers import First, compile_first


class ValueSyntaxError(ValueError):
    """A value that cannot be parsed (reported at load with the line)."""


_GO_GROUP = re.compile(r"\$\{(\w+)\}|\$(\d+)|\$\$")


def go_replacement(repl: str) -> str:
    """Go ``regexp`` replacement (``${1}``, ``$1``, ``${name}``) to Python ``\\g<1>``."""
    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return "\\g<" + (match.group(1) or match.group(2)) + ">"
    return _GO_GROUP.sub(sub, repl)


def _regex_rule(pattern: str, repl: str, where: str) -> Converter:
    try:
        compiled = re.compile(pattern)
        py_repl = go_replacement(repl)
        compiled.sub(py_repl, "")  # validate group references once
    except re.error as err:
        raise ValueSyntaxError(f"bad regexp s/{pattern}/{repl}/ in {where!r}: {err}") from None
    except IndexError as err:
        raise ValueSyntaxError(f"bad replacement {repl!r} in {where!r}: {err}") from None

    # The rule is a pure function of its text and the same numbers come back call after
    # call (a Called-Station-Id, a realm): answers are remembered, a bounded number.
    memo: dict[str, str] = {}

    def rule(value: Any) -> str:
        subject = value if type(value) is str else text(value)
        found = memo.get(subject)
        if found is None:
            found = remember(memo, _REGEX_MEMO, subject, go_sub(compiled, py_repl, subject))
        return found
    return rule


_REGEX_MEMO = 4096


def go_sub(pattern: re.Pattern[str], repl: str, subject: str) -> str:
    """Replace all matches the way Go's ``ReplaceAllString`` does.

    Unlike Python, Go ignores an empty match right after the previous match, so
    ``s/(.*)/${1}s/`` turns ``300`` into ``300s`` (Python's ``re.sub`` gives ``300ss``).
    """
    out: list[str] = []
    pos = 0
    last_end = -1
    for match in pattern.finditer(subject):
        start, end = match.span()
        if start == end and start == last_end:
            continue
        out.append(subject[pos:start])
        out.append(match.expand(repl))
        pos = last_end = end
    out.append(subject[pos:])
    return "".join(out)


@dataclass(slots=True)
class Part:
    """One ``;`` part: a constant or a reference with transforms."""

    constant: Any = MISSING
    path: ParsedPath | None = None
    getter: Getter | None = None
    first: First | None = None
    transforms: tuple[Converter, ...] = ()
    source: str = ""

    @property
    def is_ref(self) -> bool:
        return self.getter is not None


def _scan_until_slash(raw: str, pos: int, where: str) -> tuple[str, int]:
    out: list[str] = []
    while pos < len(raw):
        ch = raw[pos]
        if ch == "\\" and pos + 1 < len(raw) and raw[pos + 1] == "/":
            out.append("/")
            pos += 2
            continue
        if ch == "/":
            return "".join(out), pos + 1
        out.append(ch)
        pos += 1
    raise ValueSyntaxError(f"unterminated s/re/repl/ in {where!r}")


def _converters(spec: str, where: str) -> list[Converter]:
    out: list[Converter] = []
    for item in spec.split("&"):
        try:
            out.append(build_converter(item))
        except ConverterSpecError as err:
            raise ValueSyntaxError(f"{err} in {where!r}") from None
    return out


def parse_ref(raw: str, pos: int, *, stop_at_colon: bool) -> tuple[Part, int]:
    """Parse ``~path[:s/re/repl/...][{convs}]`` starting after ``~`` at ``pos``.

    Returns the part and the position after it. In filters (``stop_at_colon``) a ``:``
    that does not start ``s/`` ends the reference.
    """
    start = pos
    depth = 0
    while pos < len(raw):
        ch = raw[pos]
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif depth == 0 and ch in ":{;":
            break
        pos += 1
    path_text = raw[start:pos]
    try:
        parsed = parse_path(path_text)
        getter = compile_getter(parsed)
    except PathError as err:
        raise ValueSyntaxError(str(err)) from None
    transforms: list[Converter] = []
    while pos < len(raw) and raw[pos] == ":":
        if raw.startswith(":s/", pos):
            pattern, pos = _scan_until_slash(raw, pos + 3, raw)
            repl, pos = _scan_until_slash(raw, pos, raw)
            transforms.append(_regex_rule(pattern, repl, raw))
            continue
        if stop_at_colon:
            break
        raise ValueSyntaxError(f"unexpected ':' in {raw!r}: after a path only :s/re/repl/ "
                               "or {*converter} may follow")
    if pos < len(raw) and raw[pos] == "{":
        end = raw.find("}", pos)
        if end < 0:
            raise ValueSyntaxError(f"unterminated {{converters}} in {raw!r}")
        transforms.extend(_converters(raw[pos + 1:end], raw))
        pos = end + 1
    return Part(path=parsed, getter=getter, first=compile_first(parsed, getter),
                transforms=tuple(transforms),
                source=raw[start - 1:pos]), pos


def _split_parts(raw: str) -> list[str]:
    """Split on ``;`` outside brackets, braces and ``s/../../`` rules."""
    parts: list[str] = []
    depth = 0
    start = 0
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            i += 2
            continue
        if ch in "[({":
            depth += 1
        elif ch in "])}":
            depth -= 1
        elif depth == 0 and raw.startswith(":s/", i):
            slashes = 0
            i += 3
            while i < len(raw) and slashes < 2:
                if raw[i] == "\\":
                    i += 2
                    continue
                if raw[i] == "/":
                    slashes += 1
                i += 1
            continue
        elif depth == 0 and ch == ";":
            parts.append(raw[start:i])
            start = i + 1
        i += 1
    parts.append(raw[start:])
    return parts


def parse_part(raw: str) -> Part:
    """A single part: ``~ref...`` or a constant (optionally with ``{*converters}``)."""
    if raw.startswith("~"):
        part, end = parse_ref(raw, 1, stop_at_colon=False)
        if end != len(raw):
            raise ValueSyntaxError(f"unexpected {raw[end:]!r} after reference in {raw!r}")
        return part
    constant: Any = raw.replace("\\;", ";")
    if raw.endswith("}") and "{*" in raw:
        cut = raw.rindex("{*")
        constant = raw[:cut]
        value: Any = constant
        for conv in _converters(raw[cut + 1:-1], raw):
            try:
                value = conv(value)
            except Exception as err:  # noqa: BLE001 - reported as a load error
                raise ValueSyntaxError(f"converting constant {constant!r}: {err}") from None
        constant = value
    return Part(constant=constant, source=raw)


def _eval_part(part: Part) -> Callable[[Ctx], Any]:
    """``ctx -> first value (converted) or MISSING`` for one part."""
    if not part.is_ref:
        const = part.constant
        return lambda ctx: const
    first = part.first
    assert first is not None
    transforms = part.transforms
    if not transforms:
        return first
    if len(transforms) == 1:
        conv = transforms[0]

        def converted_one(ctx: Ctx) -> Any:
            value = first(ctx)
            return MISSING if value is MISSING else conv(value)
        return converted_one

    def converted(ctx: Ctx) -> Any:
        value = first(ctx)
        if value is MISSING:
            return MISSING
        for conv in transforms:
            value = conv(value)
        return value
    return converted


@dataclass(slots=True)
class Value:
    """A compiled value: ``first(ctx)``, ``all(ctx)`` and ``parts(ctx)``."""

    source: Any
    items: list[Part] = field(default_factory=list)
    first: Callable[[Ctx], Any] = lambda ctx: MISSING
    part_fns: tuple[Callable[[Ctx], Any], ...] = ()

    @property
    def refs(self) -> list[Part]:
        return [p for p in self.items if p.is_ref]

    @property
    def constant(self) -> Any:
        """The constant value when there is no reference, else MISSING."""
        if len(self.items) == 1 and not self.items[0].is_ref:
            return self.items[0].constant
        return MISSING

    def all(self, ctx: Ctx) -> list[Any]:
        """Every value of a single reference (``*group``); else the one value."""
        if len(self.items) == 1 and self.items[0].is_ref:
            part = self.items[0]
            assert part.getter is not None
            out = []
            for value in part.getter(ctx):
                for conv in part.transforms:
                    value = conv(value)
                out.append(value)
            return out
        value = self.first(ctx)
        return [] if value is MISSING else [value]

    def parts(self, ctx: Ctx) -> list[Any] | None:
        """Each part's value (for *usage_difference, *sum ...); None if one is missing."""
        out = []
        for fn in self.part_fns:
            value = fn(ctx)
            if value is MISSING:
                return None
            out.append(value)
        return out


def compile_value(raw: Any) -> Value:
    """Compile a YAML value: non-strings are constants; strings are RSR."""
    if raw is None:
        return _make(raw, [Part(constant="", source="")])
    if not isinstance(raw, str):
        return _make(raw, [Part(constant=raw, source=str(raw))])
    items = [parse_part(p) for p in _split_parts(raw)]
    return _make(raw, items)


def constant_value(raw: Any) -> Value:
    """``*constant``/``*filler``: the literal, no ``~`` parsing."""
    return _make(raw, [Part(constant="" if raw is None else raw, source=str(raw))])


def _make(raw: Any, items: list[Part]) -> Value:
    fns = tuple(_eval_part(p) for p in items)
    if len(fns) == 1:
        first = fns[0]
    else:
        def first(ctx: Ctx) -> Any:
            pieces = []
            for fn in fns:
                value = fn(ctx)
                if value is MISSING:
                    return MISSING
                pieces.append(text(value))
            return "".join(pieces)
    return Value(source=raw, items=items, first=first, part_fns=fns)
