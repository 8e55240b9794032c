"""The BiRPC client as an ``engine.agent_link.AgentLink``.

A client connected on port 2014 (OpenSIPS, a CGRateS-style agent, a test)
serves callbacks on the same socket. Which method names it understands is the
CGRateS ``client_protocol``: 2.0 (default) uses ``AgentV1.*`` with a CGREvent;
1.0 (OpenSIPS 3.x) uses ``SessionSv1.DisconnectSession {EventStart, Reason}``;
0 (OpenSIPS 2.x, SMGenericV1 API) the same shape as ``SMGClientV1.DisconnectSession``.
The protocol comes from the ``api.birpc_client_protocol`` setting and switches
to 1.0 for a connection that calls the OpenSIPS-only ``*WithDigest`` methods, and
to 0 for one that calls ``SMGenericV1.*``.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Mapping

from agents.jsonrpc.connection import RemoteError, RpcConnection
from engine.errors import NO_ACTIVE_SESSION, NOT_IMPLEMENTED
from engine.event import DISCONNECT_CAUSE, ORIGIN_HOST, ORIGIN_ID, TENANT
from engine.units import format_time, utcnow

log = logging.getLogger("chargeway.api")

PROTOCOL_V2 = "2.0"
PROTOCOL_V1 = "1.0"
PROTOCOL_V0 = "0"      # OpenSIPS 2.x: SMGenericV1 calls, SMGClientV1.DisconnectSession callbacks
DEFAULT_CALL_TIMEOUT = 5.0


def normalise_protocol(value: Any) -> str:
    text = str(value if value not in (None, "") else PROTOCOL_V2).strip()
    if text in ("0", "0.0"):
        return PROTOCOL_V0
    return PROTOCOL_V1 if text in ("1", "1.0", "opensips") else PROTOCOL_V2


class BiRPCLink:
    """Callbacks into one BiRPC client connection."""

    def __init__(self, conn: RpcConnection, *, protocol: str = PROTOCOL_V2,
                 timeout: float = DEFAULT_CALL_TIMEOUT) -> None:
        self.conn = conn
        self.protocol = normalise_protocol(protocol)
        self.timeout = timeout
        self.name = f"birpc:{conn.peer}"
        self.connected_at = time.time()

    def __repr__(self) -> str:
        return f"<BiRPCLink {self.name} proto={self.protocol}>"

    def disconnect_message(self, event: Mapping[str, Any], reason: str) -> tuple[str, Any]:
        """Method and argument the client expects for a hang-up (exposed for tests)."""
        fields = dict(event)
        fields[DISCONNECT_CAUSE] = reason
        if self.protocol == PROTOCOL_V1:
            return "SessionSv1.DisconnectSession", {"EventStart": fields, "Reason": reason}
        if self.protocol == PROTOCOL_V0:
            return "SMGClientV1.DisconnectSession", {"EventStart": fields, "Reason": reason}
        cgr_event = {
            "Tenant": fields.get(TENANT) or "cgrates.org",
            "ID": uuid.uuid4().hex,
            "Time": format_time(utcnow()),
            "Event": fields,
            "APIOpts": {},
        }
        return "AgentV1.DisconnectSession", cgr_event

    async def disconnect_session(self, event: Mapping[str, Any], reason: str) -> None:
        method, arg = self.disconnect_message(event, reason)
        try:
            await self.conn.call(method, arg, self.timeout)
        except RemoteError as exc:
            if str(exc) == NOT_IMPLEMENTED:
                return  # CGRateS tolerates agents that cannot hang up
            raise

    async def warn_disconnect(self, event: Mapping[str, Any], remaining_ns: int) -> None:
        if self.protocol != PROTOCOL_V2:
            return  # OpenSIPS serves no low-balance warning
        try:
            await self.conn.call("AgentV1.WarnDisconnect", dict(event), self.timeout)
        except RemoteError as exc:
            if str(exc) != NOT_IMPLEMENTED:
                raise

    async def active_session_ids(self) -> list[tuple[str, str]] | None:
        method = {PROTOCOL_V1: "SessionSv1.GetActiveSessionIDs",
                  PROTOCOL_V0: "SMGClientV1.GetActiveSessionIDs"}.get(self.protocol, "AgentV1.GetActiveSessionIDs")
        try:
            result = await self.conn.call(method, "", self.timeout)
        except RemoteError as exc:
            if str(exc) == NO_ACTIVE_SESSION:
                return []
            log.info("%s: %s failed: %s", self.name, method, exc)
            return None
        except (TimeoutError, ConnectionError) as exc:
            log.info("%s: %s failed: %s", self.name, method, exc)
            return None
        out: list[tuple[str, str]] = []
        for item in result or []:
            if isinstance(item, dict):
                out.append((str(item.get(ORIGIN_HOST, "")), str(item.get(ORIGIN_ID, ""))))
        return out
