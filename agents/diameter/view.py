"""What templates see of a decoded CCR (``~*req.A.B.C``): nested dicts in a ``DictView``.

One template run handles one credit-control unit (one Multiple-Services-Credit-Control),
so the view shows the CCR's top-level AVPs plus only the MSCC being processed: a template
written for one rating group works unchanged on a CCR carrying five. A CCR without MSCC
but with top-level Requested/Used-Service-Unit (RFC 4006 single-service style) is shown
with those units wrapped in one synthetic MSCC, so templates have one path to read.

Why dicts and not a view over the AVP objects: the template compiler generates straight
dict reads for a ``DictView`` (filters, fields and the ``Group[~Type(v)].Data`` selector
shape all inline), while any other view goes through generic per-field closures that
build lists. The conversion is one pass over the AVPs the CCR carries.
"""

from __future__ import annotations

from typing import Any

from agents.diameter.codec import Avp, Message, make_avp
from engine.templating import DictView

MSCC = "Multiple-Services-Credit-Control"
_UNIT_AVPS = ("Requested-Service-Unit", "Used-Service-Unit", "Rating-Group", "Service-Identifier")


def grouped_dict(avp: Avp) -> dict[str, Any]:
    """``avp_dict`` of a grouped AVP's members, made once and kept on it (``Avp.view``)."""
    view = avp.view
    if view is None:
        view = avp.view = avp_dict(avp.value)
    return view


def avp_dict(avps: list[Avp], msccs: list[Avp] | None = None) -> dict[str, Any]:
    """AVPs by name: a grouped AVP becomes a dict of its members, a repeated AVP a list of
    its instances (the ``DictView`` convention). Unknown AVPs (no name) are left out.
    A grouped AVP's dict is made once and kept on it (``Avp.view``): decoded AVPs are
    shared between messages, so a subscriber's Subscription-Id is converted once.
    With ``msccs``, MSCC AVPs go to that list instead of the dict (``split_ccr``)."""
    out: dict[str, Any] = {}
    for avp in avps:
        defn = avp.defn
        if defn is None:
            continue
        name = defn.name
        if msccs is not None and name == MSCC:
            msccs.append(avp)
            continue
        value = avp.value
        if type(value) is list:
            value = grouped_dict(avp)
        previous = out.get(name, _ABSENT)
        if previous is _ABSENT:
            out[name] = value
        elif type(previous) is list:       # AVP values are never lists: a list is repetition
            previous.append(value)
        else:
            out[name] = [previous, value]
    return out


_ABSENT: Any = object()


def unit_avps(msg: Message) -> list[Avp | None]:
    """The credit-control units of a CCR: its MSCCs, a synthetic one, or [None] (no units)."""
    return split_ccr(msg)[1]


def split_ccr(message: Message) -> tuple[dict[str, Any], list[Avp | None], bool]:
    """One pass over a CCR: ``message_dict``, ``unit_avps`` and whether it has no MSCC
    (single-service: its units are answered at the top level)."""
    msccs: list[Avp] = []
    base = avp_dict(message.avps, msccs)
    if msccs:
        return base, msccs, False
    loose = [a for a in message.avps if a.defn is not None and a.defn.name in _UNIT_AVPS]
    return base, ([make_avp(MSCC, loose)] if loose else [None]), True


def message_dict(message: Message) -> dict[str, Any]:
    """The CCR's top-level AVPs without its MSCCs (shared by the views of all its units)."""
    return avp_dict([a for a in message.avps if a.defn is None or a.defn.name != MSCC])


def ccr_view(message: Message, mscc: Avp | None, base: dict[str, Any] | None = None) -> DictView:
    """The CCR restricted to one unit (``mscc``); other top-level AVPs are unchanged.
    ``base`` is ``message_dict(message)`` when the caller already has it (several units)."""
    if mscc is None:
        return DictView(message_dict(message) if base is None else base)
    unit = mscc.value
    if type(unit) is list:
        unit = grouped_dict(mscc)
    if base is None:
        data = message_dict(message)
        data[MSCC] = unit
    else:
        data = {**base, MSCC: unit}
    return DictView(data)
