"""CDR exporters: CSV file, JSON lines, HTTP POST — each fed from a durable queue.

Why a queue for every exporter: a CDR is queued for export in the same storage
transaction that stores it, so a crash or a receiver that is down never loses an
export; a pump per exporter drains its queue in order and acknowledges an item
only after it was written/accepted (at-least-once; HTTP receivers get an
``X-Chargeway-CDR`` header ``<CGRID>:<RunID>`` to drop the rare duplicate).
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import orjson

from engine.errors import INVALID_ARGUMENT, ChargingError

log = logging.getLogger("chargeway.cdrs")

DEFAULT_CSV_FIELDS = (
    "CGRID", "RunID", "OriginHost", "Source", "OriginID", "ToR", "RequestType", "Tenant", "Category",
    "Account", "Subject", "Destination", "SetupTime", "AnswerTime", "Usage", "Cost", "CostSource", "ExtraInfo",
)


class ExportError(Exception):
    """Delivery failed; the item stays queued and is retried."""


class Exporter:
    """Delivers a batch of CGRateS CDR dicts, in order; raises ExportError on failure."""

    name: str
    batch: int = 100

    async def start(self) -> None:
        """Open resources (HTTP client session)."""

    async def close(self) -> None:
        """Release resources."""

    async def deliver(self, cdrs: list[dict[str, Any]]) -> int:
        """Deliver in order; return how many leading items were delivered (all, normally)."""
        raise ExportError("abstract exporter")


class _FileExporter(Exporter):
    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path

    def render(self, cdrs: list[dict[str, Any]], new_file: bool) -> bytes:
        raise ExportError("abstract file exporter")

    async def deliver(self, cdrs: list[dict[str, Any]]) -> int:
        def write() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            new_file = not self.path.exists() or self.path.stat().st_size == 0
            data = self.render(cdrs, new_file)
            with open(self.path, "ab") as fh:
                fh.write(data)
                fh.flush()
        try:
            await asyncio.to_thread(write)
        except OSError as exc:
            raise ExportError(f"{self.path}: {exc.strerror}") from exc
        return len(cdrs)


class CsvExporter(_FileExporter):
    """One CSV row per CDR, header on a new file; ``fields`` names CDR or ExtraFields keys."""

    def __init__(self, name: str, path: Path, fields: Sequence[str] = DEFAULT_CSV_FIELDS) -> None:
        super().__init__(name, path)
        self.fields = tuple(fields)

    def render(self, cdrs: list[dict[str, Any]], new_file: bool) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if new_file:
            writer.writerow(self.fields)
        for cdr in cdrs:
            extra = cdr.get("ExtraFields") or {}
            writer.writerow([_cell(cdr[f] if f in cdr else extra.get(f, "")) for f in self.fields])
        return out.getvalue().encode()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return str(value)


class JsonlExporter(_FileExporter):
    """One JSON object (the CGRateS CDR) per line."""

    def render(self, cdrs: list[dict[str, Any]], new_file: bool) -> bytes:
        return b"".join(orjson.dumps(c) + b"\n" for c in cdrs)


class HttpPostExporter(Exporter):
    """POSTs each CDR as JSON to ``url``; 2xx is delivered. ``attempts`` quick retries per
    round, then the pump backs off longer; the item is never dropped."""

    batch = 50

    def __init__(self, name: str, url: str, *, attempts: int = 5, timeout: float = 5.0,
                 headers: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.url = url
        self.attempts = attempts
        self.timeout = timeout
        self.headers = dict(headers or {})
        self._session: Any = None

    async def start(self) -> None:
        import aiohttp

        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def deliver(self, cdrs: list[dict[str, Any]]) -> int:
        import aiohttp

        if self._session is None:
            await self.start()
        done = 0
        for cdr in cdrs:
            delay = 0.01
            for attempt in range(self.attempts):
                try:
                    headers = {"Content-Type": "application/json",
                               "X-Chargeway-CDR": f"{cdr.get('CGRID', '')}:{cdr.get('RunID', '')}", **self.headers}
                    async with self._session.post(self.url, data=orjson.dumps(cdr), headers=headers) as resp:
                        await resp.read()
                        if 200 <= resp.status < 300:
                            break
                        error = f"HTTP {resp.status}"
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                    error = f"{type(exc).__name__}: {exc}"
                if attempt + 1 < self.attempts:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 1.0)
            else:
                if done:
                    return done
                raise ExportError(f"{self.url}: {error}")
            done += 1
        return done


@dataclass
class ExporterSpec:
    """A configured exporter: the queue it drains and the object that delivers."""

    queue: str
    exporter: Exporter


def build_exporters(specs: Sequence[Mapping[str, Any]] | None, *,
                    resolve: Callable[[str], Path] = Path) -> list[ExporterSpec]:
    """From ``cdrs.exporters`` config; a bad entry fails start-up naming it."""
    out: list[ExporterSpec] = []
    seen: set[str] = set()
    for index, spec in enumerate(specs or []):
        if not isinstance(spec, Mapping):
            raise ChargingError(INVALID_ARGUMENT, f"cdrs.exporters[{index}]: must be a mapping")
        kind = str(spec.get("type", ""))
        name = str(spec.get("name") or f"{kind}{index}")
        if name in seen:
            raise ChargingError(INVALID_ARGUMENT, f"cdrs.exporters[{index}]: duplicate name {name!r}")
        seen.add(name)
        exporter: Exporter
        if kind in ("csv", "jsonl"):
            if not spec.get("path"):
                raise ChargingError(INVALID_ARGUMENT, f"cdrs.exporters[{index}]: {kind} needs a path")
            path = resolve(str(spec["path"]))
            if kind == "csv":
                fields = spec.get("fields") or DEFAULT_CSV_FIELDS
                if not isinstance(fields, (list, tuple)):
                    raise ChargingError(INVALID_ARGUMENT, f"cdrs.exporters[{index}]: fields must be a list")
                exporter = CsvExporter(name, path, [str(f) for f in fields])
            else:
                exporter = JsonlExporter(name, path)
        elif kind == "http_post":
            url = str(spec.get("url") or "")
            if not url.startswith(("http://", "https://")):
                raise ChargingError(INVALID_ARGUMENT, f"cdrs.exporters[{index}]: http_post needs an http(s) url")
            attempts = spec.get("attempts", 5)
            if not isinstance(attempts, int) or attempts < 1:
                raise ChargingError(INVALID_ARGUMENT, f"cdrs.exporters[{index}]: attempts must be >= 1")
            exporter = HttpPostExporter(name, url, attempts=attempts, timeout=float(spec.get("timeout", 5.0)),
                                        headers=spec.get("headers"))
        else:
            raise ChargingError(INVALID_ARGUMENT,
                                f"cdrs.exporters[{index}]: unknown type {kind!r} (csv, jsonl, http_post)")
        out.append(ExporterSpec(f"cdr_export:{name}", exporter))
    return out


class ExportPump:
    """Drains one exporter's durable queue in order, backing off while delivery fails."""

    def __init__(self, storage: Any, spec: ExporterSpec, *, max_backoff: float = 5.0) -> None:
        self.storage = storage
        self.spec = spec
        self.max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._lock = asyncio.Lock()  # one delivery pass at a time: the order and no duplicates
        self.delivered = 0
        self.last_error = ""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"cdr-export-{self.spec.exporter.name}")
        self._wake.set()

    def notify(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.spec.exporter.close()

    async def drain(self) -> None:
        """Deliver everything queued now (used at shutdown and by tests)."""
        while await self._pass():
            pass

    async def _pass(self) -> bool:
        """One batch: True if something was delivered."""
        async with self._lock:
            return await self._pass_locked()

    async def _pass_locked(self) -> bool:
        items = await self.storage.queue_get(self.spec.queue, self.spec.exporter.batch)
        if not items:
            return False
        cdrs = [orjson.loads(payload) for _, payload in items]
        await self._fill_order_ids(cdrs)
        count = await self.spec.exporter.deliver(cdrs)
        if count:
            await self.storage.queue_ack(self.spec.queue, [item_id for item_id, _ in items[:count]])
            self.delivered += count
        return count > 0

    async def _fill_order_ids(self, cdrs: list[dict[str, Any]]) -> None:
        """Queued before storage numbered them: take OrderID from the stored rows (one query)."""
        missing = {c.get("CGRID") for c in cdrs if not c.get("OrderID")}
        if not missing:
            return
        from engine.storage.base import CdrFilter

        rows = await self.storage.query_cdrs(CdrFilter(cgrids=tuple(str(m) for m in missing)))
        order = {(r.cgrid, r.run_id): r.order_id for r in rows}
        for cdr in cdrs:
            if not cdr.get("OrderID"):
                cdr["OrderID"] = order.get((cdr.get("CGRID"), cdr.get("RunID")), 0)

    async def _run(self) -> None:
        backoff = 0.05
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            while not self._stopping:
                try:
                    if not await self._pass():
                        break
                    backoff = 0.05
                    self.last_error = ""
                except ExportError as exc:
                    self.last_error = str(exc)
                    log.warning("CDR export %s failed, retrying in %.2fs: %s", self.spec.exporter.name, backoff, exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                except Exception:  # storage hiccup: never let the pump die silently
                    log.exception("CDR export %s pump error", self.spec.exporter.name)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
