"""Start the RADIUS agent from its config section (``radius:`` in chargeway.yaml).

```yaml
radius:
  enabled: true
  auth_address: 127.0.0.1:1812
  acct_address: 127.0.0.1:1813
  clients:                       # longest matching network wins; unknown sources are dropped
    - {network: 127.0.0.0/8, secret: CGRateS.org, require_message_authenticator: false, da_port: 3799}
  dictionaries: []               # extra FreeRADIUS-format vendor files (the curated set is always loaded)
  template: radius.yaml
  tenant: ""                     # Tenant for every request (empty: general.default_tenant)
  dup_cache_seconds: 5           # how long a reply is kept to answer retransmissions
  disconnect_attempts: 3         # Disconnect/CoA tries (back-off doubles from disconnect_timeout)
  disconnect_timeout: 1s
```
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.radius.clients import ClientTable
from agents.radius.dedup import DuplicateCache
from agents.radius.dictionary import DEFAULT_DICTIONARY, RadiusDictionary
from agents.radius.dynauth import DynAuthClient
from agents.radius.handler import RadiusHandler
from agents.radius.link import NAS_ADDRESS_FIELD, RadiusLink
from agents.radius.server import RadiusServer
from engine.runtime import AgentContext
from engine.units import SECOND, parse_duration

log = logging.getLogger("chargeway.radius")


class RadiusConfigError(ValueError):
    """A ``radius:`` setting is invalid; the message names it."""


KNOWN_KEYS = frozenset({"enabled", "auth_address", "acct_address", "clients", "dictionaries", "template", "tenant",
                        "dup_cache_seconds", "disconnect_attempts", "disconnect_timeout"})


def check_section(section: dict) -> None:
    unknown = sorted(set(section) - KNOWN_KEYS)
    if unknown:
        raise RadiusConfigError(f"radius: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_KEYS))}")
    if not section.get("clients"):
        raise RadiusConfigError("radius.clients: no client network configured; every packet would be dropped")


def split_address(text: str, key: str) -> tuple[str, int]:
    host, sep, port = str(text).rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise RadiusConfigError(f"radius.{key}: {text!r} is not host:port")
    return host.strip("[]") or "0.0.0.0", int(port)


@dataclass
class RadiusService:
    """The running agent: both listeners, the DA client and the engine link."""

    auth: RadiusServer
    acct: RadiusServer
    dynauth: DynAuthClient
    link: RadiusLink
    handler: RadiusHandler
    sessions: Any
    dictionary: RadiusDictionary
    stopped: bool = field(default=False)

    @property
    def auth_address(self) -> tuple[str, int]:
        assert self.auth.address is not None
        return self.auth.address

    @property
    def acct_address(self) -> tuple[str, int]:
        assert self.acct.address is not None
        return self.acct.address

    async def alter_session(self, event: dict[str, Any], session_timeout_s: int, reply_message: str = ""):
        """Send a CoA-Request with a new Session-Timeout (seconds); see ``RadiusLink.alter_session``."""
        return await self.link.alter_session(event, session_timeout_s, reply_message)

    async def refresh_session_timeouts(self, tenant: str, account: str) -> int:
        """After a top-up: CoA each open RADIUS session of the account with a longer Session-Timeout.

        New Session-Timeout = seconds already used + seconds the account can afford now
        (engine authorize for the session's destination). Returns how many NASes
        acknowledged. Called by whoever changes balances (API ``*topup``, actions); the
        agent exposes itself as ``ctx.extras["radius"]`` for that.
        """
        if self.sessions is None:
            return 0
        acknowledged = 0
        seen: set[str] = set()
        for session in self.sessions.active_sessions({"Tenant": tenant, "Account": account}):
            cgrid = str(session.get("CGRID"))
            if cgrid in seen or not session.get("ExtraFields", {}).get(NAS_ADDRESS_FIELD):
                continue
            seen.add(cgrid)
            fields = {name: session.get(name) for name in ("Tenant", "Account", "Subject", "Destination",
                                                          "ToR", "Category", "RequestType")}
            try:
                reply = await self.sessions.authorize(fields, {})
            except Exception as err:
                log.warning("session %s: cannot re-authorize after top-up: %s", session.get("OriginID"), err)
                continue
            if not reply.ok or not reply.max_usage or reply.max_usage < 0:
                continue
            used_s = int(session.get("Usage") or 0) // SECOND
            event = {**session.get("ExtraFields", {}), **session}
            try:
                await self.link.alter_session(event, used_s + reply.max_usage // SECOND)
                acknowledged += 1
            except Exception as err:
                log.warning("session %s: CoA after top-up failed: %s", session.get("OriginID"), err)
        return acknowledged

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        await self.auth.stop()
        await self.acct.stop()
        await self.handler.close()
        if self.sessions is not None and hasattr(self.sessions, "unregister_link"):
            self.sessions.unregister_link(self.link)
        await self.dynauth.stop()


def load_dictionaries(ctx: AgentContext, section: dict) -> RadiusDictionary:
    extra: list[Path] = []
    for entry in section.get("dictionaries") or []:
        path = Path(str(entry))
        if not path.is_absolute():
            path = ctx.root_dir / path
        if path.resolve() == DEFAULT_DICTIONARY.resolve():
            continue                  # the curated set is always loaded first
        extra.append(path)
    return RadiusDictionary.load(extra)


def build_runner(ctx: AgentContext, section: dict) -> Any:
    from engine.templating import TemplateRunner, load_template

    template = load_template(ctx.template_path(str(section.get("template", "radius.yaml"))), agent="radius")
    return TemplateRunner(template, ctx.sessions)


def check_dynauth_lists(template: Any, dictionary: RadiusDictionary) -> None:
    """The ``dmr``/``coa`` lists may only write attributes the dictionaries know (fail at start-up)."""
    for name in ("dmr", "coa"):
        for fld in (getattr(template, "lists", None) or {}).get(name, []):
            target = fld.target
            if target.root != "*rep" or not target.names:
                continue
            attr = target.names[0].partition(":")[0]
            try:
                dictionary.definition(attr)
            except KeyError as err:
                raise RadiusConfigError(f"template list {name!r}: {err.args[0]}") from None


async def start(ctx: AgentContext, section: dict) -> RadiusService:
    """Build and start the agent; raises ``RadiusConfigError`` / ``TemplateError`` on bad config."""
    check_section(section)
    dictionary = load_dictionaries(ctx, section)
    clients = ClientTable.from_config(section.get("clients") or [])
    runner = build_runner(ctx, section)
    check_dynauth_lists(runner.template, dictionary)
    timeout_ns = parse_duration(section.get("disconnect_timeout", "1s"))
    dynauth = DynAuthClient(attempts=int(section.get("disconnect_attempts", 3)),
                            timeout=timeout_ns / SECOND)
    link = RadiusLink(dynauth, clients, dictionary, runner.template)
    tenant = str(section.get("tenant") or "") or None
    handler = RadiusHandler(dictionary, runner, ctx.sessions, link, tenant=tenant)
    ttl = float(section.get("dup_cache_seconds", 5))
    dedup_auth = DuplicateCache(ttl)
    dedup_acct = DuplicateCache(ttl)
    auth = RadiusServer("auth", clients, handler, dedup_auth)
    acct = RadiusServer("acct", clients, handler, dedup_acct)
    auth_host, auth_port = split_address(section.get("auth_address", "127.0.0.1:1812"), "auth_address")
    acct_host, acct_port = split_address(section.get("acct_address", "127.0.0.1:1813"), "acct_address")
    await dynauth.start("::" if ":" in auth_host else "0.0.0.0")
    await auth.start(auth_host, auth_port)
    try:
        await acct.start(acct_host, acct_port)
    except OSError:
        await auth.stop()
        await dynauth.stop()
        raise
    if ctx.sessions is not None and hasattr(ctx.sessions, "register_link"):
        ctx.sessions.register_link(link)
    service = RadiusService(auth, acct, dynauth, link, handler, ctx.sessions, dictionary)
    ctx.extras["radius"] = service          # alter_session / refresh_session_timeouts for the API
    if hasattr(ctx.accounts, "on_topup"):
        # A top-up mid-session sends CoA with the longer Session-Timeout, without the operator asking.
        ctx.accounts.on_topup(service.refresh_session_timeouts)
    return service
