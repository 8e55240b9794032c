"""Running a compiled template for one message: match, build the request, call the
engine per the flags, build the reply.

The engine is called with CGRateS-named fields and opts; engine errors become a
``Reply`` carrying the error so the template decides the protocol answer.
"""

from __future__ import annotations

import logging
from datetime import timezone
from typing import Any, Protocol

from engine.errors import ChargingError, server_error
from engine.reply import Reply
from engine.templating.codegen import compile_fields, compile_filters
from engine.templating.compiler import Processor, Template
from engine.templating.context import Ctx
from engine.templating.dispatch import ProcessorIndex
from engine.templating.fields import SKIPPED, Field
from engine.templating.replybuilder import ReplyBuilder, ReplyItem
from engine.templating.view import MessageView
from engine.units import parse_duration

log = logging.getLogger("chargeway.templates")

_CALLS = {
    "*authorize": "authorize",
    "*initiate": "initiate",
    "*update": "update",
    "*terminate": "terminate",
    "*message": "process_message",
    "*event": "process_message",
    "*cdrs": "process_cdr",
}
_GRANTING = ("authorize", "initiate", "update")
_UTC = timezone.utc


class Trace(Protocol):
    """What ``template explain`` listens to."""

    def begin(self, ctx: Ctx) -> None: ...
    def processor(self, proc: Processor, failed: Any) -> None: ...
    def field(self, proc: Processor, section: str, fld: Field, result: Any) -> None: ...
    def call(self, proc: Processor, method: str | None, request: dict, opts: dict,
             dry_run: bool) -> None: ...
    def engine_reply(self, proc: Processor, reply: Reply | None) -> None: ...


class Outcome(Ctx):
    """What the agent gets back: what matched, what was asked, what to answer.

    It is also the evaluation context of the run (one object per message).
    """

    __slots__ = ("flags", "call", "engine_reply", "processors", "dry_run")

    def __init__(self, req: MessageView | None = None, vars: dict[str, Any] | None = None) -> None:
        self.req = req
        self.vars = vars if vars is not None else {}
        self.cgreq: dict[str, Any] = {}
        self.opts: dict[str, Any] = {}
        self.cgrep: dict[str, Any] = {}
        self.rep = ReplyBuilder()
        self.tmp: dict[str, Any] = {}
        self.processor_id: str | None = None
        self.tz = _UTC
        self.flags: frozenset[str] = frozenset()
        self.call: str | None = None
        self.engine_reply: Reply | None = None
        self.processors: list[str] = []
        self.dry_run = False

    @property
    def request(self) -> dict[str, Any]:
        """The CGRateS event fields sent to the engine."""
        return self.cgreq

    @property
    def builder(self) -> ReplyBuilder:
        return self.rep

    @property
    def matched(self) -> bool:
        return self.processor_id is not None

    @property
    def reply(self) -> list[ReplyItem]:
        """Flat ``(path tuple, value)`` leaves in order (RADIUS, JSON agents)."""
        return self.rep.items()

    @property
    def reply_tree(self) -> list[tuple[str, Any]]:
        """Nested groups (Diameter grouped AVPs, several MSCC instances)."""
        return self.rep.tree()

    def __repr__(self) -> str:
        return (f"Outcome(processor_id={self.processor_id!r}, call={self.call!r}, "
                f"request={self.cgreq!r}, opts={self.opts!r}, reply={self.reply_tree!r})")


def synthetic_reply(method: str | None, request: dict[str, Any]) -> Reply | None:
    """The dry-run answer: grant what was asked, touch nothing."""
    if method is None:
        return None
    if method in _GRANTING:
        try:
            usage = parse_duration(request.get("Usage"))
        except (ChargingError, ValueError, TypeError, ArithmeticError):
            usage = 0
        return Reply(max_usage=usage)
    return Reply()


class _Plan:
    """Per-processor choices made once (engine method, dry-run, logging, field steps)."""

    __slots__ = ("proc", "method", "dry", "log", "cont", "request", "reply", "match")

    def __init__(self, proc: Processor) -> None:
        self.proc = proc
        kind = proc.request_type
        self.method = "authorize" if kind == "*dryrun" else _CALLS.get(kind)
        self.dry = "*dryrun" in proc.flags
        self.log = "*log" in proc.flags
        self.cont = "*continue" in proc.flags
        self.request = compile_fields(proc.request_fields, proc.id)
        self.reply = compile_fields(proc.reply_fields, proc.id)
        self.match = compile_filters(proc.filters, proc.id)


def prepare(template: Template) -> list[_Plan]:
    """Generate the template's per-processor code once (load_template calls this)."""
    if template.compiled is None:
        template.compiled = [_Plan(p) for p in template.processors]
    return template.compiled


