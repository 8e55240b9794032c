"""The CDR store: write CDR rows (with their export queue items) durably, and query them.

Sessions hand their CDR rows here as storage ops (``ops_for``) so a terminate's
settlement, its CDRs and their export queue items commit in ONE transaction;
``committed()`` then wakes the exporters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import orjson

from engine.cdrs.exporters import ExportPump, build_exporters
from engine.cdrs.model import cdr_to_cgrates, filter_from_cgrates
from engine.errors import NOT_FOUND, ChargingError
from engine.storage.base import CdrFilter, CdrRow, InsertCdr, QueuePut, WriteOp


class CdrService:
    """Stores and queries CDRs; owns the exporter pumps configured under ``cdrs:``."""

    def __init__(self, storage: Any, config: Mapping[str, Any] | None = None, *,
                 resolve_path: Callable[[str], Path] = Path) -> None:
        self.storage = storage
        config = config or {}
        self.pumps = [ExportPump(storage, spec) for spec in build_exporters(config.get("exporters"), resolve=resolve_path)]

    async def start(self) -> None:
        for pump in self.pumps:
            pump.start()

    async def stop(self) -> None:
        for pump in self.pumps:
            await pump.stop()

    def ops_for(self, rows: Sequence[CdrRow]) -> list[WriteOp]:
        """Insert ops for ``rows`` plus one queue item per exporter per row.

        The caller guarantees the rows are new (sessions check their idempotency
        key first), so every queued export corresponds to a stored CDR.
        """
        ops: list[WriteOp] = [InsertCdr(row) for row in rows]
        if self.pumps:
            payloads = [orjson.dumps(cdr_to_cgrates(row), default=str) for row in rows]
            for pump in self.pumps:
                ops.extend(QueuePut(pump.spec.queue, payload) for payload in payloads)
        return ops

    def committed(self) -> None:
        """Wake the exporters after a write holding ``ops_for`` ops committed."""
        for pump in self.pumps:
            pump.notify()

    async def store(self, rows: Sequence[CdrRow]) -> list[bool]:
        """Store rows (idempotent on CGRID+RunID); True for each new one. Durable on return."""
        if not rows:
            return []
        existing = await self.storage.query_cdrs(CdrFilter(cgrids=tuple({r.cgrid for r in rows})))
        have = {(r.cgrid, r.run_id) for r in existing}
        fresh = [r for r in rows if (r.cgrid, r.run_id) not in have]
        results = await self.storage.write(self.ops_for(fresh)) if fresh else []
        self.committed()
        inserted = iter(results[: len(fresh)])
        return [False if (r.cgrid, r.run_id) in have else bool(next(inserted)) for r in rows]

    async def exists(self, cgrid: str) -> bool:
        """True once any CDR of this session is stored (the duplicate-terminate guard)."""
        return bool(await self.storage.query_cdrs(CdrFilter(cgrids=(cgrid,), limit=1)))

    async def query_rows(self, flt: CdrFilter) -> list[CdrRow]:
        return await self.storage.query_cdrs(flt)

    async def get_cdrs(self, args: Mapping[str, Any]) -> list[dict[str, Any]]:
        """CDRsV1.GetCDRs: CGRateS filter in, CGRateS CDRs out; NOT_FOUND when none."""
        rows = await self.storage.query_cdrs(filter_from_cgrates(args))
        if not rows:
            raise ChargingError(NOT_FOUND)
        return [cdr_to_cgrates(row) for row in rows]

    async def count(self, args: Mapping[str, Any]) -> int:
        flt = filter_from_cgrates(args)
        flt.limit = None
        flt.offset = 0
        return len(await self.storage.query_cdrs(flt))

    async def drain_exports(self) -> None:
        """Deliver everything queued (shutdown, tests)."""
        for pump in self.pumps:
            await pump.drain()
