"""The engine's way back into one Kamailio: disconnect a call, list live dialogs.

One ``KamailioLink`` per configured evapi connection (not per TCP socket), so a
session initiated before a Kamailio restart still reaches that Kamailio through
the new socket. The link also remembers the calls it started, to reconcile them
with ``dlg.list`` after a reconnect.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Mapping

from agents.kamailio.client import EvapiClient, NotConnected
from engine.errors import CAUSE_INSUFFICIENT_CREDIT, ChargingError
from engine.event import ANSWER_TIME
from engine.units import parse_duration, parse_time
from agents.kamailio.events import (
    H_ENTRY, H_ID, DialogInfo, DlgListError, disconnect_message, dlg_list_request,
    parse_dlg_list_reply,
)

log = logging.getLogger("chargeway.kamailio")


@dataclass(slots=True)
class TrackedCall:
    """A call this link saw start: its engine request, for a reconciling terminate."""

    origin_id: str
    request: dict[str, Any]
    arrived: float  # unix seconds when its CGR_CALL_START was handled

    @property
    def answered_at(self) -> float:
        """Unix seconds of the answer: the request's AnswerTime, else the CGR_CALL_START's arrival.

        Computed when asked (only a reconciliation after a reconnect needs it), not for
        every call that starts."""
        try:
            answered = parse_time(self.request.get(ANSWER_TIME))
        except ChargingError:
            answered = None
        return (answered.timestamp() if answered else 0.0) or self.arrived


class KamailioLink:
    """``engine.agent_link.AgentLink`` for the calls of one Kamailio."""

    def __init__(self, client: EvapiClient, *, dlg_list_timeout: float = 5.0) -> None:
        self.client = client
        self.name = f"kamailio:{client.alias}"
        self.origin_host = client.alias
        self.dlg_list_timeout = dlg_list_timeout
        self.calls: dict[str, TrackedCall] = {}
        # When the connection last dropped (unix s): where a lost call's usage ends.
        self.lost_at: float | None = None
        # OriginID -> engine usage (ns) when it cut the call for lack of credit.
        self.credit_cuts: dict[str, int] = {}
        self._dlg_waiters: list[asyncio.Future] = []

    # -- AgentLink --------------------------------------------------------

    async def disconnect_session(self, event: Mapping[str, Any], reason: str) -> None:
        """Send ``CGR_SESSION_DISCONNECT``; the cfg ends the dialog with dlg.end_dlg."""
        h_entry, h_id = event.get(H_ENTRY), event.get(H_ID)
        if h_entry in (None, "") or h_id in (None, ""):
            raise ValueError(f"session {event.get('OriginID')!r} has no h_entry/h_id to address its dialog")
        self.client.send(disconnect_message(h_entry, h_id, reason))
        if reason == CAUSE_INSUFFICIENT_CREDIT and event.get("Usage") not in (None, ""):
            try:
                self.credit_cuts[str(event.get("OriginID", ""))] = parse_duration(event["Usage"])
            except ChargingError:
                pass
        log.info("evapi %s: disconnect %s (dialog %s:%s): %s", self.client.alias,
                 event.get("OriginID"), h_entry, h_id, reason)

    async def warn_disconnect(self, event: Mapping[str, Any], remaining_ns: int) -> None:
        """evapi has no low-balance message in the CGRateS protocol: log only."""
        log.info("evapi %s: %s has %.1fs of credit left", self.client.alias, event.get("OriginID"),
                 remaining_ns / 1e9)

    async def active_session_ids(self) -> list[tuple[str, str]] | None:
        """(OriginHost, OriginID) of Kamailio's dialogs, or None if it cannot be asked."""
        try:
            dialogs = await self.list_dialogs()
        except (NotConnected, asyncio.TimeoutError, DlgListError) as exc:
            log.warning("evapi %s: cannot list dialogs: %s", self.client.alias, exc)
            return None
        return [(self.origin_host, d.call_id) for d in dialogs]

    # -- dlg.list ---------------------------------------------------------

    async def list_dialogs(self) -> list[DialogInfo]:
        """Ask Kamailio for ``dlg.list`` and wait for the CGR_DLG_LIST_REPLY.

        Concurrent callers share one request: evapi replies carry no id, so
        one reply answers everyone waiting.
        """
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        first = not self._dlg_waiters
        self._dlg_waiters.append(future)
        try:
            if first:
                self.client.send(dlg_list_request())
            return await asyncio.wait_for(asyncio.shield(future), self.dlg_list_timeout)
        finally:
            if future in self._dlg_waiters:
                self._dlg_waiters.remove(future)

    def dlg_list_reply(self, message: Mapping[str, Any]) -> None:
        """Called by the agent for each CGR_DLG_LIST_REPLY frame."""
        waiters, self._dlg_waiters = self._dlg_waiters, []
        try:
            dialogs = parse_dlg_list_reply(message)
        except DlgListError as exc:
            log.error("evapi %s: unusable CGR_DLG_LIST_REPLY: %s", self.client.alias, exc)
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        if not waiters:
            log.info("evapi %s: CGR_DLG_LIST_REPLY nobody asked for (%d dialogs)", self.client.alias,
                     len(dialogs))
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(dialogs)

    # -- call tracking ----------------------------------------------------

    def track(self, origin_id: str, request: dict[str, Any]) -> None:
        self.calls[origin_id] = TrackedCall(origin_id, request, time.time())

    def untrack(self, origin_id: str) -> TrackedCall | None:
        self.credit_cuts.pop(origin_id, None)
        return self.calls.pop(origin_id, None)
