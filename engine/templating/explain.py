"""``chargeway template explain``: what a template does with one captured message.

Runs the template in dry-run (unless the caller passes a live engine) with a trace
that records, per processor, the first filter that failed and the values it saw, and,
for the matching processor, every field's outcome, the engine call and the reply. The
report is plain text so it can be pasted into a ticket.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from engine.reply import Reply
from engine.templating.coerce import text
from engine.templating.compiler import Processor, Template
from engine.templating.context import Ctx
from engine.templating.errors import TemplateFieldError
from engine.templating.fields import SKIPPED, Field
from engine.templating.filters import Filter
from engine.templating.runner import Outcome, TemplateRunner
from engine.templating.view import DictView, MessageView
from engine.units import format_duration

_DURATION_KEYS = ("Usage", "LastUsed", "TotalUsage", "MaxUsage", "*sessionsDebitInterval",
                  "*sessionsTTL")


def load_json_message(path: str | Path) -> tuple[DictView, dict[str, Any]]:
    """Fallback loader for any agent: a JSON message, or ``{"req": {...}, "vars": {...}}``."""
    try:
        data = orjson.loads(Path(path).read_bytes())
    except orjson.JSONDecodeError as err:
        raise ValueError(f"{path}: not JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    if isinstance(data.get("req"), dict):
        variables = data.get("vars") or {}
        if not isinstance(variables, dict):
            raise ValueError(f"{path}: 'vars' must be an object")
        return DictView(data["req"]), dict(variables)
    return DictView(data), {}


def load_message(agent: str, path: str | Path) -> tuple[MessageView, dict[str, Any]]:
    """The agent's ``agents.<agent>.explain.load_message``, or the JSON fallback."""
    module_name = f"agents.{agent}.explain"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name not in (module_name, f"agents.{agent}", "agents"):
            raise
        if str(path).lower().endswith(".json"):
            return load_json_message(path)
        raise ValueError(f"agent {agent!r} has no agents/{agent}/explain.py to read {path}; "
                         "give a .json message instead") from None
    return module.load_message(path)


@dataclass
class FieldLine:
    processor: str
    section: str
    tag: str
    target: str
    status: str            # "set", "skipped", "missing"
    value: Any = None
    detail: str = ""


@dataclass
class ExplainTrace:
    """Collects what the runner did (implements the runner's ``Trace`` hooks)."""

    ctx_values: dict[str, list[Any]] = field(default_factory=dict)
    processors: list[tuple[str, str, str]] = field(default_factory=list)   # id, verdict, detail
    fields: list[FieldLine] = field(default_factory=list)
    calls: list[tuple[str, str | None, dict, dict, bool]] = field(default_factory=list)
    replies: dict[str, Reply | None] = field(default_factory=dict)
    _ctx: Ctx | None = None

    def begin(self, ctx: Ctx) -> None:
        self._ctx = ctx

    def processor(self, proc: Processor, failed: Filter | None) -> None:
        if failed is None:
            self.processors.append((proc.id, "matched", ""))
            return
        seen = "nothing"
        if failed.values is not None and self._ctx is not None:
            found = failed.values(self._ctx)
            if found:
                seen = ", ".join(repr(v) for v in found[:5])
        self.processors.append((proc.id, "skipped", f"{failed.text}  (found: {seen})"))

    def field(self, proc: Processor, section: str, fld: Field, result: Any) -> None:
        target = fld.target.text
        if result is SKIPPED:
            reason = _why_skipped(fld, self._ctx)
            self.fields.append(FieldLine(proc.id, section, fld.tag, target, "skipped",
                                         detail=reason))
        else:
            self.fields.append(FieldLine(proc.id, section, fld.tag, target, "set", result,
                                         fld.value.source if isinstance(fld.value.source, str)
                                         else ""))

    def call(self, proc: Processor, method: str | None, request: dict, opts: dict,
             dry_run: bool) -> None:
        self.calls.append((proc.id, method, dict(request), dict(opts), dry_run))

    def engine_reply(self, proc: Processor, reply: Reply | None) -> None:
        self.replies[proc.id] = reply


def _why_skipped(fld: Field, ctx: Ctx | None) -> str:
    if ctx is not None:
        for flt in fld.filters:
            if not flt.check(ctx):
                return f"filter {flt.text} did not pass"
    if fld.kind == "*none":
        return "*none"
    src = fld.value.source
    return f"no value at {src}" if src not in (None, "") else "nothing to write"


