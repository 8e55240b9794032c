"""evapi event vocabulary: names, reserved keys and the messages chargeway writes.

Names and shapes follow CGRateS's KamailioAgent (agents/kamevent.go) so the
routes of its kamailio-cgrates.cfg keep working unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import orjson

from engine.units import SECOND

AUTH_REQUEST = "CGR_AUTH_REQUEST"
AUTH_REPLY = "CGR_AUTH_REPLY"
CALL_START = "CGR_CALL_START"
CALL_END = "CGR_CALL_END"
PROCESS_MESSAGE = "CGR_PROCESS_MESSAGE"
PROCESS_CDR = "CGR_PROCESS_CDR"
SESSION_DISCONNECT = "CGR_SESSION_DISCONNECT"
DLG_LIST = "CGR_DLG_LIST"
DLG_LIST_REPLY = "CGR_DLG_LIST_REPLY"

INBOUND_EVENTS = frozenset({AUTH_REQUEST, CALL_START, CALL_END, PROCESS_MESSAGE, PROCESS_CDR,
                            DLG_LIST_REPLY})

# Keys of the evapi JSON that steer the agent and never become event fields.
EVENT = "event"
TR_INDEX = "tr_index"
TR_LABEL = "tr_label"
CGR_FLAGS = "cgr_flags"
REPLY_ROUTE = "reply_route"
H_ENTRY = "h_entry"
H_ID = "h_id"
RESERVED_KEYS = frozenset({EVENT, TR_INDEX, TR_LABEL, CGR_FLAGS, REPLY_ROUTE})

# Reply field order as CGRateS's KamReply serialises it (Kamailio reads by name,
# the order only matters to people reading traces).
REPLY_FIELDS = ("Event", "TransactionIndex", "TransactionLabel", "Attributes",
                "ResourceAllocation", "MaxUsage", "Routes", "Thresholds", "StatQueues", "Error")


def max_usage_seconds(max_usage_ns: int | None) -> int:
    """Engine MaxUsage (ns, -1 unlimited) -> evapi integer seconds.

    Truncates like CGRateS (``int(d.Seconds())``): a grant under one second
    is 0, which the cfg answers with 403, rather than a second not paid for.
    ``None`` (engine did not compute a limit) is reported as unlimited.
    """
    if max_usage_ns is None or max_usage_ns < 0:
        return -1
    return max_usage_ns // SECOND


def format_attributes(attributes: Mapping[str, Any]) -> str:
    """CGRateS ``Attributes`` string: ``"k:v,k:v"`` in the engine's order."""
    return ",".join(f"{key}:{value}" for key, value in attributes.items())


_BLANK: dict[str, Any] = dict.fromkeys(REPLY_FIELDS, "")


def blank_reply(request: Mapping[str, Any], default_event: str) -> dict[str, Any]:
    """A reply skeleton addressed to the request's suspended transaction (a copy of one
    made once: every authorization answer starts from it)."""
    reply = _BLANK.copy()
    reply["Event"] = str(request.get(REPLY_ROUTE) or default_event)
    reply["TransactionIndex"] = request.get(TR_INDEX, "")
    reply["TransactionLabel"] = request.get(TR_LABEL, "")
    reply["MaxUsage"] = 0
    return reply


def error_reply(request: Mapping[str, Any], error: str, default_event: str = AUTH_REPLY) -> dict[str, Any]:
    """Reply that resumes Kamailio's transaction with an Error (the cfg answers 503)."""
    reply = blank_reply(request, default_event)
    reply["Error"] = error
    return reply


def disconnect_message(h_entry: Any, h_id: Any, reason: str) -> dict[str, Any]:
    """``CGR_SESSION_DISCONNECT``: the cfg turns it into jsonrpc ``dlg.end_dlg``."""
    return {"Event": SESSION_DISCONNECT, "HashEntry": str(h_entry), "HashId": str(h_id),
            "Reason": reason}


def dlg_list_request() -> dict[str, Any]:
    """Asks the cfg's ``CGR_DLG_LIST`` route for ``dlg.list`` (after a reconnect)."""
    return {"Event": DLG_LIST}


@dataclass(frozen=True, slots=True)
class DialogInfo:
    """One dialog of a ``dlg.list`` reply: what reconciliation needs."""

    call_id: str
    h_entry: str
    h_id: str


class DlgListError(ValueError):
    """The CGR_DLG_LIST_REPLY did not carry a usable dlg.list result."""


def parse_dlg_list_reply(message: Mapping[str, Any]) -> list[DialogInfo]:
    """Dialogs in a ``CGR_DLG_LIST_REPLY``.

    ``jsonrpl_body`` is Kamailio's JSON-RPC reply to ``dlg.list``: normally
    embedded as an object, but a cfg may relay it as a string, so both are read.
    A JSON-RPC error or a missing result raises, because treating it as "no
    dialogs" would terminate every live call.
    """
    body = message.get("jsonrpl_body")
    if isinstance(body, (str, bytes)):
        try:
            body = orjson.loads(body) if body else None
        except orjson.JSONDecodeError as exc:
            raise DlgListError(f"jsonrpl_body is not JSON: {exc}") from None
    if not isinstance(body, Mapping):
        raise DlgListError("CGR_DLG_LIST_REPLY without a jsonrpl_body object")
    if body.get("error"):
        raise DlgListError(f"dlg.list failed: {body['error']}")
    result = body.get("result")
    if result is None:
        raise DlgListError("dlg.list reply has no result")
    if isinstance(result, Mapping):
        # Some Kamailio versions wrap the list; accept {"Dialogs": [...]} shapes too.
        result = next((v for v in result.values() if isinstance(v, list)), [])
    if not isinstance(result, list):
        raise DlgListError("dlg.list result is not a list")
    return list(_dialogs(result))


def _dialogs(items: Iterable[Any]) -> Iterable[DialogInfo]:
    for item in items:
        if not isinstance(item, Mapping):
            continue
        call_id = item.get("call-id", item.get("callid", ""))
        if call_id:
            yield DialogInfo(str(call_id), str(item.get("h_entry", "")), str(item.get("h_id", "")))
