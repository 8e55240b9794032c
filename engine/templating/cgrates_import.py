"""Migration from CGRateS: an agent's ``request_processors`` JSON into our YAML.

The syntax is the same language, so conversion is mostly moving keys: find the
processors (under ``diameter_agent``/``radius_agent``/``http_agent``, bare, or a bare
list), map legacy ``field_id`` to a path, turn a computed processor ``tenant`` into a
request field, and drop (with a warning) options chargeway does not implement.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from engine.templating.errors import TemplateError
from engine.templating.source import LineDict, LineList, read_source

_AGENT_SECTIONS = {"diameter_agent": "diameter", "radius_agent": "radius",
                   "http_agent": "http", "dns_agent": "dns"}
_PROC_KEYS = ("id", "filters", "flags", "tenant", "timezone", "request_fields", "reply_fields")
_FIELD_KEYS = ("tag", "path", "type", "value", "filters", "mandatory", "blocker", "new_branch",
               "width", "padding", "strip", "layout", "timezone")
_IGNORED_FLAG_HINTS = {
    "*attributes": "chargeway has no AttributeS: fields set to '*attributes' stay unresolved; "
                   "map Account/RequestType from the message instead",
}


def _copy_dict(src: Any, keys: dict[str, Any] | None = None) -> LineDict:
    out = LineDict()
    out.line = getattr(src, "line", 0)
    if keys is not None:
        for key, value in keys.items():
            out[key] = value
            out.key_lines[key] = src.line_of(key) if isinstance(src, LineDict) else out.line
    return out


def find_processors(src: Any, file: str, agent: str | None) -> tuple[str | None, list[Any]]:
    """Locate the processor list and the agent it belongs to."""
    if isinstance(src, list):
        return agent, src
    if not isinstance(src, dict):
        raise TemplateError(file, getattr(src, "line", None),
                            "expected a CGRateS config object or a list of processors")
    if "request_processors" in src:
        return agent, src["request_processors"]
    candidates = [(sec, name) for sec, name in _AGENT_SECTIONS.items()
                  if isinstance(src.get(sec), dict) and "request_processors" in src[sec]]
    if agent is not None:
        wanted = [c for c in candidates if c[1] == agent]
        if wanted:
            candidates = wanted
    if not candidates:
        raise TemplateError(file, getattr(src, "line", None),
                            "no request_processors found (looked in "
                            + ", ".join(_AGENT_SECTIONS) + " and at the top level)")
    if len(candidates) > 1:
        raise TemplateError(file, getattr(src, "line", None),
                            "several agents have request_processors ("
                            + ", ".join(c[0] for c in candidates) + "); choose one with --agent")
    section, name = candidates[0]
    return name, src[section]["request_processors"]


def _field(raw: Any, section: str, warnings: list[str], where: str) -> Any:
    if not isinstance(raw, dict):
        return raw
    kept: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "field_id" and "path" not in raw:
            root = "*cgreq" if section == "request_fields" else "*rep"
            kept["path"] = f"{root}.{value}"
        elif key in _FIELD_KEYS:
            if key in ("width",) and value in (0, None):
                continue
            if key in ("padding", "strip", "layout", "timezone") and value in ("", None):
                continue
            if key in ("mandatory", "blocker", "new_branch") and value is False:
                continue
            if key == "filters" and not value:
                continue
            kept[key] = value
        elif value not in ("", None, False, 0, [], {}):
            warnings.append(f"{where}: option {key!r} is not supported and was dropped")
    if kept.get("value") == "*attributes":
        warnings.append(f"{where}: value '*attributes' relies on CGRateS AttributeS; "
                        "set it from the message")
    return _copy_dict(raw, kept)


def _processor(raw: Any, warnings: list[str]) -> Any:
    if not isinstance(raw, dict):
        return raw
    pid = raw.get("id", "?")
    kept: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _PROC_KEYS:
            kept[key] = value
        elif value not in ("", None, False, 0, [], {}):
            warnings.append(f"processor {pid}: option {key!r} is not supported and was dropped")
    for flag in kept.get("flags") or []:
        base = str(flag).split(":", 1)[0]
        if base in _IGNORED_FLAG_HINTS:
            warnings.append(f"processor {pid}: flag {flag}: {_IGNORED_FLAG_HINTS[base]}")
    tenant = kept.get("tenant")
    if isinstance(tenant, str) and tenant.startswith("~"):
        del kept["tenant"]
        tfield = LineDict(tag="Tenant", path="*cgreq.Tenant", value=tenant)
        tfield.line = raw.line_of("tenant") if isinstance(raw, LineDict) else 0
        fields = LineList([tfield, *(kept.get("request_fields") or [])])
        fields.line = tfield.line
        fields.item_lines = [tfield.line] + list(getattr(kept.get("request_fields"), "item_lines",
                                                         []))
        kept["request_fields"] = fields
    elif tenant in ("", None):
        kept.pop("tenant", None)
    if not kept.get("timezone"):
        kept.pop("timezone", None)
    for section in ("request_fields", "reply_fields"):
        fields = kept.get(section)
        if isinstance(fields, list):
            converted = LineList(_field(f, section, warnings, f"processor {pid} {section}[{i}]")
                                 for i, f in enumerate(fields))
            converted.line = getattr(fields, "line", 0)
            converted.item_lines = list(getattr(fields, "item_lines", []))
            kept[section] = converted
    return _copy_dict(raw, kept)


def from_cgrates(src: Any, file: str, agent: str | None,
                 warnings: list[str] | None = None) -> LineDict:
    """A parsed CGRateS JSON (line-aware containers) as our template source."""
    warnings = warnings if warnings is not None else []
    found_agent, processors = find_processors(src, file, agent)
    if not isinstance(processors, list):
        raise TemplateError(file, getattr(processors, "line", None),
                            "request_processors must be a list")
    named = _named_templates(src, warnings)
    converted = LineList(_drop_unknown_templates(_processor(p, warnings), named, warnings)
                         for p in processors)
    converted.line = getattr(processors, "line", 0)
    converted.item_lines = list(getattr(processors, "item_lines", []))
    out = LineDict()
    out.line = getattr(src, "line", 1)
    if found_agent or agent:
        out["agent"] = agent or found_agent
        out.key_lines["agent"] = out.line
    if named:
        out["templates"] = named
        out.key_lines["templates"] = named.line
    out["processors"] = converted
    out.key_lines["processors"] = converted.line
    return out


def _named_templates(src: Any, warnings: list[str]) -> LineDict:
    """CGRateS's ``templates`` section (field lists used with ``*template``)."""
    out = LineDict()
    section = src.get("templates") if isinstance(src, dict) else None
    out.line = getattr(section, "line", 0)
    if not isinstance(section, dict):
        return out
    for name, fields in section.items():
        if isinstance(fields, list):
            converted = LineList(_field(f, "reply_fields", warnings, f"template {name}[{i}]")
                                 for i, f in enumerate(fields))
            converted.line = getattr(fields, "line", 0)
            converted.item_lines = list(getattr(fields, "item_lines", []))
            out[name] = converted
            out.key_lines[name] = section.line_of(name) if isinstance(section, LineDict) else 0
    return out


