"""The reply being built by ``*rep`` fields: an ordered tree of named items.

Diameter needs grouped AVPs and several instances of a group (two MSCCs); RADIUS
and JSON agents need a flat ordered list with repeated attributes. One ordered tree
serves both: ``tree()`` keeps the groups, ``items()`` flattens them in order.
"""

from __future__ import annotations

from typing import Any, Iterator, NamedTuple


class ReplyItem(NamedTuple):
    """One leaf of the reply: ``(("MSCC", "Granted-Service-Unit", "CC-Time"), 30)``."""

    path: tuple[str, ...]
    value: Any


class _Group(list):
    """Children of one group instance: a list of ``[name, value_or_group]`` entries."""

    __slots__ = ()


def _last(node: _Group, name: str) -> list | None:
    for entry in reversed(node):
        if entry[0] == name:
            return entry
    return None


class ReplyBuilder:
    """Ordered, grouped reply. Paths are tuples of names; the last name is the leaf."""

    __slots__ = ("root",)

    def __init__(self) -> None:
        self.root: _Group = _Group()

    def _group_for(self, path: tuple[str, ...], new_branch: bool) -> _Group:
        node = self.root
        first = True
        for seg in path[:-1]:
            entry = None
            if not (new_branch and first):
                for candidate in reversed(node):
                    if candidate[0] == seg:
                        entry = candidate
                        break
            first = False
            if entry is None or type(entry[1]) is not _Group:
                entry = [seg, _Group()]
                node.append(entry)
            node = entry[1]
        return node

    def set(self, path: tuple[str, ...], value: Any, *, new_branch: bool = False) -> None:
        """Set the leaf in the current instance of its groups (replacing a previous value)."""
        if len(path) == 1:
            node = self.root
        elif not new_branch:
            node = self.root
            for seg in path[:-1]:
                for candidate in reversed(node):
                    if candidate[0] == seg and type(candidate[1]) is _Group:
                        node = candidate[1]
                        break
                else:
                    group = _Group()
                    node.append([seg, group])
                    node = group
        else:
            node = self._group_for(path, new_branch)
        leaf = path[-1]
        if not (new_branch and len(path) == 1):
            for entry in reversed(node):
                if entry[0] == leaf:
                    entry[1] = value
                    return
        node.append([leaf, value])

    def append(self, path: tuple[str, ...], value: Any, *, new_branch: bool = False) -> None:
        """Add a repeated leaf (``*group``): never replaces."""
        self._group_for(path, new_branch).append([path[-1], value])

    def get(self, path: tuple[str, ...]) -> Any:
        """The current (last) value at ``path``, or None."""
        node = self.root
        for seg in path[:-1]:
            entry = _last(node, seg)
            if entry is None or not isinstance(entry[1], _Group):
                return None
            node = entry[1]
        entry = _last(node, path[-1])
        return None if entry is None else entry[1]

    def remove(self, path: tuple[str, ...]) -> None:
        """Delete every instance of ``path``'s leaf in its current group."""
        node = self.root
        for seg in path[:-1]:
            entry = _last(node, seg)
            if entry is None or not isinstance(entry[1], _Group):
                return
            node = entry[1]
        node[:] = [entry for entry in node if entry[0] != path[-1]]

    def values(self, path: tuple[str, ...]) -> list[Any]:
        """All values at ``path`` across every group instance (for ``~*rep.X``)."""
        nodes: list[Any] = [self.root]
        last = len(path) - 1
        for depth, seg in enumerate(path):
            nxt: list[Any] = []
            for node in nodes:
                for entry in node:
                    if entry[0] == seg and (depth == last or isinstance(entry[1], _Group)):
                        nxt.append(entry[1])
            nodes = nxt
            if not nodes:
                return []
        return [_freeze(n) if isinstance(n, _Group) else n for n in nodes]

    def tree(self) -> list[tuple[str, Any]]:
        """Nested ``[(name, value | [(name, ...), ...]), ...]`` in insertion order."""
        return _freeze(self.root)

    def entries(self) -> list:
        """The tree itself, without the copy ``tree()`` makes: ``[name, value]`` entries
        whose group values are lists of entries. For a consumer that reads it once, right
        away (an agent encoding its answer); it must not be modified."""
        return self.root

    def items(self) -> list[ReplyItem]:
        """Flat leaves in tree order."""
        return list(self._iter(self.root, ()))

    def _iter(self, node: _Group, prefix: tuple[str, ...]) -> Iterator[ReplyItem]:
        for name, value in node:
            if isinstance(value, _Group):
                yield from self._iter(value, prefix + (name,))
            else:
                yield ReplyItem(prefix + (name,), value)

    def __bool__(self) -> bool:
        return bool(self.root)

    def __repr__(self) -> str:
        return f"ReplyBuilder({self.tree()!r})"


def _freeze(node: _Group) -> list[tuple[str, Any]]:
    return [(name, _freeze(value) if type(value) is _Group else value) for name, value in node]
