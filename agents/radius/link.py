"""The engine's way back to a NAS: Disconnect-Request and CoA-Request (RFC 5176).

The session manager calls ``disconnect_session`` when it cuts a session (no
credit, TTL, forced); ``alter_session`` changes a running session's
Session-Timeout (a top-up mid-session). The NAS is found from the session's
start event: ``RadiusNASAddress`` (the source address the template records)
or an IP ``OriginHost``; secret and DA port come from the client table.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any, Mapping

from agents.radius import codec
from agents.radius.clients import ClientTable, RadiusClient
from agents.radius.dictionary import RadiusDictionary
from agents.radius.dynauth import DynAuthClient, DynAuthError, DynAuthResult
from engine.event import ACCOUNT, ORIGIN_HOST, ORIGIN_ID

log = logging.getLogger("chargeway.radius.link")

NAS_ADDRESS_FIELD = "RadiusNASAddress"


class RadiusLink:
    """``AgentLink`` for sessions opened through the RADIUS agent."""

    name = "radius"

    def __init__(self, dynauth: DynAuthClient, clients: ClientTable, dictionary: RadiusDictionary,
                 template: Any = None) -> None:
        self.dynauth = dynauth
        self.clients = clients
        self.dictionary = dictionary
        self.template = template                      # named lists "dmr" / "coa" add attributes
        self.sent: list[tuple[str, str]] = []        # (request name, OriginID), for logs and tests

    def _template_attrs(self, name: str, event: Mapping[str, Any],
                        extra_vars: Mapping[str, Any]) -> list[tuple[codec.AttrKey, bytes]]:
        """Attributes from the template's ``templates.<name>`` list (CGRateS dmr/coa_template).

        Fields read the session's start event as ``~*cgreq.X`` and write ``*rep.<Attribute>``.
        """
        lists = getattr(self.template, "lists", None) or {}
        if name not in lists:
            return []
        built = self.template.render(name, vars=dict(extra_vars), cgreq=dict(event))
        out: list[tuple[codec.AttrKey, bytes]] = []
        for item in built.items():
            attr_name, _, tag = item.path[0].partition(":")
            definition = self.dictionary.definition(attr_name)
            values = item.value if isinstance(item.value, list) else [item.value]
            out.extend((definition.key, self.dictionary.encode(definition, v, int(tag) if tag else 0))
                       for v in values if v not in (None, ""))
        return out

    def _target(self, event: Mapping[str, Any]) -> tuple[tuple[str, int], RadiusClient, str]:
        candidates = [event.get(NAS_ADDRESS_FIELD), event.get(ORIGIN_HOST), event.get("NAS-IP-Address")]
        for candidate in candidates:
            if not candidate:
                continue
            host = str(candidate)
            try:
                ipaddress.ip_address(host)
            except ValueError:
                continue
            client = self.clients.lookup(host)
            if client is not None:
                return (host, client.da_port), client, host
        raise DynAuthError(f"session {event.get(ORIGIN_ID)!r}: no known NAS address "
                           f"(fields {NAS_ADDRESS_FIELD}/{ORIGIN_HOST} = {candidates[:2]})")

    def _identity_attrs(self, event: Mapping[str, Any], nas_ip: str) -> list[tuple[codec.AttrKey, bytes]]:
        """Session identification attributes (RFC 5176 section 3): who and which session."""
        d = self.dictionary
        attrs: list[tuple[codec.AttrKey, bytes]] = []
        user = event.get("User-Name") or event.get(ACCOUNT)
        if user:
            attrs.append((codec.USER_NAME, str(user).encode()))
        origin_id = event.get(ORIGIN_ID)
        if origin_id:
            attrs.append((d.definition("Acct-Session-Id").key, str(origin_id).encode()))
        origin_host = str(event.get(ORIGIN_HOST) or "")
        try:
            ip = ipaddress.ip_address(origin_host or nas_ip)
        except ValueError:
            ip = None
        if origin_host and ip is None:
            attrs.append((d.definition("NAS-Identifier").key, origin_host.encode()))
        elif ip is not None and ip.version == 4:
            attrs.append((d.definition("NAS-IP-Address").key, ip.packed))
        return attrs

    async def disconnect_session(self, event: Mapping[str, Any], reason: str) -> None:
        """Disconnect-Request; returns on Disconnect-ACK, raises ``DynAuthError`` on NAK or silence."""
        dest, client, nas_ip = self._target(event)
        attrs = self._identity_attrs(event, nas_ip)
        if reason:
            attrs.append((self.dictionary.definition("Reply-Message").key, reason.encode()[:253]))
        attrs += self._template_attrs("dmr", event, {"DisconnectCause": reason})
        result = await self.dynauth.send(codec.DISCONNECT_REQUEST, dest, client.secret, attrs)
        self.sent.append(("Disconnect-Request", str(event.get(ORIGIN_ID))))
        log.info("Disconnect-ACK from %s:%d for session %s (%s) after %d attempt(s)", dest[0], dest[1],
                 event.get(ORIGIN_ID), reason, result.attempts)

    async def alter_session(self, event: Mapping[str, Any], session_timeout_s: int,
                            reply_message: str = "") -> DynAuthResult:
        """CoA-Request setting a new Session-Timeout (seconds) on a running session."""
        dest, client, nas_ip = self._target(event)
        d = self.dictionary
        st = d.definition("Session-Timeout")
        attrs = self._identity_attrs(event, nas_ip)
        attrs.append((st.key, d.encode(st, max(0, int(session_timeout_s)))))
        if reply_message:
            attrs.append((d.definition("Reply-Message").key, reply_message.encode()[:253]))
        attrs += self._template_attrs("coa", event, {"SessionTimeout": int(session_timeout_s)})
        result = await self.dynauth.send(codec.COA_REQUEST, dest, client.secret, attrs)
        self.sent.append(("CoA-Request", str(event.get(ORIGIN_ID))))
        log.info("CoA-ACK from %s:%d: session %s Session-Timeout now %ds", dest[0], dest[1],
                 event.get(ORIGIN_ID), session_timeout_s)
        return result

    async def warn_disconnect(self, event: Mapping[str, Any], remaining_ns: int) -> None:
        """RADIUS has no low-balance warning message; the NAS already holds Session-Timeout."""
        log.debug("session %s: %d ns of credit left", event.get(ORIGIN_ID), remaining_ns)

    async def active_session_ids(self) -> list[tuple[str, str]] | None:
        """RADIUS cannot ask a NAS for its sessions: unknown."""
        return None
