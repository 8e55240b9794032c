"""SMGenericV1.*: the pre-SessionSv1 API OpenSIPS 2.x's cgrates module still speaks.

Params are the flat event itself (no CGREvent envelope) and usages come back
as float seconds, as in shared/captures/opensips (GetMaxUsage answered ``60``,
InitiateSession ``-1``). A BiRPC client using these methods is answered in
callback protocol 0 (``SMGClientV1.DisconnectSession``).
"""

from __future__ import annotations

from typing import Any

from agents.jsonrpc.dispatcher import CallContext, Handler, RpcError
from agents.jsonrpc.link import PROTOCOL_V0, BiRPCLink
from agents.jsonrpc.methods.args import opts_of
from engine.reply import Reply
from engine.units import SECOND

OK = "OK"
_NOT_EVENT = frozenset({"APIOpts"})


def _fields(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if k not in _NOT_EVENT}


def _seconds(reply: Reply) -> float:
    if reply.error:
        raise RpcError(reply.error)
    usage = reply.max_usage if reply.max_usage is not None else 0
    return float(usage) if usage < 0 else usage / SECOND


class SMGenericApi:
    def __init__(self, sessions: Any) -> None:
        self.sessions = sessions

    def handlers(self) -> dict[str, Handler]:
        return {
            "SMGenericV1.GetMaxUsage": self.get_max_usage,
            "SMGenericV1.InitiateSession": self.initiate,
            "SMGenericV1.UpdateSession": self.update,
            "SMGenericV1.TerminateSession": self.terminate,
            "SMGenericV1.ProcessCDR": self.process_cdr,
        }

    @staticmethod
    def _mark(ctx: CallContext) -> None:
        if isinstance(ctx.link, BiRPCLink):
            ctx.link.protocol = PROTOCOL_V0

    async def get_max_usage(self, args: dict[str, Any], ctx: CallContext) -> Any:
        self._mark(ctx)
        return _seconds(await self.sessions.authorize(_fields(args), opts_of(args)))

    async def initiate(self, args: dict[str, Any], ctx: CallContext) -> Any:
        self._mark(ctx)
        return _seconds(await self.sessions.initiate(_fields(args), opts_of(args), link=ctx.link))

    async def update(self, args: dict[str, Any], ctx: CallContext) -> Any:
        self._mark(ctx)
        return _seconds(await self.sessions.update(_fields(args), opts_of(args)))

    async def terminate(self, args: dict[str, Any], ctx: CallContext) -> Any:
        self._mark(ctx)
        reply = await self.sessions.terminate(_fields(args), opts_of(args))
        if reply.error:
            raise RpcError(reply.error)
        return OK

    async def process_cdr(self, args: dict[str, Any], ctx: CallContext) -> Any:
        reply = await self.sessions.process_cdr(_fields(args), opts_of(args))
        if reply.error:
            raise RpcError(reply.error)
        return OK
