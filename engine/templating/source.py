"""Reading template files while remembering line numbers, for ``file:line: reason`` errors.

YAML: a SafeLoader whose mappings and sequences remember where they start, and which
reads ``*word`` as plain text (templates never use YAML aliases, and CGRateS syntax is
full of ``*initiate``/``*cgreq.X`` that would otherwise need quoting). JSON (CGRateS
configs, with ``//`` and ``/* */`` comments and trailing commas) is cleaned and read
through the same loader so its errors carry lines too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from engine.templating.errors import TemplateError


class LineDict(dict):
    """A mapping that knows its own line and the line of each key (1-based)."""

    line: int = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list):
    """A sequence that knows its own line and the line of each item (1-based)."""

    line: int = 0

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.item_lines: list[int] = []

    def line_of(self, index: int) -> int:
        if 0 <= index < len(self.item_lines):
            return self.item_lines[index]
        return self.line


class _Loader(yaml.SafeLoader):
    """SafeLoader with line-aware containers and no aliases (``*x`` is plain text)."""

    def fetch_alias(self) -> None:  # type: ignore[override]
        self.fetch_plain()


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "mapping keys must be plain text", key_node.start_mark)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    out = LineList()
    out.line = node.start_mark.line + 1
    for child in node.value:
        out.append(loader.construct_object(child, deep=True))
        out.item_lines.append(child.start_mark.line + 1)
    return out


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def parse_yaml(text: str, file: str) -> Any:
    """Parse YAML text; syntax errors become ``TemplateError`` with the line."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = " ".join(p for p in (err.context, err.problem) if p) or str(err)
        raise TemplateError(file, line, f"YAML syntax: {reason}") from None
    except yaml.YAMLError as err:
        raise TemplateError(file, None, f"YAML syntax: {err}") from None


def clean_json(text: str) -> str:
    """Drop comments and trailing commas, turn tabs outside strings into spaces.

    Newlines are kept so line numbers stay those of the original file.
    """
    out: list[str] = []
    i, n = 0, len(text)
    in_str = False
    while i < n:
        ch = text[i]
        if in_str:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                in_str = False
            i += 1
            continue
        if ch == '"':
            in_str = True
            out.append(ch)
        elif ch == "/" and text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif ch == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            chunk = text[i:n if end < 0 else end + 2]
            out.append("\n" * chunk.count("\n"))
            i = n if end < 0 else end + 2
            continue
        elif ch == "\t":
            out.append(" ")
        elif ch in "}]":
            # Remove a trailing comma before the closing bracket.
            j = len(out) - 1
            while j >= 0 and out[j] in (" ", "\n", "\r"):
                j -= 1
            if j >= 0 and out[j] == ",":
                out[j] = " "
            out.append(ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def read_source(path: str | Path) -> Any:
    """Load a ``.yaml``/``.yml`` or ``.json`` file into line-aware containers."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise TemplateError(file, None, f"cannot read: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise TemplateError(file, None, f"not UTF-8 text: {err}") from None
    if file.lower().endswith(".json"):
        text = clean_json(text)
    return parse_yaml(text, file)
