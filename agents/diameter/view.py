"""``MessageView`` over a decoded CCR, as templates see it (``~*req.A.B.C``).

One template run handles one credit-control unit (one Multiple-Services-Credit-Control),
so the view shows the CCR's top-level AVPs plus only the MSCC being processed: a template
written for one rating group works unchanged on a CCR carrying five. A CCR without MSCC
but with top-level Requested/Used-Service-Unit (RFC 4006 single-service style) is shown
with those units wrapped in one synthetic MSCC, so templates have one path to read.
"""

from __future__ import annotations

from typing import Any

from agents.diameter.codec import Avp, Message, make_avp

MSCC = "Multiple-Services-Credit-Control"
_UNIT_AVPS = ("Requested-Service-Unit", "Used-Service-Unit", "Rating-Group", "Service-Identifier")


class AvpListView:
    """View over a list of AVPs (a message body or one grouped AVP's members).

    A template reads the same few paths many times per message (filters of every
    processor, then fields), so lookups are memoised per view and each path reuses the
    lookup of its parent path. The lists returned are shared: callers must not mutate them.
    """

    __slots__ = ("avps", "_memo", "_values")

    def __init__(self, avps: list[Avp]) -> None:
        self.avps = avps
        self._memo: dict[tuple[str, ...], list[Avp]] = {}
        self._values: dict[tuple[str, ...], list[Any]] = {}

    def _find(self, path: tuple[str, ...]) -> list[Avp]:
        found = self._memo.get(path)
        if found is not None:
            return found
        name = path[-1]
        if len(path) == 1:
            found = [a for a in self.avps if a.defn is not None and a.defn.name == name]
        else:
            found = [m for a in self._find(path[:-1]) if type(a.value) is list
                     for m in a.value if m.defn is not None and m.defn.name == name]
        self._memo[path] = found
        return found

    def values(self, path: tuple[str, ...]) -> list[Any]:
        if not path:
            return [self]
        out = self._values.get(path)
        if out is None:
            out = self._values[path] = [AvpListView(a.value) if type(a.value) is list else a.value
                                        for a in self._find(path)]
        return out

    def children(self, path: tuple[str, ...]) -> list["AvpListView"]:
        if not path:
            return [self]
        return [v for v in self.values(path) if isinstance(v, AvpListView)]

    def __repr__(self) -> str:
        return f"AvpListView({self.avps!r})"


def unit_avps(msg: Message) -> list[Avp | None]:
    """The credit-control units of a CCR: its MSCCs, a synthetic one, or [None] (no units)."""
    msccs = msg.find_all(MSCC)
    if msccs:
        return list(msccs)
    loose = [a for a in msg.avps if a.defn is not None and a.defn.name in _UNIT_AVPS]
    if loose:
        return [make_avp(MSCC, loose)]
    return [None]


class CcrView(AvpListView):
    """A CCR restricted to one unit (``mscc``); other top-level AVPs are unchanged."""

    __slots__ = ("message", "mscc")

    def __init__(self, message: Message, mscc: Avp | None) -> None:
        avps = [a for a in message.avps if a.defn is None or a.defn.name != MSCC]
        if mscc is not None:
            avps.append(mscc)
        super().__init__(avps)
        self.message = message
        self.mscc = mscc
