"""SessionSv1.* mapped onto the engine's SessionManager.

Reply shapes are CGRateS's (research/cgrates.md §1.3): MaxUsage in ns (float
seconds for the ``*WithDigest`` variants OpenSIPS uses), ``"OK"`` for
terminate/CDR, ProcessEvent maps keyed by RunID with ``*raw``. Our one
addition: a ``Reason`` key whenever the engine limited or refused the usage.
"""

from __future__ import annotations

from typing import Any, Mapping

from agents.jsonrpc.dispatcher import CallContext, Handler, RpcError
from agents.jsonrpc.link import PROTOCOL_V1, BiRPCLink
from agents.jsonrpc.methods.args import cgr_event, flag, optional_int, string_list, text
from engine.errors import NOT_FOUND, ChargingError, mandatory_missing
from engine.reply import Reply
from engine.units import SECOND, decimal_to_json

OK = "OK"
RAW = "*raw"

# Arg booleans that ask for a subsystem, per method (CGRateS: none set -> [Subsystems]).
_AUTH_FLAGS = ("GetMaxUsage", "GetAttributes", "AuthorizeResources", "AuthorizeIP", "GetRoutes",
               "ProcessThresholds", "ProcessStats")
_INIT_FLAGS = ("InitSession", "GetAttributes", "AllocateResources", "AllocateIP", "ProcessThresholds",
               "ProcessStats")
_UPDATE_FLAGS = ("UpdateSession", "GetAttributes")
_TERM_FLAGS = ("TerminateSession", "ReleaseResources", "ReleaseIP", "ProcessThresholds", "ProcessStats")
_MESSAGE_FLAGS = ("Debit", "GetAttributes", "AllocateResources", "AllocateIP", "GetRoutes",
                  "ProcessThresholds", "ProcessStats")


def _need_subsystem(args: Mapping[str, Any], names: tuple[str, ...]) -> None:
    if not any(flag(args, n) for n in names):
        raise mandatory_missing("Subsystems")


def _checked(reply: Reply) -> Reply:
    if reply.error:
        raise RpcError(reply.error)
    return reply


