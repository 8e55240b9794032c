"""Running a compiled template for one message: match, build the request, call the
engine per the flags, build the reply.

The engine is called with CGRateS-named fields and opts; engine errors become a
``Reply`` carrying the error so the template decides the protocol answer.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from engine.errors import ChargingError, server_error
from engine.reply import Reply
from engine.templating.codegen import compile_fields
from engine.templating.compiler import Processor, Template
from engine.templating.context import Ctx
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


class Trace(Protocol):
    """What ``template explain`` listens to."""

    def begin(self, ctx: Ctx) -> None: ...
    def processor(self, proc: Processor, failed: Any) -> None: ...
    def field(self, proc: Processor, section: str, fld: Field, result: Any) -> None: ...
    def call(self, proc: Processor, method: str | None, request: dict, opts: dict,
             dry_run: bool) -> None: ...


class Outcome:
    """What the agent gets back: what matched, what was asked, what to answer."""

    __slots__ = ("processor_id", "flags", "call", "request", "opts", "engine_reply", "builder",
                 "processors", "dry_run", "tmp", "vars")

    def __init__(self, builder: ReplyBuilder | None = None, vars: dict[str, Any] | None = None,
                 tmp: dict[str, Any] | None = None) -> None:
        self.processor_id: str | None = None
        self.flags: frozenset[str] = frozenset()
        self.call: str | None = None
        self.request: dict[str, Any] = {}
        self.opts: dict[str, Any] = {}
        self.engine_reply: Reply | None = None
        self.builder = builder if builder is not None else ReplyBuilder()
        self.processors: list[str] = []
        self.dry_run = False
        self.tmp = tmp if tmp is not None else {}
        self.vars = vars if vars is not None else {}

    @property
    def matched(self) -> bool:
        return self.processor_id is not None

    @property
    def reply(self) -> list[ReplyItem]:
        """Flat ``(path tuple, value)`` leaves in order (RADIUS, JSON agents)."""
        return self.builder.items()

    @property
    def reply_tree(self) -> list[tuple[str, Any]]:
        """Nested groups (Diameter grouped AVPs, several MSCC instances)."""
        return self.builder.tree()

    def __repr__(self) -> str:
        return (f"Outcome(processor_id={self.processor_id!r}, call={self.call!r}, "
                f"request={self.request!r}, opts={self.opts!r}, reply={self.reply_tree!r})")


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

    __slots__ = ("proc", "method", "dry", "log", "cont", "request", "reply", "filters")

    def __init__(self, proc: Processor) -> None:
        self.proc = proc
        kind = proc.request_type
        self.method = "authorize" if kind == "*dryrun" else _CALLS.get(kind)
        self.dry = "*dryrun" in proc.flags
        self.log = "*log" in proc.flags
        self.cont = "*continue" in proc.flags
        self.request = compile_fields(proc.request_fields, proc.id)
        self.reply = compile_fields(proc.reply_fields, proc.id)
        self.filters = tuple(f.check for f in proc.filters)


class TemplateRunner:
    """Maps messages through one template to one engine (``sessions``; None = dry-run)."""

    def __init__(self, template: Template, sessions: Any) -> None:
        self.template = template
        self.sessions = sessions
        self._plans = [_Plan(p) for p in template.processors]

    async def run(self, view: MessageView | None, vars: dict[str, Any] | None = None, *,
                  dry_run: bool = False, trace: Trace | None = None) -> Outcome:
        """Evaluate processors in order; raises ``TemplateFieldError`` for a missing
        mandatory field (the agent turns it into its protocol's error answer)."""
        template_vars = self.template.vars
        if template_vars:
            merged = {**template_vars, **vars} if vars else dict(template_vars)
        else:
            merged = dict(vars) if vars else {}
        ctx = Ctx(view, merged)
        outcome = Outcome(builder=ctx.rep, vars=merged, tmp=ctx.tmp)
        dry = dry_run or self.sessions is None
        if trace is not None:
            trace.begin(ctx)
        for plan in self._plans:
            if trace is not None:
                failed = plan.proc.first_failing(ctx)
                trace.processor(plan.proc, failed)
                if failed is not None:
                    continue
            else:
                for check in plan.filters:
                    if not check(ctx):
                        break
                else:
                    await self._process(plan, ctx, outcome, dry, None)
                    if not plan.cont:
                        break
                continue
            await self._process(plan, ctx, outcome, dry, trace)
            if not plan.cont:
                break
        return outcome

    async def _process(self, plan: _Plan, ctx: Ctx, outcome: Outcome, dry: bool,
                       trace: Trace | None) -> None:
        proc = plan.proc
        ctx.processor_id = proc.id
        ctx.tz = proc.tz
        ctx.cgreq = request = {}
        ctx.opts = {}
        ctx.cgrep = {}
        if trace is None:
            plan.request(ctx)
        else:
            _traced_fields(proc, "request", proc.request_fields, ctx, trace)
        if proc.tenant and "Tenant" not in request:
            request["Tenant"] = proc.tenant
        dry = dry or plan.dry
        method = plan.method
        if trace is not None:
            trace.call(proc, method, request, ctx.opts, dry)
        if plan.log:
            log.info("template %s processor %s: %s request=%s opts=%s", self.template.agent,
                     proc.id, method or "no engine call", request, ctx.opts)
        if method is None:
            reply = None
        elif dry:
            reply = synthetic_reply(method, request)
        else:
            reply = await self._call(proc, method, ctx)
        if reply is not None:
            ctx.cgrep = reply.as_fields()
        if trace is None:
            plan.reply(ctx)
        else:
            _traced_fields(proc, "reply", proc.reply_fields, ctx, trace)
        if plan.log:
            log.info("template %s processor %s: engine reply=%s reply=%s", self.template.agent,
                     proc.id, ctx.cgrep, ctx.rep.tree())
        outcome.processor_id = proc.id
        outcome.flags = proc.flags
        outcome.call = method
        outcome.request = request
        outcome.opts = ctx.opts
        outcome.engine_reply = reply
        outcome.dry_run = dry
        outcome.processors.append(proc.id)

    async def _call(self, proc: Processor, method: str, ctx: Ctx) -> Reply:
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
