"""CDRsV1.* : query stored CDRs and push events/CDRs through the session manager.

Queries read storage directly through ``CdrService`` (pure reads, no
exporters); writes go through the SessionManager so rating, the CGRID+RunID
idempotency and the export queue stay in one place.
"""

from __future__ import annotations

from typing import Any

from agents.jsonrpc.dispatcher import CallContext, Handler, RpcError
from agents.jsonrpc.methods.args import cgr_event, opts_of
from engine.errors import NOT_FOUND, SERVER_ERROR, ChargingError

OK = "OK"
# Fields of a flat CDR (CDRsV1.ProcessCDR) that are not event fields.
_CDR_NON_EVENT = frozenset({"APIOpts", "ExtraFields", "CostDetails", "OrderID"})


class CdrsApi:
    def __init__(self, sessions: Any, cdr_reader: Any) -> None:
        self.sessions = sessions
        self.cdr_reader = cdr_reader

    def handlers(self) -> dict[str, Handler]:
        return {
            "CDRsV1.GetCDRs": self.get_cdrs,
            "CDRsV1.GetCDRsCount": self.get_cdrs_count,
            "CDRsV1.ProcessEvent": self.process_event,
            "CDRsV1.ProcessCDR": self.process_cdr,
        }

    async def get_cdrs(self, args: dict[str, Any], ctx: CallContext) -> Any:
        try:
            return await self.cdr_reader.get_cdrs(args)
        except ChargingError as exc:
            if exc.code == NOT_FOUND:
                raise ChargingError(SERVER_ERROR, NOT_FOUND) from None  # CGRateS wraps it here
            raise

    async def get_cdrs_count(self, args: dict[str, Any], ctx: CallContext) -> Any:
        return await self.cdr_reader.count(args)

    async def process_event(self, args: dict[str, Any], ctx: CallContext) -> Any:
        fields, opts = cgr_event(args)
        reply = await self.sessions.process_cdr(fields, opts)
        if reply.error:
            raise RpcError(reply.error)
        return OK

    async def process_cdr(self, args: dict[str, Any], ctx: CallContext) -> Any:
        """Flat CDR fields (CGRateS ``CDRWithAPIOpts``): ExtraFields merge into the event."""
        fields = {k: v for k, v in args.items() if k not in _CDR_NON_EVENT}
        extra = args.get("ExtraFields")
        if isinstance(extra, dict):
            for key, value in extra.items():
                fields.setdefault(key, value)
        reply = await self.sessions.process_cdr(fields, opts_of(args))
        if reply.error:
            raise RpcError(reply.error)
        return OK
