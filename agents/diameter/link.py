"""The Diameter agent's ``AgentLink``: how the engine reaches a Gy/Ro client.

Disconnect is an Abort-Session-Request (RFC 4006 §5.5, RFC 6733 §8.5) to the peer that
owns the session; the client then reports final usage in a CCR-T. ``reauth`` sends a
Re-Auth-Request (RFC 6733 §8.3.1) so the client reports and re-requests units now (used
for AlterSession-like changes, e.g. after a top-up or tariff change).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Mapping

from agents.diameter import constants as C
from agents.diameter.credit_control import CcSession
from agents.diameter.server import DiameterServer
from engine.errors import SESSION_NOT_FOUND, ChargingError

log = logging.getLogger("chargeway.diameter.link")

RE_AUTH_AUTHORIZE_ONLY = 0


class DiameterLink:
    """AgentLink served by the Diameter agent."""

    name = "diameter"

    def __init__(self, server: DiameterServer) -> None:
        self.server = server
        self._aborts: dict[str, asyncio.Future[int]] = {}
        self.sent: list[tuple[str, str]] = []   # (command, Session-Id): for logs and tests

    def _session(self, key: str) -> CcSession:
        session = self.server.cc.session_for(key)
        if session is None:
            raise ChargingError(SESSION_NOT_FOUND, f"no Diameter session for {key}")
        return session

    async def disconnect_session(self, event: Mapping[str, Any], reason: str) -> None:
        """ASR once per Diameter session (several MSCC engine sessions share it)."""
        origin_id = str(event.get("OriginID", ""))
        try:
            session = self._session(origin_id)
        except ChargingError:
            log.info("diameter: disconnect for %s (%s): session already gone", origin_id, reason)
            return
        pending = self._aborts.get(session.session_id)
        if pending is None:
            pending = asyncio.ensure_future(self._abort(session, reason))
            self._aborts[session.session_id] = pending
            pending.add_done_callback(lambda _f, sid=session.session_id: self._aborts.pop(sid, None))
        code = await asyncio.shield(pending)
        if code not in (C.DIAMETER_SUCCESS, C.DIAMETER_UNKNOWN_SESSION_ID):
            raise ChargingError("SERVER_ERROR", f"ASA Result-Code {code} for {session.session_id}")

    async def _abort(self, session: CcSession, reason: str) -> int:
        asr = self.server.new_request(C.CMD_ABORT_SESSION)
        asr.avps.insert(0, session.last_request.find("Session-Id"))
        asr.add("Destination-Realm", session.peer_realm).add("Destination-Host", session.peer_host)
        asr.add("Auth-Application-Id", C.APP_CREDIT_CONTROL)
        log.info("diameter: ASR for %s to %s (%s)", session.session_id, session.peer_host, reason)
        self.sent.append(("ASR", session.session_id))
        answer = await self.server.request(session.peer_host, asr)
        return int(answer.get("Result-Code", 0))

    async def reauth(self, key: str, rating_group: int | None = None) -> int:
        """RAR for the session holding ``key`` (Session-Id or OriginID); returns the RAA code."""
        session = self._session(key)
        rar = self.server.new_request(C.CMD_RE_AUTH)
        rar.avps.insert(0, session.last_request.find("Session-Id"))
        rar.add("Destination-Realm", session.peer_realm).add("Destination-Host", session.peer_host)
        rar.add("Auth-Application-Id", C.APP_CREDIT_CONTROL)
        rar.add("Re-Auth-Request-Type", RE_AUTH_AUTHORIZE_ONLY)
        if rating_group is not None:
            rar.add("Rating-Group", rating_group)
        self.sent.append(("RAR", session.session_id))
        answer = await self.server.request(session.peer_host, rar)
        return int(answer.get("Result-Code", 0))

    async def alter_session(self, event: Mapping[str, Any], changes: Mapping[str, Any] | None = None) -> None:
        """CGRateS AgentV1.AlterSession for Diameter: a RAR for the session's rating group, so
        the client reports what it used and asks again under the new conditions."""
        origin_id = str(event.get("OriginID", ""))
        session = self._session(origin_id)
        rating_group = next((rg for rg in session.units if isinstance(rg, int)
                             and origin_id.endswith(f"_{rg}")), None)
        code = await self.reauth(origin_id, rating_group=rating_group)
        if code != C.DIAMETER_SUCCESS:
            raise ChargingError("SERVER_ERROR", f"RAA Result-Code {code} for {session.session_id}")

    async def warn_disconnect(self, event: Mapping[str, Any], remaining_ns: int) -> None:
        """Gy clients learn of their last units from Final-Unit-Indication; nothing to send."""
        log.info("diameter: low balance for %s: %d ns left", event.get("OriginID"), remaining_ns)

    async def active_session_ids(self) -> list[tuple[str, str]] | None:
        out: list[tuple[str, str]] = []
        for session in self.server.cc.sessions.values():
            for origin_id in sorted(session.origin_ids):
                out.append((session.peer_host, origin_id))
        return out
