"""Paths (``*req.MSCC[0].Used-Service-Unit.CC-Time``) parsed once into accessor functions.

A read path becomes ``getter(ctx) -> list`` (every value found, ``[]`` if none); a
write path becomes a ``Target`` (root + names). Selectors are resolved here through
``MessageView.children`` so agents' views only walk plain names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from engine.templating.coerce import text
from engine.templating.context import Ctx
from engine.templating.view import DictView, MessageView, walk

Getter = Callable[[Ctx], list]

READ_ROOTS = ("*req", "*oreq", "*vars", "*cgreq", "*opts", "*cgrep", "*rep", "*tmp")
REQUEST_WRITE_ROOTS = ("*cgreq", "*opts", "*tmp", "*vars")
REPLY_WRITE_ROOTS = ("*rep", "*tmp", "*vars")
_UNSUPPORTED = {
    "*cfg": "config access", "*uch": "the cross-request cache", "*diamreq": "outbound requests",
    "*radDAReq": "outbound requests", "*hdr": "file headers", "*trl": "file trailers",
    "*ec": "event costs",
}


class PathError(ValueError):
    """A path that cannot be compiled (reported at load with the line)."""


@dataclass(frozen=True, slots=True)
class Segment:
    name: str
    index: int | None = None
    match_path: tuple[str, ...] | None = None
    match_values: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ParsedPath:
    root: str
    segments: tuple[Segment, ...]
    text: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.segments)

    @property
    def has_selectors(self) -> bool:
        return any(s.index is not None or s.match_path is not None for s in self.segments)


def split_top(textv: str, sep: str) -> list[str]:
    """Split on ``sep`` outside ``[]``, ``()`` and ``{}``."""
    out: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(textv):
        if ch in "[({":
            depth += 1
        elif ch in "])}":
            depth -= 1
        elif ch == sep and depth == 0:
            out.append(textv[start:i])
            start = i + 1
    out.append(textv[start:])
    return out


def _parse_segment(raw: str, where: str) -> Segment:
    if "[" not in raw:
        if not raw or any(c in raw for c in "]()~{} "):
            raise PathError(f"bad path segment {raw!r} in {where!r}")
        return Segment(raw)
    if not raw.endswith("]"):
        raise PathError(f"bad selector in {raw!r} of {where!r}: expected ']' at the end")
    name, sel = raw[:-1].split("[", 1)
    if not name:
        raise PathError(f"selector without a name in {where!r}")
    sel = sel.strip()
    if sel.lstrip("-").isdigit():
        return Segment(name, index=int(sel))
    if sel.startswith("~") and sel.endswith(")") and "(" in sel:
        rel, values = sel[1:-1].split("(", 1)
        rel_names = tuple(rel.split("."))
        if not all(rel_names):
            raise PathError(f"bad selector path {rel!r} in {where!r}")
        return Segment(name, match_path=rel_names, match_values=frozenset(values.split(";")))
    raise PathError(f"bad selector [{sel}] in {where!r}: use [N] or [~Child(value)]")


def parse_path(raw: str) -> ParsedPath:
    """``*req.A[0].B`` (no ``~``) into root and segments; checks the root."""
    raw = raw.strip()
    parts = split_top(raw, ".")
    root = parts[0]
    if root in _UNSUPPORTED:
        raise PathError(f"path root {root} ({_UNSUPPORTED[root]}) is not supported by chargeway; "
                        f"roots: {', '.join(READ_ROOTS)}")
    if root not in READ_ROOTS:
        raise PathError(f"unknown path root {root!r} in {raw!r} (known: {', '.join(READ_ROOTS)})")
    segments = tuple(_parse_segment(p, raw) for p in parts[1:])
    if not segments:
        raise PathError(f"path {raw!r} names no field after {root}")
    # CGRateS writes the filter selector on the leaf (A.B[~C(v)]); it selects the parent group.
    last = segments[-1]
    if last.match_path is not None and len(segments) > 1:
        parent = segments[-2]
        if parent.index is not None or parent.match_path is not None:
            raise PathError(f"two selectors on one group in {raw!r}")
        segments = segments[:-2] + (
            Segment(parent.name, match_path=last.match_path, match_values=last.match_values),
            Segment(last.name),
        )
    return ParsedPath(root, segments, raw)


_NOTHING = object()

_DICT_ROOTS: dict[str, Callable[[Ctx], Any]] = {
    "*vars": lambda c: c.vars,
    "*cgreq": lambda c: c.cgreq,
    "*opts": lambda c: c.opts,
    "*cgrep": lambda c: c.cgrep,
    "*tmp": lambda c: c.tmp,
}


def _dict_getter(root: str, names: tuple[str, ...]) -> Getter:
    attr = root[1:]
    if len(names) == 1:
        key = names[0]

        def single(ctx: Ctx) -> list:
            data = getattr(ctx, attr)
            if key in data:
                value = data[key]
                return list(value) if isinstance(value, list) else [value]
            return []
        return single

    def nested(ctx: Ctx) -> list:
        return walk(getattr(ctx, attr), names)
    return nested


def root_view(root: str) -> Callable[[Ctx], MessageView | None]:
    if root in ("*req", "*oreq"):
        return lambda c: c.req
    attr = root[1:]
    return lambda c: DictView(getattr(c, attr))


def _selector(seg: Segment) -> Callable[[list], list]:
    if seg.index is not None:
        idx = seg.index
        return lambda views: [views[idx]] if -len(views) <= idx < len(views) else []
    rel = seg.match_path or ()
    wanted = seg.match_values
    return lambda views: [v for v in views if any(text(x) in wanted for x in v.values(rel))]


def compile_getter(parsed: ParsedPath) -> Getter:
    """An accessor for a read path: plain names go straight to ``values``."""
    root = parsed.root
    segs = parsed.segments
    leaf_index: int | None = None
    if segs[-1].index is not None:
        leaf_index = segs[-1].index
        segs = segs[:-1] + (Segment(segs[-1].name),)
    plain_names = not any(s.index is not None or s.match_path is not None for s in segs)
    if root == "*rep" and not plain_names:
        raise PathError(f"only a last-segment [N] selector works when reading *rep ({parsed.text})")
    if plain_names:
        names = tuple(s.name for s in segs)
        if root == "*rep":
            getter: Getter = lambda ctx: ctx.rep.values(names)  # noqa: E731
        elif root in ("*req", "*oreq"):
            if len(names) == 1:
                key = names[0]

                def plain(ctx: Ctx) -> list:
                    req = ctx.req
                    if type(req) is DictView and type(req.data) is dict:
                        value = req.data.get(key, _NOTHING)
                        if value is _NOTHING:
                            return []
                        return list(value) if type(value) is list else [value]
                    return req.values(names) if req is not None else []
            else:
                def plain(ctx: Ctx) -> list:
                    req = ctx.req
                    return req.values(names) if req is not None else []
            getter = plain
        else:
            getter = _dict_getter(root, names)
    else:
        getter = _selector_getter(root, segs)
    if leaf_index is None:
        return getter
    idx = leaf_index

    def indexed(ctx: Ctx) -> list:
        found = getter(ctx)
        return [found[idx]] if -len(found) <= idx < len(found) else []
    return indexed


def _raw_selector(seg: Segment) -> Callable[[list], list]:
    """Selector over raw dict nodes (DictView fast path)."""
    if seg.index is not None:
        return _selector(seg)
    rel = seg.match_path or ()
    wanted = seg.match_values
    return lambda nodes: [n for n in nodes if any(text(x) in wanted for x in walk(n, rel))]


def _selector_getter(root: str, segs: tuple[Segment, ...]) -> Getter:
    steps: list[tuple[tuple[str, ...], Callable[[list], list], Callable[[list], list]]] = []
    current: list[str] = []
    for seg in segs:
        current.append(seg.name)
        if seg.index is not None or seg.match_path is not None:
            steps.append((tuple(current), _selector(seg), _raw_selector(seg)))
            current = []
    rest = tuple(current)
    view_of = root_view(root)

    def select(ctx: Ctx) -> list:
        top = view_of(ctx)
        if top is None:
            return []
        if type(top) is DictView:
            # Walk the raw data: no view objects per group instance.
            nodes: list[Any] = [top.data]
            for prefix, _, choose_raw in steps:
                found: list[Any] = []
                for node in nodes:
                    found.extend(n for n in walk(node, prefix) if isinstance(n, dict))
                nodes = choose_raw(found)
                if not nodes:
                    return []
            if not rest:
                return [DictView(n) for n in nodes]
            out: list[Any] = []
            for node in nodes:
                out.extend(walk(node, rest))
            return out
        views: list[Any] = [top]
        for prefix, choose, _ in steps:
            found = []
            for view in views:
                found.extend(view.children(prefix))
            views = choose(found)
            if not views:
                return []
        if not rest:
            return views
        out = []
        for view in views:
            out.extend(view.values(rest))
        return out
    return select


@dataclass(frozen=True, slots=True)
class Target:
    """Where a field writes: a root (``*cgreq``, ``*rep`` ...) and names."""

    root: str
    names: tuple[str, ...]
    text: str


def parse_target(raw: str, allowed: tuple[str, ...]) -> Target:
    parsed = parse_path(raw)
    if parsed.has_selectors:
        raise PathError(f"selectors are only for reading; cannot write to {raw!r}")
    if parsed.root not in allowed:
        raise PathError(f"cannot write to {parsed.root} here (allowed: {', '.join(allowed)})")
    return Target(parsed.root, parsed.names, raw)
