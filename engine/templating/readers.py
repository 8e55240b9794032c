"""First-value readers: ``~*req.A.B`` as "the first value", without building lists.

Almost every field wants one value. These readers return exactly
``getter(ctx)[0]`` (or ``MISSING``) — the same fan-out rules as ``DictView.values`` —
but walk a ``DictView``'s dicts directly; other views go through the list getter.
The property tests hold the two to the same answers.
"""

from __future__ import annotations

from typing import Any, Callable

from engine.templating.coerce import text
from engine.templating.context import MISSING, Ctx
from engine.templating.paths import Getter, ParsedPath, Segment, root_view
from engine.templating.view import DictView, walk

First = Callable[[Ctx], Any]


def _groups_at(node: Any, prefix: tuple[str, ...]) -> list[Any]:
    """Dict items (group instances) at ``prefix`` below a raw node."""
    if len(prefix) == 1 and type(node) is dict:
        value = node.get(prefix[0])
        if type(value) is list:
            return [v for v in value if isinstance(v, dict)]
        return [value] if isinstance(value, dict) else []
    return [n for n in walk(node, prefix) if isinstance(n, dict)]


def _selector_first(parsed: ParsedPath, getter: Getter, missing: Any) -> First:
    """First value through selectors; raw dict walking for ``DictView``."""
    steps: list[tuple[tuple[str, ...], Segment]] = []
    current: list[str] = []
    for seg in parsed.segments:
        current.append(seg.name)
        if seg.index is not None or seg.match_path is not None:
            steps.append((tuple(current), seg))
            current = []
    rest = tuple(current)
    view_of = root_view(parsed.root)

    def choose(nodes: list[Any], seg: Segment) -> list[Any]:
        if seg.index is not None:
            idx = seg.index
            return [nodes[idx]] if -len(nodes) <= idx < len(nodes) else []
        rel = seg.match_path or ()
        wanted = seg.match_values
        out = []
        for node in nodes:
            if len(rel) == 1:
                value = node.get(rel[0], missing)
                values = value if type(value) is list else ([] if value is missing else [value])
            else:
                values = walk(node, rel)
            for x in values:
                if (x if type(x) is str else text(x)) in wanted:
                    out.append(node)
                    break
        return out

    data_first = _data_selector_first(steps, rest, choose, missing)
    view_of_root = view_of

    def first(ctx: Ctx) -> Any:
        top = view_of_root(ctx)
        if type(top) is DictView:
            return data_first(top.data)
        found = getter(ctx)
        return found[0] if found else missing
    first.data_first = data_first  # type: ignore[attr-defined]
    return first


def _data_selector_first(steps: list[tuple[tuple[str, ...], Segment]], rest: tuple[str, ...],
                         choose: Callable[[list[Any], Segment], list[Any]],
                         missing: Any) -> Callable[[Any], Any]:
    """First value through selectors over raw nested dicts/lists."""
    if (len(steps) == 1 and len(steps[0][0]) == 1 and steps[0][1].match_path is not None
            and len(steps[0][1].match_path or ()) == 1 and len(rest) == 1):
        # The usual Diameter shape: Group[~Type(v)].Data, read straight from dicts.
        group_name = steps[0][0][0]
        rel_name = (steps[0][1].match_path or ("",))[0]
        wanted_values = steps[0][1].match_values
        # Diameter enumerations arrive as ints: compare them without making text.
        wanted_ints = frozenset(int(v) for v in wanted_values
                                if v.lstrip("-").isdigit() and str(int(v)) == v)
        leaf = rest[0]

        def group_first(data: Any) -> Any:
            if type(data) is not dict:
                return general(data)
            groups = data.get(group_name, missing)
            if type(groups) is dict:
                groups = (groups,)
            elif type(groups) is not list:
                return missing
            for item in groups:
                if type(item) is not dict:
                    continue
                sel = item.get(rel_name, missing)
                if sel is missing:
                    continue
                kind = type(sel)
                if kind is str:
                    if sel not in wanted_values:
                        continue
                elif kind is int:
                    if sel not in wanted_ints:
                        continue
                elif kind is list:
                    if not any(text(x) in wanted_values for x in sel):
                        continue
                elif text(sel) not in wanted_values:
                    continue
                value = item.get(leaf, missing)
                if value is missing:
                    continue
                if type(value) is list:
                    if value:
                        return value[0]
                    continue
                return value
            return missing
    else:
        group_first = None  # type: ignore[assignment]

    def general(data: Any) -> Any:
        nodes: list[Any] = [data]
        for prefix, seg in steps:
            found_groups: list[Any] = []
            for node in nodes:
                found_groups.extend(_groups_at(node, prefix))
            nodes = choose(found_groups, seg)
            if not nodes:
                return missing
        if not rest:
            return DictView(nodes[0])
        for node in nodes:
            value = first_at(node, rest, 0, missing)
            if value is not missing:
                return value
        return missing
    return group_first if group_first is not None else general


