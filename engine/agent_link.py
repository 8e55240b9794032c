"""How the engine calls an agent back, without importing it.

Each agent registers an ``AgentLink`` with the session manager; sessions
initiated through that agent remember it and the engine uses it to cut a call
(credit exhausted, TTL, forced), to warn of low balance and to reconcile.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, runtime_checkable


@runtime_checkable
class AgentLink(Protocol):
    """Callbacks an agent serves (CGRateS AgentV1.* over BiRPC, in-process here)."""

    name: str

    async def disconnect_session(self, event: Mapping[str, Any], reason: str) -> None:
        """Hang the session up. ``event`` is the session's start event fields
        (CGRateS names, agent-specific extras such as h_entry/h_id kept) plus
        DisconnectCause and Usage (total ns). Raise to signal failure (retried)."""
        ...

    async def warn_disconnect(self, event: Mapping[str, Any], remaining_ns: int) -> None:
        """Low-balance warning a configurable time before the cut."""
        ...

    async def active_session_ids(self) -> list[tuple[str, str]] | None:
        """(OriginHost, OriginID) of the sessions the switch still has, or None if unknown."""
        ...
