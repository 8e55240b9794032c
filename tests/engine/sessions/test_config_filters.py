"""Sessions config from YAML-shaped mappings, and the inline filters sessions accept."""

from __future__ import annotations

import pytest

from engine.errors import ChargingError
from engine.sessions.chargers import parse_overrides
from engine.sessions.config import SessionsConfig
from engine.sessions.filters import compile_filters, match_all
from engine.units import HOUR, SECOND


def test_defaults_match_the_documented_config():
    cfg = SessionsConfig.from_mapping({})
    assert cfg.debit_interval == 30 * SECOND and cfg.session_ttl == 0
    assert cfg.session_ttl_debit_loop == 3 * HOUR and cfg.terminate_attempts == 5
    assert cfg.usage_for("*voice") == 3 * HOUR and cfg.usage_for("*data") == 1048576
    assert cfg.usage_for("*sms") == 1 and cfg.store_missed_calls


def test_durations_and_caps_parse():
    cfg = SessionsConfig.from_mapping({"debit_interval": "5s", "session_ttl": 60_000_000_000,
                                       "default_usage": {"*voice": "1h"}, "max_usage": {"*voice": "2h"}})
    assert cfg.debit_interval == 5 * SECOND and cfg.session_ttl == 60 * SECOND
    assert cfg.usage_for("*voice") == HOUR and cfg.usage_for("*data") == 1048576
    assert cfg.cap("*voice", 3 * HOUR) == 2 * HOUR and cfg.cap("*data", 10) == 10


@pytest.mark.parametrize("section, message", [
    ({"debit_intervall": "5s"}, "unknown key"),
    ({"debit_interval": "five"}, "sessions.debit_interval"),
    ({"terminate_attempts": 0}, "terminate_attempts"),
    ({"store_missed_calls": "yes"}, "store_missed_calls"),
    ({"default_usage": [1]}, "default_usage"),
])
def test_bad_config_names_the_key(section, message):
    with pytest.raises(ChargingError) as err:
        SessionsConfig.from_mapping(section)
    assert message in str(err.value)


def test_inline_filters():
    fields = {"Account": "1001", "Destination": "4915123", "Tenant": "cgrates.org"}
    assert match_all(compile_filters(["*string:~*req.Account:1001|1002"]), fields)
    assert not match_all(compile_filters(["*string:~*req.Account:1003"]), fields)
    assert match_all(compile_filters(["*prefix:~*req.Destination:4915", "*notstring:~*req.Account:9"]), fields)
    assert not match_all(compile_filters(["*notprefix:~*req.Destination:49"]), fields)
    assert match_all(compile_filters(["*exists:~*req.Tenant:"]), fields)
    assert not match_all(compile_filters(["*exists:~*req.Subject:"]), fields)
    assert match_all(compile_filters({"Account": "1001"}), fields)
    with pytest.raises(ChargingError):
        compile_filters(["Account=1001"])
    with pytest.raises(ChargingError):
        compile_filters(["*gt:~*req.Usage:10"])


def test_charger_attribute_overrides():
    assert parse_overrides(["*constant:*req.Subject:SUPPL;*constant:*req.RequestType:*rated"]) == (
        ("Subject", "SUPPL"), ("RequestType", "*rated"))
    assert parse_overrides(["*none"]) == ()
    with pytest.raises(ChargingError):
        parse_overrides(["*constant:*req.CGRID:x"])
