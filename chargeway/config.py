"""Configuration: the documented defaults in config/chargeway.yaml, merged with the user's file.

Nested mappings merge key by key; lists and scalars replace. An unknown top-level
section or a wrong type for a known one fails start-up with the file and key,
because a silently ignored typo in a charging system costs money.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

ROOT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT_DIR / "config" / "chargeway.yaml"
DEFAULT_DATA_DIR = Path(os.environ.get("CHARGEWAY_DATA_DIR", ROOT_DIR / "data"))
AGENT_SECTIONS = ("api", "diameter", "radius", "kamailio", "freeswitch", "asterisk", "opensips")


class ConfigError(Exception):
    """A configuration problem, with the file and key it comes from."""


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``: mappings recursively, everything else replaced."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    return data


@dataclass
class Config:
    """The merged configuration and where it came from."""

    raw: dict[str, Any]
    source: Path | None
    data_dir: Path

    def section(self, name: str) -> dict[str, Any]:
        value = self.raw.get(name) or {}
        if not isinstance(value, dict):
            raise ConfigError(f"{self.source or DEFAULT_CONFIG}: section {name!r} must be a mapping")
        return value

    def resolve_path(self, value: str | os.PathLike[str]) -> Path:
        """Relative paths in config are relative to the repository root (where config/ lives)."""
        path = Path(value)
        if path.is_absolute():
            return path
        for base in (Path.cwd(), ROOT_DIR):
            if (base / path).exists():
                return base / path
        return ROOT_DIR / path


def load_config(path: str | os.PathLike[str] | None = None, data_dir: str | os.PathLike[str] | None = None) -> Config:
    """Defaults merged with ``path`` (if given); checks section names and types."""
    defaults = _read_yaml(DEFAULT_CONFIG)
    merged = defaults
    source: Path | None = None
    if path is not None:
        source = Path(path)
        user = _read_yaml(source)
        unknown = sorted(set(user) - set(defaults) - set(AGENT_SECTIONS))
        if unknown:
            raise ConfigError(f"{source}: unknown section(s) {', '.join(unknown)}; known: {', '.join(sorted(defaults))}")
        for key, value in user.items():
            if key in defaults and isinstance(defaults[key], dict) and not isinstance(value, (dict, type(None))):
                raise ConfigError(f"{source}: section {key!r} must be a mapping, got {type(value).__name__}")
        merged = deep_merge(defaults, {k: v for k, v in user.items() if v is not None})
    chosen_dir = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    return Config(raw=merged, source=source, data_dir=chosen_dir.resolve())
