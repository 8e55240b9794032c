"""Message builders shared by the Diameter tests (a Gy client's view of the protocol)."""

from __future__ import annotations

import itertools
from typing import Any

from agents.diameter import constants as C
from agents.diameter.client import mscc_avps
from agents.diameter.codec import Avp, Message, group

_ids = itertools.count(1000)


def cer(origin_host: str = "pgw.test", apps: tuple[int, ...] = (4,)) -> Message:
    n = next(_ids)
    msg = Message(C.CMD_CAPABILITIES_EXCHANGE, 0, C.FLAG_REQUEST, n, n)
    msg.add("Origin-Host", origin_host).add("Origin-Realm", "test").add("Host-IP-Address", "127.0.0.1")
    msg.add("Vendor-Id", 10415).add("Product-Name", "test-pgw")
    for app in apps:
        msg.add("Auth-Application-Id", app)
    return msg


def dwr(origin_host: str = "pgw.test") -> Message:
    n = next(_ids)
    return Message(C.CMD_DEVICE_WATCHDOG, 0, C.FLAG_REQUEST, n, n).add("Origin-Host", origin_host).add("Origin-Realm", "test")


def dpr(origin_host: str = "pgw.test") -> Message:
    n = next(_ids)
    msg = Message(C.CMD_DISCONNECT_PEER, 0, C.FLAG_REQUEST, n, n)
    return msg.add("Origin-Host", origin_host).add("Origin-Realm", "test").add("Disconnect-Cause", 0)


def ccr(session_id: str, request_type: int, number: int, *, msccs: list[dict[str, Any]] | None = None,
        context: str = "32251@3gpp.org", subscriber: str = "1001", imsi: str = "",
        origin_host: str = "pgw.test", requested_action: int | None = None,
        extra: list[Avp] | None = None, e2e: int | None = None) -> Message:
    """A CCR as a PGW would send it. Each MSCC dict: rg, rsu/usu as {"CC-Time": 30, ...}."""
    n = next(_ids)
    msg = Message(C.CMD_CREDIT_CONTROL, 4, C.FLAG_REQUEST | C.FLAG_PROXIABLE, n, e2e if e2e is not None else n)
    msg.add("Session-Id", session_id).add("Origin-Host", origin_host).add("Origin-Realm", "test")
    msg.add("Destination-Realm", "chargeway").add("Auth-Application-Id", 4)
    msg.add("Service-Context-Id", context).add("CC-Request-Type", request_type).add("CC-Request-Number", number)
    if subscriber:
        msg.avps.append(group("Subscription-Id", ("Subscription-Id-Type", C.SUB_E164),
                              ("Subscription-Id-Data", subscriber)))
    if imsi:
        msg.avps.append(group("Subscription-Id", ("Subscription-Id-Type", C.SUB_IMSI),
                              ("Subscription-Id-Data", imsi)))
    if requested_action is not None:
        msg.add("Requested-Action", requested_action)
    msg.avps.extend(mscc_avps(msccs or []))
    msg.avps.extend(extra or [])
    return msg
