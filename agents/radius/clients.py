"""RADIUS clients (NASes) by network: shared secret and per-client policy.

One secret per CIDR, longest prefix wins, so a specific NAS can override a
catch-all network. A source address matching no network is an unknown client:
its packets are dropped (and logged, rate-limited by the server).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping


class ClientConfigError(ValueError):
    """A ``clients:`` entry is invalid; the message names the entry."""


@dataclass(frozen=True, slots=True)
class RadiusClient:
    """What we know about a NAS network."""

    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    secret: bytes
    require_message_authenticator: bool = False
    da_port: int = 3799
    name: str = ""
    # Name for logs and the ``*radClient`` template variable (read per request: made once).
    label: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "label", self.name or self.network.with_prefixlen)


class ClientTable:
    """Source IP -> ``RadiusClient`` with a per-address cache (the hot path is one dict get)."""

    def __init__(self, clients: Iterable[RadiusClient]) -> None:
        self._clients = sorted(clients, key=lambda c: c.network.prefixlen, reverse=True)
        self._cache: dict[str, RadiusClient | None] = {}

    @classmethod
    def from_config(cls, entries: Iterable[Mapping[str, Any]]) -> "ClientTable":
        clients = []
        for index, entry in enumerate(entries or []):
            where = f"radius.clients[{index}]"
            try:
                network = ipaddress.ip_network(str(entry["network"]), strict=False)
            except KeyError:
                raise ClientConfigError(f"{where}: missing 'network'") from None
            except ValueError as err:
                raise ClientConfigError(f"{where}: {err}") from None
            secret = entry.get("secret")
            if not secret:
                raise ClientConfigError(f"{where}: missing 'secret'")
            da_port = int(entry.get("da_port", 3799))
            if not 0 < da_port < 65536:
                raise ClientConfigError(f"{where}: da_port {da_port} is not a UDP port")
            clients.append(RadiusClient(
                network=network,
                secret=str(secret).encode(),
                require_message_authenticator=bool(entry.get("require_message_authenticator", False)),
                da_port=da_port,
                name=str(entry.get("name", "")),
            ))
        return cls(clients)

    def lookup(self, host: str) -> RadiusClient | None:
        try:
            return self._cache[host]
        except KeyError:
            pass
        found = None
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None:
            for client in self._clients:
                if address.version == client.network.version and address in client.network:
                    found = client
                    break
        if len(self._cache) < 65536:
            self._cache[host] = found
        return found
