"""The kamailio config section: what a user writes, and clear errors for what is wrong."""

from __future__ import annotations

import pytest

from agents.kamailio.client import Backoff
from agents.kamailio.service import KamailioConfigError, parse_section


def test_defaults_and_full_section() -> None:
    conns, netstrings, backoff, variables = parse_section({})
    assert [c.address for c in conns] == ["127.0.0.1:8448"] and netstrings is True
    assert backoff == Backoff(0.5, 10.0) and variables == {}
    conns, netstrings, backoff, variables = parse_section({
        "evapi_conns": [{"address": "10.0.0.1:8448", "alias": "kam1"}, "10.0.0.2:8448"],
        "netstrings": False, "reconnect": {"initial": "200ms", "max": "5s"}, "debit_interval": "10s"})
    assert [(c.address, c.alias) for c in conns] == [("10.0.0.1:8448", "kam1"), ("10.0.0.2:8448", "")]
    assert netstrings is False and backoff == Backoff(0.2, 5.0)
    assert variables == {"DebitInterval": "10s"}


@pytest.mark.parametrize("section, message", [
    ({"evapi_conns": "127.0.0.1:8448"}, "must be a list"),
    ({"evapi_conns": [{"alias": "x"}]}, r"evapi_conns\[0\]: address"),
    ({"evapi_conns": [{"address": "localhost"}]}, r"evapi_conns\[0\]: evapi address must be host:port"),
    ({"evapi_conns": ["127.0.0.1:8448", "127.0.0.1:8448"]}, "share an address"),
    ({"reconnect": {"initial": "10s", "max": "1s"}}, "initial <= max"),
    ({"reconnect": {"initial": "soon"}}, "kamailio.reconnect"),
])
def test_bad_sections_name_the_key(section: dict, message: str) -> None:
    with pytest.raises(KamailioConfigError, match=message):
        parse_section(section)
