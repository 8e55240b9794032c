"""The message seen by a template: what agents implement, and a ready view for dicts.

Agents decode their protocol and hand the template a ``MessageView``. Values come
back as Python objects (str, int, bytes, datetime ...); converters coerce them. Paths
are tuples of names; selectors (``[0]``, ``[~Type(0)]``) are applied by the template
using ``children`` so a view only has to walk names.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

_MISSING = object()


@runtime_checkable
class MessageView(Protocol):
    """Read access to one decoded message."""

    def values(self, path: tuple[str, ...]) -> list[Any]:
        """Every value at ``path`` (repeated items flattened, groups walked); ``[]`` if absent."""
        ...

    def children(self, path: tuple[str, ...]) -> list["MessageView"]:
        """One view per instance of the group at ``path`` (for index and filter selectors)."""
        ...


def walk(root: Any, path: tuple[str, ...]) -> list[Any]:
    """Values at ``path`` in nested dicts/lists; lists on the way are fanned out.

    The common case (dicts only, no repetition) stays on a single-node loop with no
    list building, because this runs for every field of every message.
    """
    node = root
    i = 0
    n = len(path)
    while i < n:
        if type(node) is dict or isinstance(node, dict):
            node = node.get(path[i], _MISSING)
            if node is _MISSING:
                return []
            i += 1
        elif isinstance(node, list):
            break
        else:
            return []
    else:
        if isinstance(node, list):
            return list(node)
        return [node]
    # Fan out over repeated items from here on.
    nodes: list[Any] = list(node)
    while i < n:
        seg = path[i]
        nxt: list[Any] = []
        for item in nodes:
            if isinstance(item, list):
                for sub in item:
                    if isinstance(sub, dict) and seg in sub:
                        _extend(nxt, sub[seg])
            elif isinstance(item, dict) and seg in item:
                _extend(nxt, item[seg])
        nodes = nxt
        if not nodes:
            return nodes
        i += 1
    out: list[Any] = []
    for item in nodes:
        _extend(out, item)
    return out


def _extend(out: list[Any], value: Any) -> None:
    if isinstance(value, list):
        out.extend(value)
    else:
        out.append(value)


class DictView:
    """``MessageView`` over nested dicts and lists (JSON events, RADIUS attribute dicts).

    A list value means a repeated item: ``{"Cisco-AVPair": ["a=1", "b=2"]}`` or
    ``{"Multiple-Services-Credit-Control": [{...}, {...}]}``.
    """

    __slots__ = ("data",)

    def __init__(self, data: Any) -> None:
        self.data = data

    def values(self, path: tuple[str, ...]) -> list[Any]:
        if not path:
            return [self.data]
        return walk(self.data, path)

    def children(self, path: tuple[str, ...]) -> list["DictView"]:
        return [DictView(item) for item in self.values(path) if isinstance(item, dict)]

    def __repr__(self) -> str:
        return f"DictView({self.data!r})"