def _usage_reply(reply: Reply, *, seconds: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if reply.max_usage is not None:
        out["MaxUsage"] = reply.max_usage / SECOND if seconds and reply.max_usage >= 0 else reply.max_usage
    if reply.reason:
        out["Reason"] = reply.reason
    return out


def _digest(reply: Reply) -> dict[str, Any]:
    out: dict[str, Any] = {"AttributesDigest": "", "AllocatedIP": "", "ResourceAllocation": "",
                           "RoutesDigest": "", "Thresholds": "", "StatQueues": ""}
    out.update(_usage_reply(reply, seconds=True))
    out.setdefault("MaxUsage", 0.0)
    return out


def _mark_opensips(ctx: CallContext) -> None:
    """Only OpenSIPS calls the digest methods: answer its callbacks in protocol 1.0."""
    if isinstance(ctx.link, BiRPCLink):
        ctx.link.protocol = PROTOCOL_V1


class SessionsApi:
    """Handlers for SessionSv1; ``sessions`` is the engine SessionManager."""

    def __init__(self, sessions: Any) -> None:
        self.sessions = sessions

    def handlers(self) -> dict[str, Handler]:
        return {
            "SessionSv1.AuthorizeEvent": self.authorize_event,
            "SessionSv1.AuthorizeEventWithDigest": self.authorize_event_with_digest,
            "SessionSv1.InitiateSession": self.initiate_session,
            "SessionSv1.InitiateSessionWithDigest": self.initiate_session_with_digest,
            "SessionSv1.UpdateSession": self.update_session,
            "SessionSv1.TerminateSession": self.terminate_session,
            "SessionSv1.ProcessCDR": self.process_cdr,
            "SessionSv1.ProcessMessage": self.process_message,
            "SessionSv1.ProcessEvent": self.process_event,
            "SessionSv1.GetActiveSessions": self.get_active_sessions,
            "SessionSv1.GetActiveSessionsCount": self.get_active_sessions_count,
            "SessionSv1.ForceDisconnect": self.force_disconnect,
        }

    async def _authorize(self, args: dict[str, Any]) -> Reply:
        _need_subsystem(args, _AUTH_FLAGS)
        fields, opts = cgr_event(args)
        if not flag(args, "GetMaxUsage"):
            return Reply()
        return _checked(await self.sessions.authorize(fields, opts))

    async def authorize_event(self, args: dict[str, Any], ctx: CallContext) -> Any:
        return _usage_reply(await self._authorize(args))

    async def authorize_event_with_digest(self, args: dict[str, Any], ctx: CallContext) -> Any:
        _mark_opensips(ctx)
        return _digest(await self._authorize(args))

    async def _initiate(self, args: dict[str, Any], ctx: CallContext) -> Reply:
        _need_subsystem(args, _INIT_FLAGS)
        fields, opts = cgr_event(args)
        if not flag(args, "InitSession"):
            return Reply()
        return _checked(await self.sessions.initiate(fields, opts, link=ctx.link))

    async def initiate_session(self, args: dict[str, Any], ctx: CallContext) -> Any:
        return _usage_reply(await self._initiate(args, ctx))

    async def initiate_session_with_digest(self, args: dict[str, Any], ctx: CallContext) -> Any:
        _mark_opensips(ctx)
        return _digest(await self._initiate(args, ctx))

    async def update_session(self, args: dict[str, Any], ctx: CallContext) -> Any:
        _need_subsystem(args, _UPDATE_FLAGS)
        fields, opts = cgr_event(args)
        if not flag(args, "UpdateSession"):
            return {}
        return _usage_reply(_checked(await self.sessions.update(fields, opts)))

    async def terminate_session(self, args: dict[str, Any], ctx: CallContext) -> Any:
        _need_subsystem(args, _TERM_FLAGS)
        fields, opts = cgr_event(args)
        if flag(args, "TerminateSession"):
            _checked(await self.sessions.terminate(fields, opts))
        return OK

    async def process_cdr(self, args: dict[str, Any], ctx: CallContext) -> Any:
        fields, opts = cgr_event(args)
        _checked(await self.sessions.process_cdr(fields, opts))
        return OK

    async def process_message(self, args: dict[str, Any], ctx: CallContext) -> Any:
        _need_subsystem(args, _MESSAGE_FLAGS)
        fields, opts = cgr_event(args)
        if not flag(args, "Debit"):
            return {}
        return _usage_reply(_checked(await self.sessions.process_message(fields, opts, debit=True)))

    async def process_event(self, args: dict[str, Any], ctx: CallContext) -> Any:
        """``Flags`` pick the step: ``*rals:*authorize|*initiate|*update|*terminate``, ``*cdrs``."""
        flags = parse_flags(string_list(args, "Flags"))
        fields, opts = cgr_event(args)
        rals = flags.get("*rals", flags.get("*accounts"))
        out: dict[str, Any] = {}
        reply: Reply | None = None
        if rals is not None:
            if "*authorize" in rals:
                reply = await self.sessions.authorize(fields, opts)
            elif "*initiate" in rals:
                reply = await self.sessions.initiate(fields, opts, link=ctx.link)
            elif "*update" in rals:
                reply = await self.sessions.update(fields, opts)
            elif "*terminate" in rals:
                reply = await self.sessions.terminate(fields, opts)
            else:
                reply = await self.sessions.process_message(fields, opts, debit=True)
            _checked(reply)
            derived = "*derived_reply" in rals
            if reply.max_usage is not None:
                usage: dict[str, Any] = {RAW: reply.max_usage}
                if derived:
                    usage.update(reply.run_max_usage)
                out["MaxUsage"] = usage
            if "*cost" in rals and (reply.cost is not None or reply.run_cost):
                costs: dict[str, Any] = {}
                if reply.cost is not None:
                    costs[RAW] = decimal_to_json(reply.cost)
                costs.update({k: decimal_to_json(v) for k, v in reply.run_cost.items()})
                out["Cost"] = costs
            if reply.reason:
                out["Reason"] = {RAW: reply.reason}
        if "*cdrs" in flags:
            _checked(await self.sessions.process_cdr(fields, opts))
        if rals is None and "*cdrs" not in flags:
            raise mandatory_missing("Subsystems")
        return out

    def _filtered(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        filters = string_list(args, "Filters")
        tenant = text(args, "Tenant")
        if tenant:
            filters.append(f"*string:~*req.Tenant:{tenant}")
        sessions = self.sessions.active_sessions(filters or None)
        limit = optional_int(args, "Limit")
        return sessions[:limit] if limit is not None else sessions

    async def get_active_sessions(self, args: dict[str, Any], ctx: CallContext) -> Any:
        sessions = self._filtered(args)
        if not sessions:
            raise ChargingError(NOT_FOUND)
        return sessions

    async def get_active_sessions_count(self, args: dict[str, Any], ctx: CallContext) -> Any:
        return len(self._filtered(args))

    async def force_disconnect(self, args: dict[str, Any], ctx: CallContext) -> Any:
        filters = string_list(args, "Filters")
        tenant = text(args, "Tenant")
        if tenant:
            filters.append(f"*string:~*req.Tenant:{tenant}")
        event = args.get("Event") if isinstance(args.get("Event"), dict) else {}
        reason = str(event.get("DisconnectCause") or "FORCED_DISCONNECT")
        count = await self.sessions.force_disconnect(filters or None, reason)
        if not count:
            raise ChargingError(NOT_FOUND)
        return OK


def parse_flags(flags: list[str]) -> dict[str, set[str]]:
    """``["*rals:*initiate:*cost", "*cdrs"]`` -> {"*rals": {"*initiate", "*cost"}, "*cdrs": set()}."""
    out: dict[str, set[str]] = {}
    for item in flags:
        name, _, rest = item.partition(":")
        subs = out.setdefault(name, set())
        for part in rest.split(":") if rest else ():
            subs.update(p for p in part.split("&") if p)
    return out
