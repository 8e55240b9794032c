"""Composition-root entry: start the Kamailio evapi agent from its config section.

```yaml
kamailio:
  enabled: true
  evapi_conns:
    - {address: 127.0.0.1:8448, alias: kam1}   # alias: OriginHost of its calls (default: address)
  netstrings: true                             # false: newline-free raw JSON (evapi netstring_format 0)
  reconnect: {initial: 0.5s, max: 10s}
  debit_interval: 5s                           # prepaid debit loop slice (template default otherwise)
  template: kamailio.yaml
```
"""

from __future__ import annotations

from typing import Any

from agents.kamailio.agent import ConnConfig, KamailioAgent
from agents.kamailio.client import Backoff, parse_address
from engine.runtime import AgentContext, RunningService
from engine.templating import TemplateRunner, load_template
from engine.units import SECOND, parse_duration


class KamailioConfigError(ValueError):
    """The kamailio config section is wrong; the message names the key."""


def parse_section(section: dict[str, Any]) -> tuple[list[ConnConfig], bool, Backoff, dict[str, Any]]:
    """Validated connections, framing, backoff and template variables."""
    raw_conns = section.get("evapi_conns") or [{"address": "127.0.0.1:8448"}]
    if not isinstance(raw_conns, list):
        raise KamailioConfigError("kamailio.evapi_conns must be a list of {address: host:port}")
    conns: list[ConnConfig] = []
    for i, item in enumerate(raw_conns):
        if isinstance(item, str):
            item = {"address": item}
        if not isinstance(item, dict) or not item.get("address"):
            raise KamailioConfigError(f"kamailio.evapi_conns[{i}]: address (host:port) is required")
        address = str(item["address"])
        try:
            parse_address(address)
        except ValueError as exc:
            raise KamailioConfigError(f"kamailio.evapi_conns[{i}]: {exc}") from None
        conns.append(ConnConfig(address=address, alias=str(item.get("alias") or "")))
    aliases = [c.alias or c.address for c in conns]
    if len(set(aliases)) != len(aliases):
        raise KamailioConfigError("kamailio.evapi_conns: two connections share an address/alias")
    reconnect = section.get("reconnect") or {}
    try:
        initial = parse_duration(reconnect.get("initial", "0.5s")) / SECOND
        maximum = parse_duration(reconnect.get("max", "10s")) / SECOND
    except Exception as exc:
        raise KamailioConfigError(f"kamailio.reconnect: {exc}") from None
    if initial <= 0 or maximum < initial:
        raise KamailioConfigError("kamailio.reconnect: need 0 < initial <= max")
    agent_vars: dict[str, Any] = {}
    if section.get("debit_interval") not in (None, ""):
        agent_vars["DebitInterval"] = section["debit_interval"]
    return conns, bool(section.get("netstrings", True)), Backoff(initial, maximum), agent_vars


class KamailioService:
    """What ``start`` returns: the running agent."""

    def __init__(self, agent: KamailioAgent) -> None:
        self.agent = agent

    async def stop(self) -> None:
        await self.agent.stop()


async def start(ctx: AgentContext, section: dict) -> RunningService:
    conns, netstrings, backoff, agent_vars = parse_section(section)
    template = load_template(ctx.template_path(str(section.get("template") or "kamailio.yaml")),
                             agent="kamailio")
    agent = KamailioAgent(ctx.sessions, TemplateRunner(template, ctx.sessions), conns,
                          netstrings=netstrings, backoff=backoff, agent_vars=agent_vars)
    await agent.start()
    return KamailioService(agent)
