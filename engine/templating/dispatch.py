"""Choosing the candidate processors of a message from the values their filters test.

A template is a list of processors tried in order; most start with ``*string`` filters on
the same few names (``~*vars.*radReqType``, ``~*req.Acct-Status-Type``,
``~*vars.*cmd``...). Trying every processor before the matching one re-reads those names
and runs each earlier processor's filter function for nothing. Here processors are
indexed once, as a small decision tree, by the constants of their positive ``*string``
filters: a message reads each indexed name once and gets the processors that can still
match, in template order. Every candidate still runs all its own filters, so the index
only ever skips a processor whose ``*string`` filter is certain to fail.

Only names that cannot change while processors run are indexed: ``*req``/``*oreq`` (the
message) and ``*vars`` when no field writes ``*vars``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from engine.templating.context import MISSING, Ctx
from engine.templating.filters import Filter, single_name
from engine.templating.view import DictView

Key = tuple[str, str]                  # (root, name): ("*vars", "*radReqType")


def indexable_key(flt: Filter, stable_roots: tuple[str, ...]) -> Key | None:
    """The name a positive ``*string`` filter with constant values tests, else None."""
    if flt.kind != "*string" or flt.negate or flt.constants is None:
        return None
    plain = single_name(flt.element)
    if plain is None or plain[0] not in stable_roots:
        return None
    return plain


class _Node:
    """Plans still possible here; ``key`` splits them further by the value read."""

    __slots__ = ("plans", "key", "by_value", "absent")

    def __init__(self, plans: list[Any]) -> None:
        self.plans = plans
        self.key: Key | None = None
        self.by_value: dict[str, _Node] = {}
        self.absent: _Node | None = None     # the value is missing or matches no constant


def _build(plans: list[Any], tests: dict[int, dict[Key, frozenset[str]]], used: frozenset[Key]) -> _Node:
    node = _Node(plans)
    if len(plans) < 2:
        return node
    counts: dict[Key, int] = {}
    for plan in plans:
        for key in tests[id(plan)]:
            if key not in used:
                counts[key] = counts.get(key, 0) + 1
    if not counts:
        return node
    key = max(counts, key=lambda k: counts[k])        # first most-tested name, stable
    node.key = key
    values: list[str] = []
    for plan in plans:
        for value in sorted(tests[id(plan)].get(key, ())):
            if value not in values:
                values.append(value)
    sub_used = used | {key}
    for value in values:
        node.by_value[value] = _build([p for p in plans if value in tests[id(p)].get(key, (value,))],
                                      tests, sub_used)
    node.absent = _build([p for p in plans if key not in tests[id(p)]], tests, sub_used)
    return node


class ProcessorIndex:
    """``candidates(ctx)``: the plans whose indexed filters can pass, in template order."""

    def __init__(self, plans: Sequence[Any], filters_of: Callable[[Any], list[Filter]],
                 stable_roots: tuple[str, ...]) -> None:
        tests: dict[int, dict[Key, frozenset[str]]] = {}
        for plan in plans:
            keyed: dict[Key, frozenset[str]] = {}
            for flt in filters_of(plan):
                key = indexable_key(flt, stable_roots)
                if key is not None:
                    # Two filters on one name: both must pass, so only common values can.
                    constants = frozenset(flt.constants or ())
                    keyed[key] = keyed[key] & constants if key in keyed else constants
            tests[id(plan)] = keyed
        self.root = _build(list(plans), tests, frozenset())

    @property
    def useful(self) -> bool:
        return self.root.key is not None

    def candidates(self, ctx: Ctx) -> list[Any]:
        node = self.root
        while node.key is not None:
            root, name = node.key
            if root == "*vars":
                value = ctx.vars.get(name, MISSING)
            else:
                req = ctx.req
                if type(req) is not DictView or type(req.data) is not dict:
                    return node.plans                   # the filters read it themselves
                value = req.data.get(name, MISSING)
            # The same normalisation as the filters' inline *string test (codegen).
            if type(value) is str:
                pass
            elif type(value) is int:
                value = str(value)
            elif type(value) is bool:
                value = "true" if value else "false"
            elif value is not MISSING:
                return node.plans                       # a list, a date...: the filter decides
            nxt = node.by_value.get(value) if value is not MISSING else None
            if nxt is None:
                nxt = node.absent
                assert nxt is not None
            node = nxt
        return node.plans
