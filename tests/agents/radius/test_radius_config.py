"""Config mistakes in the ``radius:`` section stop start-up with the key named."""

from __future__ import annotations

import pytest

from agents.radius.clients import ClientConfigError, ClientTable
from agents.radius.service import RadiusConfigError, check_section, split_address


@pytest.mark.parametrize("entries, message", [
    ([{"secret": "x"}], r"radius.clients\[0\]: missing 'network'"),
    ([{"network": "10.0.0.0/33", "secret": "x"}], r"radius.clients\[0\]:"),
    ([{"network": "10.0.0.0/8"}], r"radius.clients\[0\]: missing 'secret'"),
    ([{"network": "10.0.0.0/8", "secret": "x", "da_port": 70000}], r"da_port 70000"),
])
def test_bad_clients(entries, message):
    with pytest.raises(ClientConfigError, match=message):
        ClientTable.from_config(entries)


def test_longest_prefix_wins_and_unknown_is_none():
    table = ClientTable.from_config([{"network": "10.0.0.0/8", "secret": "wide"},
                                     {"network": "10.1.2.3/32", "secret": "nas", "da_port": 1700}])
    assert table.lookup("10.1.2.3").secret == b"nas" and table.lookup("10.1.2.3").da_port == 1700
    assert table.lookup("10.9.9.9").secret == b"wide"
    assert table.lookup("192.168.0.1") is None
    assert table.lookup("::1") is None


def test_addresses():
    assert split_address("127.0.0.1:1812", "auth_address") == ("127.0.0.1", 1812)
    assert split_address("[::1]:1813", "acct_address") == ("::1", 1813)
    with pytest.raises(RadiusConfigError, match="radius.auth_address"):
        split_address("localhost", "auth_address")


def test_section_keys_checked():
    with pytest.raises(RadiusConfigError, match="unknown key.*acct_adress"):
        check_section({"enabled": True, "acct_adress": "127.0.0.1:1813", "clients": [{}]})
    with pytest.raises(RadiusConfigError, match="radius.clients: no client network"):
        check_section({"enabled": True})


def test_dynauth_list_with_unknown_attribute_stops_startup(tmp_path):
    from agents.radius.dictionary import RadiusDictionary
    from agents.radius.service import check_dynauth_lists
    from engine.templating import load_template

    path = tmp_path / "radius.yaml"
    path.write_text("agent: radius\ntemplates:\n  dmr:\n"
                    "    - {tag: X, path: *rep.No-Such-Attribute, value: ~*cgreq.Account}\n"
                    "processors:\n  - id: P\n    flags: [*none]\n    request_fields: []\n")
    with pytest.raises(RadiusConfigError, match="'dmr'.*No-Such-Attribute"):
        check_dynauth_lists(load_template(path, agent="radius"), RadiusDictionary.load())