class TemplateRunner:
    """Maps messages through one template to one engine (``sessions``; None = dry-run)."""

    def __init__(self, template: Template, sessions: Any) -> None:
        self.template = template
        self.sessions = sessions
        self._plans: list[_Plan] = prepare(template)
        self._template_vars = template.vars
        # The agent's vars dict is only copied when a field may write into it.
        self._writes_vars = any(f.target.root == "*vars" for p in template.processors
                                for f in (*p.request_fields, *p.reply_fields))
        # The reply's Balance is computed only for a template that reads it.
        self._reads_balance = template.reads_reply_field("Balance")
        # Only the processors a message's indexed values leave possible are tried.
        stable = ("*req", "*oreq") if self._writes_vars else ("*req", "*oreq", "*vars")
        index = ProcessorIndex(self._plans, lambda plan: plan.proc.filters, stable)
        self._index: ProcessorIndex | None = index if index.useful else None

    async def run(self, view: MessageView | None, vars: dict[str, Any] | None = None, *,
                  dry_run: bool = False, trace: Trace | None = None) -> Outcome:
        """Evaluate processors in order; raises ``TemplateFieldError`` for a missing
        mandatory field (the agent turns it into its protocol's error answer)."""
        template_vars = self._template_vars
        if template_vars:
            merged = {**template_vars, **vars} if vars else dict(template_vars)
        elif self._writes_vars:
            merged = dict(vars) if vars else {}
        else:
            merged = vars if vars is not None else {}
        ctx = Outcome(view, merged)
        dry = dry_run or self.sessions is None
        if trace is not None:
            trace.begin(ctx)
        index = self._index
        plans = self._plans if index is None or trace is not None else index.candidates(ctx)
        for plan in plans:
            proc = plan.proc
            if trace is None:
                if not plan.match(ctx):
                    continue
            else:
                failed = proc.first_failing(ctx)
                trace.processor(proc, failed)
                if failed is not None:
                    continue
            ctx.processor_id = proc.id
            ctx.tz = proc.tz
            if ctx.processors:
                # A previous processor ran (*continue): this one builds its own request.
                ctx.cgreq = {}
                ctx.opts = {}
                ctx.cgrep = {}
            request = ctx.cgreq
            if trace is None:
                plan.request(ctx)
            else:
                _traced_fields(proc, "request", proc.request_fields, ctx, trace)
            if proc.tenant and "Tenant" not in request:
                request["Tenant"] = proc.tenant
            this_dry = dry or plan.dry
            method = plan.method
            if trace is not None:
                trace.call(proc, method, request, ctx.opts, this_dry)
            if plan.log:
                log.info("template %s processor %s: %s request=%s opts=%s", self.template.agent,
                         proc.id, method or "no engine call", request, ctx.opts)
            # Balance (computed on read) is read right after the engine answers, when the
            # template, its log or an explain trace may show it
            balance = self._reads_balance or plan.log or trace is not None
            if method is None:
                reply = None
            elif this_dry:
                reply = synthetic_reply(method, request)
            else:
                reply = await self._call(proc, method, ctx, balance)
            if reply is not None:
                ctx.cgrep = reply.as_fields(balance)
            if trace is None:
                plan.reply(ctx)
            else:
                trace.engine_reply(proc, reply)
                _traced_fields(proc, "reply", proc.reply_fields, ctx, trace)
            if plan.log:
                log.info("template %s processor %s: engine reply=%s reply=%s",
                         self.template.agent, proc.id, ctx.cgrep, ctx.rep.tree())
            ctx.flags = proc.flags
            ctx.call = method
            ctx.engine_reply = reply
            ctx.dry_run = this_dry
            ctx.processors.append(proc.id)
            if not plan.cont:
                break
        return ctx

    async def _call(self, proc: Processor, method: str, ctx: Ctx, balance: bool) -> Reply:
        sessions = self.sessions
        fields, opts = ctx.cgreq, ctx.opts
        try:
            if method == "initiate":
                reply = await sessions.initiate(fields, opts, link=ctx.vars.get("*link"))
            elif method == "process_message":
                reply = await sessions.process_message(fields, opts,
                                                       debit="*accounts" in proc.flags)
            else:
                reply = await getattr(sessions, method)(fields, opts)
            if balance:
                reply.freeze_balance()  # as the engine answered it, before the CDR below
            if "*cdrs" in proc.flags and method in ("terminate", "process_message") and reply.ok:
                cdr = await sessions.process_cdr(fields, opts)
                if not cdr.ok:
                    reply.error = cdr.error
                    reply.reason = cdr.reason
        except ChargingError as err:
            return Reply.from_error(err)
        except Exception as err:  # noqa: BLE001 - an engine fault must still get an answer
            log.exception("template %s processor %s: engine %s failed", self.template.agent,
                          proc.id, method)
            return Reply.from_error(server_error(f"{type(err).__name__}: {err}"))
        return reply


def _traced_fields(proc: Processor, section: str, fields: list[Field], ctx: Ctx,
                   trace: Trace) -> None:
    for fld in fields:
        result = fld.apply(ctx)
        trace.field(proc, section, fld, result)
        if fld.blocker and result is not SKIPPED:
            break