def data_reader(parsed: ParsedPath) -> Callable[[Any], Any] | None:
    """For ``*req`` paths: ``raw message data -> first value or MISSING`` (DictView fast path)."""
    if parsed.root not in ("*req", "*oreq") or parsed.segments[-1].index is not None:
        return None
    if not parsed.has_selectors:
        return first_in_data(parsed.names, MISSING)
    first = _selector_first(parsed, lambda ctx: [], MISSING)
    return getattr(first, "data_first", None)


def compile_first(parsed: ParsedPath, getter: Getter) -> First:
    """``ctx -> first value or MISSING``: the hot path of almost every field.

    Plain-name paths on a ``DictView`` or a dict root are read without building lists;
    anything else falls back to ``getter`` (same semantics: the first of all values).
    """
    if parsed.has_selectors and parsed.root != "*rep" and parsed.segments[-1].index is None:
        return _selector_first(parsed, getter, MISSING)
    if parsed.has_selectors or parsed.root == "*rep":
        def via_getter(ctx: Ctx) -> Any:
            found = getter(ctx)
            return found[0] if found else MISSING
        return via_getter
    names = parsed.names
    fast = first_in_data(names, MISSING)
    if parsed.root in ("*req", "*oreq"):
        def req_first(ctx: Ctx) -> Any:
            req = ctx.req
            if type(req) is DictView:
                return fast(req.data)
            if req is None:
                return MISSING
            found = req.values(names)
            return found[0] if found else MISSING
        return req_first
    attr = parsed.root[1:]
    if len(names) == 1:
        key = names[0]

        def dict_single(ctx: Ctx) -> Any:
            value = getattr(ctx, attr).get(key, MISSING)
            if type(value) is list:
                return value[0] if value else MISSING
            return value
        return dict_single
    return lambda ctx: fast(getattr(ctx, attr))


def first_at(node: Any, names: tuple[str, ...], i: int, missing: Any) -> Any:
    """First value at ``names[i:]`` below ``node``: exactly ``walk(node, names[i:])[0]``
    (same fan-out rules for repeated items) without building the lists."""
    n = len(names)
    while i < n:
        if isinstance(node, dict):
            node = node.get(names[i], missing)
            if node is missing:
                return missing
            i += 1
        elif isinstance(node, list):
            return _first_fan(node, names, i, missing)
        else:
            return missing
    if isinstance(node, list):
        return node[0] if node else missing
    return node


def _first_fan(nodes: list[Any], names: tuple[str, ...], i: int, missing: Any) -> Any:
    """Depth-first twin of ``walk``'s breadth-first fan-out (same first element)."""
    if i == len(names):
        for item in nodes:
            if isinstance(item, list):
                if item:
                    return item[0]
            else:
                return item
        return missing
    seg = names[i]
    n = len(names)
    for item in nodes:
        if isinstance(item, list):
            for sub in item:
                if isinstance(sub, dict) and seg in sub:
                    value = sub[seg]
                    found = _first_fan(value if isinstance(value, list) else [value], names,
                                       i + 1, missing)
                    if found is not missing:
                        return found
        elif isinstance(item, dict) and seg in item:
            # Follow a chain of single dicts without recursing (the usual MSCC shape).
            value = item[seg]
            j = i + 1
            while j < n and isinstance(value, dict):
                name = names[j]
                if name not in value:
                    break
                value = value[name]
                j += 1
            else:
                if isinstance(value, list):
                    found = _first_fan(value, names, j, missing)
                    if found is not missing:
                        return found
                elif j == n:
                    return value
                continue
            # A dict without the next name: this item yields nothing.
    return missing


def first_in_data(names: tuple[str, ...], missing: Any) -> Callable[[Any], Any]:
    """First value at ``names`` in nested dicts/lists."""
    if len(names) == 1:
        key = names[0]

        def one(data: Any) -> Any:
            if type(data) is not dict:
                return first_at(data, names, 0, missing)
            value = data.get(key, missing)
            if type(value) is list:
                return value[0] if value else missing
            return value
        return one

    def many(data: Any) -> Any:
        node = data
        for key in names:
            if type(node) is dict:
                node = node.get(key, missing)
                if node is missing:
                    return missing
            else:
                return first_at(data, names, 0, missing)
        if type(node) is list:
            return first_at(data, names, 0, missing)
        return node
    return many