def _drop_unknown_templates(proc: Any, named: dict[str, Any], warnings: list[str]) -> Any:
    """CGRateS built-in lists (``*cca``, ``*err`` ...) are the agent's own defaults here."""
    if not isinstance(proc, dict):
        return proc
    for section in ("request_fields", "reply_fields"):
        fields = proc.get(section)
        if not isinstance(fields, list):
            continue
        kept = LineList()
        kept.line = getattr(fields, "line", 0)
        lines = list(getattr(fields, "item_lines", []))
        for index, fld in enumerate(fields):
            if (isinstance(fld, dict) and fld.get("type") == "*template"
                    and fld.get("value") not in named):
                warnings.append(f"processor {proc.get('id', '?')} {section}: *template "
                                f"{fld.get('value')!r} is a CGRateS built-in; the agent applies "
                                "its own defaults, field dropped")
                continue
            kept.append(fld)
            kept.item_lines.append(lines[index] if index < len(lines) else kept.line)
        proc[section] = kept
    return proc


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def import_cgrates(path: str | Path, agent: str | None = None) -> tuple[str, list[str]]:
    """Convert a CGRateS JSON file into YAML text (checked by compiling it) and warnings."""
    from engine.templating.compiler import compile_template

    file = str(path)
    warnings: list[str] = []
    src = from_cgrates(read_source(path), file, agent, warnings)
    compile_template(src, file, agent)  # fail now, with the JSON line, if it cannot work
    header = (f"# Converted from CGRateS {Path(file).name} by `chargeway template import`.\n"
              "# Syntax: templates/README.md\n")
    for warning in warnings:
        header += f"# WARNING: {warning}\n"
    body = yaml.safe_dump(_plain(src), sort_keys=False, default_flow_style=None, width=110,
                          allow_unicode=True)
    return header + body, warnings
