"""CDR exporters: files get every CDR; an HTTP receiver that is down first loses nothing."""

from __future__ import annotations

import asyncio
import csv
import json
import socket
from decimal import Decimal

import pytest
from aiohttp import web

from engine.cdrs import CdrService, cdr_from_event
from engine.errors import ChargingError
from engine.event import ChargingEvent
from engine.storage import open_storage


@pytest.fixture
async def storage(tmp_path):
    store = open_storage(tmp_path / "db")
    await store.open()
    yield store
    await store.close()


def cdr(i: int):
    event = ChargingEvent.from_fields({"OriginID": f"call-{i}", "OriginHost": "h", "Account": "1001",
                                       "Destination": "1002", "AnswerTime": "2026-01-05T10:00:00Z",
                                       "codec": "PCMA"})
    return cdr_from_event(event, "*default", usage=i * 10**9, cost=Decimal(i) / 10, cost_source="*sessions")


async def test_csv_and_jsonl_files_receive_each_cdr(storage, tmp_path):
    service = CdrService(storage, {"exporters": [
        {"type": "csv", "path": str(tmp_path / "out.csv"), "fields": ["OriginID", "Usage", "Cost", "codec"]},
        {"type": "jsonl", "path": str(tmp_path / "out.jsonl")},
    ]})
    await service.start()
    await service.store([cdr(1), cdr(2)])
    await service.store([cdr(3)])
    await service.drain_exports()
    await service.stop()
    rows = list(csv.reader((tmp_path / "out.csv").open()))
    assert rows == [["OriginID", "Usage", "Cost", "codec"], ["call-1", "1000000000", "0.1", "PCMA"],
                    ["call-2", "2000000000", "0.2", "PCMA"], ["call-3", "3000000000", "0.3", "PCMA"]]
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [(c["OriginID"], c["Cost"]) for c in lines] == [("call-1", 0.1), ("call-2", 0.2), ("call-3", 0.3)]
    assert [c["OrderID"] for c in lines] == [1, 2, 3]              # numbered as stored
    assert await storage.queue_get("cdr_export:csv0") == []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_http_receiver_down_then_up_gets_every_cdr_once_in_order(storage):
    port = free_port()
    service = CdrService(storage, {"exporters": [
        {"type": "http_post", "url": f"http://127.0.0.1:{port}/cdr", "attempts": 2, "timeout": 1}]})
    pump = service.pumps[0]
    pump.max_backoff = 0.1
    await service.start()
    for i in range(1, 6):
        await service.store([cdr(i)])
    await asyncio.sleep(0.3)  # receiver down: retries fail, nothing acknowledged
    assert pump.delivered == 0 and "127.0.0.1" in pump.last_error
    assert len(await storage.queue_get(pump.spec.queue)) == 5

    received: list[tuple[str, str]] = []

    async def handler(request: web.Request) -> web.Response:
        body = await request.json()
        received.append((body["OriginID"], request.headers["X-Chargeway-CDR"]))
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_post("/cdr", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        for _ in range(100):
            if pump.delivered == 5:
                break
            await asyncio.sleep(0.05)
        await service.store([cdr(6)])
        for _ in range(100):
            if pump.delivered == 6:
                break
            await asyncio.sleep(0.05)
    finally:
        await service.stop()
        await runner.cleanup()
    assert [r[0] for r in received] == [f"call-{i}" for i in range(1, 7)]
    assert received[0][1].endswith(":*default")
    assert await storage.queue_get(pump.spec.queue) == []


async def test_queue_survives_restart(tmp_path):
    """CDRs queued while the receiver is down are still delivered after a restart."""
    store = open_storage(tmp_path / "db")
    await store.open()
    service = CdrService(store, {"exporters": [{"type": "jsonl", "path": str(tmp_path / "x" / "out.jsonl")}]})
    # exporter not started: simulates a crash before delivery
    await service.store([cdr(1), cdr(2)])
    await store.close()
    store = open_storage(tmp_path / "db")
    await store.open()
    service = CdrService(store, {"exporters": [{"type": "jsonl", "path": str(tmp_path / "x" / "out.jsonl")}]})
    await service.start()
    await service.drain_exports()
    await service.stop()
    await store.close()
    lines = (tmp_path / "x" / "out.jsonl").read_text().splitlines()
    assert [json.loads(line)["OriginID"] for line in lines] == ["call-1", "call-2"]


@pytest.mark.parametrize("spec, message", [
    ({"type": "kafka"}, "unknown type"),
    ({"type": "csv"}, "needs a path"),
    ({"type": "http_post", "url": "ftp://x"}, "http(s) url"),
    ({"type": "http_post", "url": "http://x", "attempts": 0}, "attempts"),
])
def test_bad_exporter_config_is_rejected(storage, spec, message):
    with pytest.raises(ChargingError) as err:
        CdrService(storage, {"exporters": [spec]})
    assert message in str(err.value)
