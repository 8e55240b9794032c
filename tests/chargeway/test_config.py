"""Config: documented defaults merged with the operator's file; typos fail loudly."""

from pathlib import Path

import pytest

from chargeway.config import ConfigError, deep_merge, load_config


def test_defaults_load_and_bind_loopback(tmp_path: Path) -> None:
    config = load_config(None, tmp_path)
    assert config.section("general")["default_tenant"] == "cgrates.org"
    assert config.section("api")["tcp"] == "127.0.0.1:2012"
    assert config.data_dir == tmp_path.resolve()


def test_user_file_merges_key_by_key(tmp_path: Path) -> None:
    user = tmp_path / "c.yaml"
    user.write_text("sessions:\n  debit_interval: 5s\napi:\n  tcp: 127.0.0.1:9999\n")
    config = load_config(user, tmp_path)
    assert config.section("sessions")["debit_interval"] == "5s"
    # untouched keys keep their defaults
    assert config.section("sessions")["terminate_attempts"] == 5
    assert config.section("api")["http"] == "127.0.0.1:2080"


def test_unknown_section_is_an_error_naming_the_file(tmp_path: Path) -> None:
    user = tmp_path / "c.yaml"
    user.write_text("sesions:\n  debit_interval: 5s\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: unknown section\(s\) sesions"):
        load_config(user, tmp_path)


def test_section_of_wrong_type_is_an_error(tmp_path: Path) -> None:
    user = tmp_path / "c.yaml"
    user.write_text("sessions: 5\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(user, tmp_path)


def test_invalid_yaml_is_reported(tmp_path: Path) -> None:
    user = tmp_path / "c.yaml"
    user.write_text("sessions: [\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(user, tmp_path)


def test_deep_merge_replaces_lists() -> None:
    assert deep_merge({"a": {"b": [1, 2], "c": 1}}, {"a": {"b": [3]}}) == {"a": {"b": [3], "c": 1}}