async def explain(template: Template, view: MessageView, vars: dict[str, Any], *,
                  sessions: Any = None) -> tuple[Outcome | None, ExplainTrace, TemplateFieldError | None]:
    """Run with a trace; ``sessions`` None means dry-run (nothing is charged)."""
    trace = ExplainTrace()
    runner = TemplateRunner(template, sessions)
    try:
        outcome = await runner.run(view, vars, dry_run=sessions is None, trace=trace)
        return outcome, trace, None
    except TemplateFieldError as err:
        return None, trace, err


def _show(value: Any, key: str = "", durations: bool = True) -> str:
    shown = repr(value)
    if (durations and isinstance(value, int) and not isinstance(value, bool)
            and key in _DURATION_KEYS and value > 0):
        shown += f" ({format_duration(value)})"
    return shown


def render(template: Template, message: str, vars: dict[str, Any], outcome: Outcome | None,
           trace: ExplainTrace, error: TemplateFieldError | None, *, live: bool) -> str:
    """The human report."""
    out: list[str] = []
    out.append(f"template  {template.file} (agent {template.agent or '-'})")
    out.append(f"message   {message}")
    shown_vars = {k: v for k, v in vars.items() if k != "*link"}
    if shown_vars:
        out.append("vars      " + ", ".join(f"{k}={text(v)}" for k, v in shown_vars.items()))
    out.append("")
    out.append("processors")
    for pid, verdict, detail in trace.processors:
        mark = "->" if verdict == "matched" else "  "
        line = f"  {mark} {pid:<24} {verdict}"
        if detail:
            line += f": first failing filter {detail}"
        out.append(line)
    tried = {pid for pid, _, _ in trace.processors}
    for proc in template.processors:
        if proc.id not in tried:
            out.append(f"     {proc.id:<24} not tried (processing stopped at an earlier one)")
    ran = [pid for pid, verdict, _ in trace.processors if verdict == "matched"]
    if not ran:
        out.append("")
        out.append("no processor matched: the agent answers its 'no processor' error "
                   "(Diameter 5012, RADIUS no reply/reject, evapi Error)")
        return "\n".join(out) + "\n"
    for pid in ran:
        if len(ran) > 1:
            out.append("")
            out.append(f"== processor {pid}")
        call = next((c for c in trace.calls if c[0] == pid), None)
        request = call[2] if call is not None else {}
        timed = str(request.get("ToR") or "*voice") == "*voice"   # data/SMS usage is not time
        for section in ("request", "reply"):
            lines = [f for f in trace.fields if f.section == section and f.processor == pid]
            if section == "reply":
                _render_call(out, call, trace.replies.get(pid), live, timed)
            out.append("")
            out.append(f"{section} fields")
            if not lines:
                out.append("  (none)")
            for f in lines:
                if f.status == "set":
                    root, _, key = f.target.partition(".")
                    key = key if root in ("*cgreq", "*opts", "*tmp") else ""
                    out.append(f"  {f.tag:<20} {f.target} = {_show(f.value, key, timed)}")
                else:
                    out.append(f"  {f.tag:<20} {f.target}  skipped: {f.detail}")
    if error is not None:
        out.append("")
        out.append(f"ERROR mandatory field {error.tag!r} of processor {error.processor_id}: "
                   f"{error.reason} value at {error.path or '(constant)'}")
        if error.missing:
            out.append(f"  the agent answers a missing-item error naming {'.'.join(error.missing)} "
                       "(Diameter 5005 Missing AVP)")
        return "\n".join(out) + "\n"
    if outcome is not None:
        out.append("")
        out.append("reply sent")
        if not outcome.reply:
            out.append("  (empty: the agent's defaults only)")
        for item in outcome.reply:
            out.append(f"  {'.'.join(item.path)} = {_show(item.value)}")
    return "\n".join(out) + "\n"


def _render_call(out: list[str], call: tuple[str, str | None, dict, dict, bool] | None,
                 reply: Reply | None, live: bool, timed: bool) -> None:
    out.append("")
    out.append("engine call")
    if call is None:
        out.append("  (not reached)")
        return
    _pid, method, request, opts, dry = call
    if method is None:
        out.append("  none (*none flag)")
    else:
        how = "called" if live and not dry else "dry-run, not called"
        out.append(f"  sessions.{method}(request, opts)  [{how}]")
    for key, value in request.items():
        out.append(f"    {key:<18} {_show(value, key, timed)}")
    if opts:
        out.append("  opts")
        for key, value in opts.items():
            out.append(f"    {key:<18} {_show(value, key, timed)}")
    if reply is not None:
        label = "engine reply" if live and not dry else "engine reply (synthetic)"
        fields = reply.as_fields()
        out.append(f"  {label}: " + ", ".join(f"{k}={_show(v, k, timed)}" for k, v in fields.items()))
