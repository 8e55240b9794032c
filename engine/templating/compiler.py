"""Checking a template source (YAML/JSON containers with lines) and compiling it.

Every error names the file, the line and what is wrong, so a bad template stops
start-up instead of mis-charging traffic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timezone, tzinfo
from typing import Any

from engine.templating.context import Ctx
from engine.templating.errors import TemplateError
from engine.templating.fields import (FIELD_TYPES, MULTI_PART, SKIPPED, Field, build_apply,
                                      go_layout, zone)
from engine.templating.filters import Filter, FilterSyntaxError, compile_filter
from engine.templating.paths import REPLY_WRITE_ROOTS, REQUEST_WRITE_ROOTS, PathError, parse_target
from engine.templating.replybuilder import ReplyBuilder
from engine.templating.rsr import ValueSyntaxError, compile_value, constant_value
from engine.templating.source import LineDict, LineList
from engine.templating.view import MessageView

REQUEST_TYPES = ("*authorize", "*initiate", "*update", "*terminate", "*message", "*event",
                 "*cdrs", "*none", "*dryrun")
MODIFIERS = ("*continue", "*log", "*accounts", "*fd", "*cdrs")
COMPAT_FLAGS = ("*attributes", "*resources", "*routes", "*routes_ignore_errors",
                "*routes_event_cost", "*routes_maxcost", "*thresholds", "*stats", "*chargers",
                "*ips", "*rals", "*auth", "*derived_reply", "*daStats")
KNOWN_FLAGS = sorted(set(REQUEST_TYPES) | set(MODIFIERS) | set(COMPAT_FLAGS))

_TOP_KEYS = ("agent", "vars", "defaults", "templates", "processors")
_PROC_KEYS = ("id", "filters", "flags", "tenant", "timezone", "defaults", "request_fields",
              "reply_fields")
_FIELD_KEYS = ("tag", "path", "type", "value", "filters", "mandatory", "blocker", "new_branch",
               "width", "padding", "strip", "layout", "timezone", "rounding_decimals")
# ``*req.Name`` / ``*oreq.Name`` with an optional ``:tag`` (see Template.request_names).
_REQ_READ = re.compile(r"\*o?req\.([^.;:{}\[\]\s/&|,()'\"]+)(:[0-9]+)?")
# ``*req.A.B`` / ``*req.A[0].B``: a path below the first name.
_REQ_NESTED = re.compile(r"\*o?req\.[^.;:{}\[\]\s/&|,()'\"]+(?:\[[^\]]*\])?\.")
_PADDING = ("", "*left", "*right", "*zeroleft")
_STRIP = ("", "*left", "*right", "*xleft", "*xright")


@dataclass(slots=True)
class Processor:
    id: str
    line: int
    filters: list[Filter]
    flags: frozenset[str]
    request_type: str
    tenant: str
    tz: tzinfo
    request_fields: list[Field]
    reply_fields: list[Field]

    def first_failing(self, ctx: Ctx) -> Filter | None:
        """The first filter that does not pass (None: the processor applies)."""
        for flt in self.filters:
            if not flt.check(ctx):
                return flt
        return None


@dataclass(slots=True)
class Template:
    """A loaded, checked and compiled template for one agent."""

    agent: str
    file: str
    vars: dict[str, Any]
    processors: list[Processor]
    lists: dict[str, list[Field]] = field(default_factory=dict)
    # Generated per-processor code, built by the first TemplateRunner and shared after.
    compiled: Any = None

    def request_names(self) -> frozenset[str]:
        """Every first path segment the template may read under ``*req``/``*oreq``.

        Lets an agent whose messages are flat (RADIUS) decode only those attributes
        into a ``DictView`` instead of answering each read through its own view. Taken
        from the texts the operator wrote (values and filters, dynamic filter constants
        included), so it errs on the side of a name too many: ``A:1`` yields ``A`` and
        ``A:1`` (a RADIUS tag, or a filter's separator).
        """
        names: set[str] = set()
        for text_ in self._reference_texts():
            for match in _REQ_READ.finditer(text_):
                names.add(match.group(1))
                if match.group(2):
                    names.add(match.group(1) + match.group(2))
        return frozenset(names)

    def reads_nested_request(self) -> bool:
        """True when some ``*req`` path goes below its first name (``A.B``): a flat view of
        first names cannot answer it the way the agent's own view does."""
        return any(_REQ_NESTED.search(text_) for text_ in self._reference_texts())

    def reads_reply_field(self, name: str) -> bool:
        """True when some value or filter may read ``~*cgrep.<name>`` (the engine reply's
        field): the runner has the reply compute a field only a template reads."""
        pattern = re.compile(r"\*cgrep\." + re.escape(name) + r"(?![A-Za-z0-9_-])")
        return any(pattern.search(text_) for text_ in self._reference_texts())

    def _reference_texts(self) -> list[str]:
        """Every value and filter text the operator wrote (processors and field lists)."""
        fields = [f for p in self.processors for f in (*p.request_fields, *p.reply_fields)]
        fields += [f for fl in self.lists.values() for f in fl]
        texts = [flt.text for p in self.processors for flt in p.filters]
        for fld in fields:
            texts.append(str(fld.value.source))
            texts.extend(flt.text for flt in fld.filters)
        return texts

    def processor(self, pid: str) -> Processor:
        for proc in self.processors:
            if proc.id == pid:
                return proc
        raise KeyError(pid)

    def render(self, name: str, *, view: MessageView | None = None,
               vars: dict[str, Any] | None = None, cgreq: dict[str, Any] | None = None,
               cgrep: dict[str, Any] | None = None) -> ReplyBuilder:
        """Build a named field list (``templates:``) outside a request: ASR, RAR, DM, CoA.

        Raises ``KeyError`` for an unknown name and ``TemplateFieldError`` for a missing
        mandatory field.
        """
        fields = self.lists[name]
        ctx = Ctx(view, {**self.vars, **(vars or {})})
        ctx.cgreq = dict(cgreq or {})
        ctx.cgrep = dict(cgrep or {})
        for fld in fields:
            result = fld.apply(ctx)
            if fld.blocker and result is not SKIPPED:
                break
        return ctx.rep


class _Compiler:
    def __init__(self, file: str, agent: str | None) -> None:
        self.file = file
        self.agent = agent

    def err(self, line: int | None, reason: str) -> TemplateError:
        return TemplateError(self.file, line, reason)

    # -- top level -----------------------------------------------------------------------
    def template(self, src: Any) -> Template:
        if not isinstance(src, dict):
            raise self.err(getattr(src, "line", 1) or 1,
                           "a template is a mapping with 'agent' and 'processors'")
        line_of = src.line_of if isinstance(src, LineDict) else (lambda k: None)
        for key in src:
            if key not in _TOP_KEYS:
                raise self.err(line_of(key), f"unknown key {key!r} (known: {', '.join(_TOP_KEYS)})")
        agent = src.get("agent", self.agent)
        if agent is not None and not isinstance(agent, str):
            raise self.err(line_of("agent"), "agent must be a name")
        if self.agent is not None and agent is not None and agent != self.agent:
            raise self.err(line_of("agent"),
                           f"template is for agent {agent!r}, loaded by agent {self.agent!r}")
        variables = src.get("vars") or {}
        if not isinstance(variables, dict):
            raise self.err(line_of("vars"), "vars must be a mapping NAME: value")
        defaults = src.get("defaults") or {}
        if not isinstance(defaults, dict):
            raise self.err(line_of("defaults"),
                           "defaults must be a mapping with request_fields/reply_fields")
        for key in defaults:
            if key not in ("request_fields", "reply_fields"):
                raise self.err(_line(defaults, key),
                               f"unknown key {key!r} in defaults (request_fields, reply_fields)")
        raw_lists = src.get("templates") or {}
        if not isinstance(raw_lists, dict):
            raise self.err(line_of("templates"), "templates must be a mapping name: [fields]")
        self.raw_lists = raw_lists
        lists = {name: self.fields(raw_lists[name], _line(raw_lists, name), None,
                                   REQUEST_WRITE_ROOTS + ("*rep",), (name,))
                 for name in raw_lists}
        processors_src = src.get("processors")
        if not isinstance(processors_src, list) or not processors_src:
            raise self.err(line_of("processors") or 1, "processors must be a non-empty list")
        processors: list[Processor] = []
        seen: set[str] = set()
        for index, raw in enumerate(processors_src):
            line = processors_src.line_of(index) if isinstance(processors_src, LineList) else None
            proc = self.processor(raw, line, defaults)
            if proc.id in seen:
                raise self.err(proc.line, f"duplicate processor id {proc.id!r}")
            seen.add(proc.id)
            processors.append(proc)
        return Template(agent=agent or "", file=self.file, vars=dict(variables),
                        processors=processors, lists=lists)

    # -- processors -----------------------------------------------------------------------
    def processor(self, raw: Any, line: int | None, defaults: dict[str, Any]) -> Processor:
        if not isinstance(raw, dict):
            raise self.err(line, "a processor is a mapping with id, filters, flags, fields")
        line = getattr(raw, "line", None) or line
        for key in raw:
            if key not in _PROC_KEYS:
                raise self.err(_line(raw, key),
                               f"unknown processor key {key!r} (known: {', '.join(_PROC_KEYS)})")
        pid = raw.get("id")
        if not isinstance(pid, str) or not pid:
            raise self.err(line, "processor needs an id")
        filters = self.filters(raw.get("filters"), _line(raw, "filters") or line, f"processor {pid}")
        flags = self.flags(raw.get("flags"), _line(raw, "flags") or line, pid)
        types = [f for f in flags if f in REQUEST_TYPES and f not in ("*cdrs", "*dryrun")]
        if len(types) > 1:
            raise self.err(_line(raw, "flags"),
                           f"processor {pid}: one request type only, got {', '.join(types)}")
        if types:
            request_type = types[0]
        elif "*cdrs" in flags:
            request_type = "*cdrs"
        elif "*dryrun" in flags:
            request_type = "*dryrun"
        else:
            request_type = "*none"
        tz_name = raw.get("timezone") or ""
        try:
            tz = zone(str(tz_name)) if tz_name else timezone.utc
        except ValueError as err:
            raise self.err(_line(raw, "timezone"), f"processor {pid}: {err}") from None
        use_defaults = raw.get("defaults", True)
        if not isinstance(use_defaults, bool):
            raise self.err(_line(raw, "defaults"), "processor defaults must be true or false")
        request_fields = []
        reply_fields = []
        if use_defaults and defaults.get("request_fields"):
            request_fields += self.fields(defaults["request_fields"], _line(defaults, "request_fields"),
                                          pid, REQUEST_WRITE_ROOTS)
        request_fields += self.fields(raw.get("request_fields") or [],
                                      _line(raw, "request_fields") or line, pid, REQUEST_WRITE_ROOTS)
        if use_defaults and defaults.get("reply_fields"):
            reply_fields += self.fields(defaults["reply_fields"], _line(defaults, "reply_fields"),
                                        pid, REPLY_WRITE_ROOTS)
        reply_fields += self.fields(raw.get("reply_fields") or [],
                                    _line(raw, "reply_fields") or line, pid, REPLY_WRITE_ROOTS)
        tenant = raw.get("tenant") or ""
        if not isinstance(tenant, str):
            raise self.err(_line(raw, "tenant"), "tenant must be text")
        if tenant.startswith("~"):
            raise self.err(_line(raw, "tenant"),
                           "tenant is a constant here; set *cgreq.Tenant with a field to compute it")
        return Processor(id=pid, line=line or 0, filters=filters, flags=flags,
                         request_type=request_type, tenant=tenant, tz=tz,
                         request_fields=request_fields, reply_fields=reply_fields)

    def flags(self, raw: Any, line: int | None, pid: str) -> frozenset[str]:
        if raw is None:
            return frozenset()
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list):
            raise self.err(line, f"processor {pid}: flags must be a list")
        out = set()
        for index, flag in enumerate(raw):
            fline = raw.line_of(index) if isinstance(raw, LineList) else line
            if not isinstance(flag, str):
                raise self.err(fline, f"processor {pid}: flag {flag!r} is not text")
            base = flag.split(":", 1)[0]
            if base not in KNOWN_FLAGS:
                raise self.err(fline, f"processor {pid}: unknown flag {flag!r} "
                                      f"(known: {', '.join(KNOWN_FLAGS)})")
            out.add(base if base in REQUEST_TYPES or base in MODIFIERS else flag)
        return frozenset(out)

    def filters(self, raw: Any, line: int | None, where: str) -> list[Filter]:
        if raw is None:
            return []
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list):
            raise self.err(line, f"{where}: filters must be a list")
        out = []
        for index, text in enumerate(raw):
            fline = raw.line_of(index) if isinstance(raw, LineList) else line
            try:
                out.append(compile_filter(text))
            except (FilterSyntaxError, ValueSyntaxError) as err:
                raise self.err(fline, f"{where}: {err}") from None
        return out

    # -- fields ---------------------------------------------------------------------------
    def fields(self, raw: Any, line: int | None, pid: str | None, roots: tuple[str, ...],
               stack: tuple[str, ...] = ()) -> list[Field]:
        if not isinstance(raw, list):
            raise self.err(line, "fields must be a list of mappings")
        out: list[Field] = []
        for index, item in enumerate(raw):
            iline = raw.line_of(index) if isinstance(raw, LineList) else line
            if isinstance(item, dict) and item.get("type") == "*template":
                out.extend(self.inline(item, iline, pid, roots, stack))
                continue
            out.append(self.field(item, iline, pid, roots))
        return out

    def inline(self, item: dict[str, Any], line: int | None, pid: str | None,
               roots: tuple[str, ...], stack: tuple[str, ...]) -> list[Field]:
        name = item.get("value")
        if name not in self.raw_lists:
            raise self.err(line, f"*template {name!r} is not defined under templates: "
                                 f"({', '.join(self.raw_lists) or 'none'})")
        if name in stack:
            raise self.err(line, f"*template {name!r} includes itself")
        return self.fields(self.raw_lists[name], _line(self.raw_lists, name), pid, roots,
                           stack + (name,))

    def field(self, raw: Any, line: int | None, pid: str | None, roots: tuple[str, ...]) -> Field:
        if not isinstance(raw, dict):
            raise self.err(line, f"a field is a mapping with tag, path, type, value; got {raw!r}")
        line = getattr(raw, "line", None) or line or 0
        for key in raw:
            if key not in _FIELD_KEYS:
                raise self.err(_line(raw, key), f"unknown field key {key!r} "
                                                f"(known: {', '.join(_FIELD_KEYS)})")
        path = raw.get("path")
        tag = str(raw.get("tag") or path or "")
        where = f"field {tag!r}"
        kind = raw.get("type") or "*variable"
        if kind not in FIELD_TYPES:
            raise self.err(_line(raw, "type"), f"{where}: unknown field type {kind!r} "
                                               f"(known: {', '.join(FIELD_TYPES)})")
        if not isinstance(path, str) or not path:
            if kind == "*none":
                path = "*tmp.none"
            else:
                raise self.err(line, f"{where}: needs a path such as *cgreq.Account or *rep.Result-Code")
        if path.startswith("~"):
            raise self.err(_line(raw, "path"), f"{where}: a path to write has no '~' ({path!r})")
        try:
            target = parse_target(path, roots)
        except PathError as err:
            raise self.err(_line(raw, "path"), f"{where}: {err}") from None
        raw_value = raw.get("value")
        try:
            if kind in ("*constant", "*filler"):
                value = constant_value(raw_value)
            else:
                value = compile_value(raw_value)
        except (ValueSyntaxError, PathError) as err:
            raise self.err(_line(raw, "value"), f"{where}: {err}") from None
        if kind in MULTI_PART:
            need = {"*usage_difference": 2, "*cc_usage": 3}.get(kind, 2)
            count = len(value.items)
            if (kind in ("*usage_difference", "*cc_usage") and count != need) or count < need:
                raise self.err(_line(raw, "value"),
                               f"{where}: {kind} needs {need} ';'-separated parts, got {count}")
        if kind in ("*variable", "*composed", "*group", "*unix_timestamp", "*datetime",
                    "*prefix", "*suffix") and raw_value is None:
            raise self.err(line, f"{where}: {kind} needs a value")
        flags = {}
        for key in ("mandatory", "blocker", "new_branch"):
            flag = raw.get(key, False)
            if not isinstance(flag, bool):
                raise self.err(_line(raw, key), f"{where}: {key} must be true or false")
            flags[key] = flag
        width = raw.get("width", 0) or 0
        if not isinstance(width, int) or width < 0:
            raise self.err(_line(raw, "width"), f"{where}: width must be a positive integer")
        padding = raw.get("padding") or ""
        if padding not in _PADDING:
            raise self.err(_line(raw, "padding"), f"{where}: padding must be one of {_PADDING[1:]}")
        strip = raw.get("strip") or ""
        if strip not in _STRIP:
            raise self.err(_line(raw, "strip"), f"{where}: strip must be one of {_STRIP[1:]}")
        if kind == "*filler" and not width:
            raise self.err(line, f"{where}: *filler needs a width")
        if kind == "*filler" and not padding:
            padding = "*right"
        layout = raw.get("layout")
        if layout is not None and not isinstance(layout, str):
            raise self.err(_line(raw, "layout"), f"{where}: layout must be text")
        tz = None
        if raw.get("timezone"):
            try:
                tz = zone(str(raw["timezone"]))
            except ValueError as err:
                raise self.err(_line(raw, "timezone"), f"{where}: {err}") from None
        field_filters = self.filters(raw.get("filters"), _line(raw, "filters") or line, where)
        fld = Field(tag=tag, line=line, target=target, kind=kind, value=value,
                    filters=field_filters, mandatory=flags["mandatory"], blocker=flags["blocker"],
                    new_branch=flags["new_branch"], width=width, padding=padding, strip=strip,
                    layout=go_layout(layout) if layout else "%Y-%m-%dT%H:%M:%S%:z", tz=tz)
        fld.apply = build_apply(fld, pid)
        return fld


def _line(container: Any, key: Any) -> int | None:
    if isinstance(container, LineDict):
        return container.line_of(key)
    return None


def compile_template(src: Any, file: str, agent: str | None) -> Template:
    """Check and compile a parsed source (see ``loader.load_template``)."""
    return _Compiler(file, agent).template(src)
