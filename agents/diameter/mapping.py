"""The thin layer between a CCR unit and the template runner (and so the engine).

``TemplateMapper`` runs ``templates/diameter.yaml`` (or the configured file) for one
credit-control unit. ``EngineFacade`` lets the template reach the RFC 4006 Requested-Action
variants of an event through the runner's fixed flag set: a processor with ``*message``
writes ``*opts.*requestedAction`` and the facade routes PRICE_ENQUIRY to ``get_cost``,
REFUND_ACCOUNT to ``refund`` and CHECK_BALANCE to ``authorize``; DIRECT_DEBITING stays
``process_message``. The option is removed before the engine sees the opts.
"""

from __future__ import annotations

from typing import Any, Awaitable, Mapping

from agents.diameter import constants as C
from agents.diameter.credit_control import UnitOutcome
from engine.reply import Reply
from engine.templating import MessageView, Template, TemplateFieldError, TemplateRunner

OPT_ACTION = "*requestedAction"


class EngineFacade:
    """SessionManager as the runner sees it, with Requested-Action routing for events.

    Its methods hand back the engine's own coroutine rather than being coroutines that
    await it: one frame fewer per engine call, and one fewer for the engine's commit to
    resume through."""

    def __init__(self, sessions: Any) -> None:
        self.sessions = sessions

    def authorize(self, fields: Mapping, opts: Mapping | None = None) -> Awaitable[Reply]:
        return self.sessions.authorize(fields, _clean(opts))

    def initiate(self, fields: Mapping, opts: Mapping | None = None, link: Any = None) -> Awaitable[Reply]:
        return self.sessions.initiate(fields, _clean(opts), link=link)

    def update(self, fields: Mapping, opts: Mapping | None = None) -> Awaitable[Reply]:
        return self.sessions.update(fields, _clean(opts))

    def terminate(self, fields: Mapping, opts: Mapping | None = None) -> Awaitable[Reply]:
        return self.sessions.terminate(fields, _clean(opts))

    def process_cdr(self, fields: Mapping, opts: Mapping | None = None) -> Awaitable[Reply]:
        return self.sessions.process_cdr(fields, _clean(opts))

    def process_message(self, fields: Mapping, opts: Mapping | None = None, *,
                        debit: bool = True) -> Awaitable[Reply]:
        action = _action(opts)
        if action == C.ACTION_PRICE_ENQUIRY:
            return self.sessions.get_cost(fields)
        if action == C.ACTION_REFUND_ACCOUNT:
            return self.sessions.refund(fields, _clean(opts))
        if action == C.ACTION_CHECK_BALANCE:
            return self.sessions.authorize(fields, _clean(opts))
        return self.sessions.process_message(fields, _clean(opts), debit=debit)


def _action(opts: Mapping | None) -> int | None:
    if not opts or OPT_ACTION not in opts or opts[OPT_ACTION] in (None, ""):
        return None
    return int(str(opts[OPT_ACTION]))


def _clean(opts: Mapping | None) -> Mapping:
    """The opts without the facade's routing option (a copy only when it is there: the
    runner builds fresh opts per message, so the usual CCR-I/U/T passes them as they are)."""
    if not opts:
        return {}
    if OPT_ACTION not in opts:
        return opts
    return {k: v for k, v in opts.items() if k != OPT_ACTION}


class TemplateMapper:
    """Maps one CCR unit through the template runner."""

    def __init__(self, template: Template, sessions: Any, link: Any = None, *, dry_run: bool = False) -> None:
        self.runner = TemplateRunner(template, EngineFacade(sessions) if sessions is not None else None)
        self.link = link
        self.dry_run = dry_run

    async def map_unit(self, view: MessageView, variables: dict[str, Any]) -> UnitOutcome:
        if self.link is not None:
            variables["*link"] = self.link       # the unit's own dict (UnitMapper contract)
        try:
            outcome = await self.runner.run(view, variables, dry_run=self.dry_run)
        except TemplateFieldError as err:
            return UnitOutcome(matched=True, missing=tuple(err.missing or ()) or (err.tag,), error=str(err))
        if not outcome.matched:
            return UnitOutcome(matched=False, error="no processor matched")
        error = outcome.engine_reply.error if outcome.engine_reply is not None else ""
        # The reply's live entries, not a frozen copy: the agent encodes them right away.
        return UnitOutcome(outcome.rep.entries(), outcome.request, True, None, error)
