"""Start the Diameter Gy/Ro agent from its ``diameter:`` config section.

```yaml
diameter:
  enabled: true
  listeners: [{address: 127.0.0.1:3868, transport: tcp}]   # tcp | tls | sctp
  origin_host: localhost        # the name clients configured for us (checked by them in CEA)
  origin_realm: chargeway.org
  host_ip_addresses: [127.0.0.1]
  tls: {cert: server.pem, key: server.key, ca: clients-ca.pem}   # ca: require client certs
  template: diameter.yaml
  tenant: ""                    # ~*vars.Tenant; empty: the engine's default tenant
  watchdog_interval: 30         # Tw seconds
  validity_time: 300            # seconds, sent in every grant
  tcc_multiplier: 2             # a session silent for this x Validity-Time is ended
  zero_rated_rating_groups: []  # Rating-Groups answered 4011 (credit control not applicable)
```
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from typing import Any

from agents.diameter.credit_control import CcConfig, CreditControlServer
from agents.diameter.link import DiameterLink
from agents.diameter.mapping import TemplateMapper
from agents.diameter.peer import PeerConfig
from agents.diameter.server import DiameterServer, SctpUnavailable
from engine.runtime import AgentContext
from engine.templating import load_template

log = logging.getLogger("chargeway.diameter")

KNOWN_KEYS = {
    "enabled", "listeners", "origin_host", "origin_realm", "host_ip_addresses", "tls", "template",
    "tenant", "watchdog_interval", "validity_time", "tcc_multiplier", "vendor_id", "product_name",
    "request_timeout", "cer_timeout", "zero_rated_rating_groups",
}


class DiameterConfigError(ValueError):
    """A bad ``diameter:`` section: the message names the key."""


@dataclass
class DiameterService:
    """What ``start`` returns: the server, its link and how to stop it."""

    server: DiameterServer
    link: DiameterLink
    cc: CreditControlServer
    sessions: Any

    @property
    def addresses(self) -> list[tuple[str, int, str]]:
        return self.server.addresses

    async def refresh_after_topup(self, tenant: str, account: str) -> int:
        """After a top-up: RAR each live Gy session of the account so the client re-requests.

        A client that got Final-Unit-Indication (or a small grant) would otherwise cut
        the user at the old limit; the RAR makes it report usage and ask for more now.
        Returns how many RARs were answered with success.
        """
        if self.sessions is None:
            return 0
        answered = 0
        for session in self.sessions.active_sessions({"Tenant": tenant, "Account": account}):
            origin_id = str(session.get("OriginID", ""))
            if self.cc.session_for(origin_id) is None:
                continue            # not one of ours (another agent's session)
            try:
                await self.link.alter_session(session)
                answered += 1
            except Exception as err:  # one unreachable peer must not stop the others
                log.warning("diameter: RAR after top-up for %s failed: %s", origin_id, err)
        return answered

    async def stop(self) -> None:
        if self.sessions is not None and hasattr(self.sessions, "unregister_link"):
            self.sessions.unregister_link(self.link)
        await self.server.close()


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = str(text).rpartition(":")
    if not sep or not port.isdigit():
        raise DiameterConfigError(f"diameter.listeners: address {text!r} must be host:port")
    return host.strip("[]") or "0.0.0.0", int(port)


def tls_context(tls: dict[str, Any]) -> ssl.SSLContext:
    """Server-side TLS (RFC 6733 TLS/TCP); with ``ca`` the client must present a certificate."""
    if not tls.get("cert") or not tls.get("key"):
        raise DiameterConfigError("diameter.tls: cert and key are required for a tls listener")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(tls["cert"]), str(tls["key"]))
    if tls.get("ca"):
        context.load_verify_locations(str(tls["ca"]))
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _number(section: dict[str, Any], key: str, default: float) -> float:
    value = section.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DiameterConfigError(f"diameter.{key}: {value!r} is not a number") from None
    if number < 0:
        raise DiameterConfigError(f"diameter.{key}: must not be negative")
    return number


def _int_list(section: dict[str, Any], key: str) -> list[int]:
    values = section.get(key) or []
    if not isinstance(values, list):
        raise DiameterConfigError(f"diameter.{key}: must be a list of integers")
    try:
        return [int(v) for v in values]
    except (TypeError, ValueError):
        raise DiameterConfigError(f"diameter.{key}: {values!r} must be integers") from None


def build_configs(section: dict[str, Any]) -> tuple[PeerConfig, CcConfig]:
    unknown = sorted(set(section) - KNOWN_KEYS)
    if unknown:
        raise DiameterConfigError(f"diameter: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_KEYS))}")
    origin_host = str(section.get("origin_host") or "localhost")
    origin_realm = str(section.get("origin_realm") or "chargeway.org")
    ips = section.get("host_ip_addresses") or ["127.0.0.1"]
    peer = PeerConfig(
        origin_host=origin_host, origin_realm=origin_realm, host_ip_addresses=tuple(str(i) for i in ips),
        vendor_id=int(section.get("vendor_id", 0)), product_name=str(section.get("product_name", "chargeway")),
        watchdog_interval=_number(section, "watchdog_interval", 30) or 30,
        request_timeout=_number(section, "request_timeout", 5) or 5,
        cer_timeout=_number(section, "cer_timeout", 10) or 10,
    )
    cc = CcConfig(
        origin_host=origin_host, origin_realm=origin_realm,
        validity_time=int(_number(section, "validity_time", 300)),
        tcc_multiplier=_number(section, "tcc_multiplier", 2) or 2,
        tenant=str(section.get("tenant") or ""),
        zero_rated=frozenset(_int_list(section, "zero_rated_rating_groups")),
    )
    return peer, cc


async def start(ctx: AgentContext, section: dict) -> DiameterService:
    """Load the template, open the listeners, register the AgentLink."""
    peer_config, cc_config = build_configs(section)
    template = load_template(ctx.template_path(str(section.get("template") or "diameter.yaml")), agent="diameter")
    mapper = TemplateMapper(template, ctx.sessions)
    cc = CreditControlServer(mapper, cc_config, clock=asyncio.get_running_loop().time)
    server = DiameterServer(peer_config, cc)
    link = DiameterLink(server)
    mapper.link = link
    listeners = section.get("listeners") or [{"address": "127.0.0.1:3868", "transport": "tcp"}]
    started = 0
    for item in listeners:
        if not isinstance(item, dict) or "address" not in item:
            raise DiameterConfigError(f"diameter.listeners: {item!r} needs an address")
        host, port = parse_address(item["address"])
        transport = str(item.get("transport", "tcp")).lower()
        context = tls_context(section.get("tls") or {}) if transport == "tls" else None
        try:
            await server.listen(host, port, transport, context)
            started += 1
        except SctpUnavailable as err:
            log.error("%s", err)
    if not started:
        await server.close()
        raise DiameterConfigError("diameter: no listener could be started (see the errors above)")
    server.start_supervision()
    if ctx.sessions is not None and hasattr(ctx.sessions, "register_link"):
        ctx.sessions.register_link(link)
    service = DiameterService(server, link, cc, ctx.sessions)
    if hasattr(ctx.accounts, "on_topup"):
        ctx.accounts.on_topup(service.refresh_after_topup)
    return service
