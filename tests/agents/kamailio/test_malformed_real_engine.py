"""Malformed evapi input against the real engine: logged, skipped, and not a cent charged.

The fake evapi server stands in for Kamailio (which never emits such frames);
chargeway runs through its composition root with the integration tariff plan
(1001 holds 10.00; calls to 1002 cost 0.01/s).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
import yaml

from chargeway.app import Gateway
from chargeway.config import load_config
from engine.storage.base import CdrFilter

from .fake_evapi import FakeEvapi

TP = Path(__file__).resolve().parents[2] / "integration" / "kamailio" / "tp"
CALL = {"OriginID": "m-1", "RequestType": "*prepaid", "Tenant": "cgrates.org", "Account": "1001",
        "Destination": "1002", "SetupTime": "1795439929", "AnswerTime": "1795439929",
        "h_entry": "1", "h_id": "2"}


@pytest.fixture
async def gateway(tmp_path: Path):
    fake = await FakeEvapi().start()
    config = {
        "general": {"uvloop": False}, "tariffplan": {"folder": str(TP), "load_on_start": "always"},
        "api": {"enabled": False}, "diameter": {"enabled": False}, "radius": {"enabled": False},
        "kamailio": {"enabled": True, "evapi_conns": [{"address": fake.address}],
                     "reconnect": {"initial": "50ms", "max": "200ms"}},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    gw = Gateway(load_config(tmp_path / "c.yaml", tmp_path / "data"))
    await gw.start()
    await fake.wait_connections(1)
    yield gw, fake
    await gw.stop()
    await fake.stop()


async def test_malformed_frames_charge_nothing_and_keep_the_connection(gateway, caplog) -> None:
    gw, fake = gateway
    end = orjson.dumps({"event": "CGR_CALL_END", **CALL, "Usage": "600"})
    fake.send_raw(b"%d:%s," % (len(end), end[:-1] + b"?"))            # corrupt JSON, good framing
    fake.send({"event": "CGR_CALL_FINISHED", **CALL, "Usage": "600"})    # unknown event
    fake.send({**CALL, "Usage": "600"})                                   # no event at all
    fake.send({"event": "CGR_CALL_END", **{k: v for k, v in CALL.items() if k != "OriginID"},
               "Usage": "600"})                                          # no OriginID: engine refuses
    fake.send({"event": "CGR_AUTH_REQUEST", "tr_index": "1", "tr_label": "2", **CALL})
    reply = await fake.next()
    assert reply["TransactionIndex"] == "1" and reply["MaxUsage"] == 1000 and reply["Error"] == ""
    assert fake.connections == 1 and fake.closed_connections == 0
    await asyncio.sleep(0.2)
    assert gw.accounts.get("cgrates.org", "1001").total() == Decimal(10)
    assert await gw.storage.query_cdrs(CdrFilter(accounts=["1001"])) == []
    assert "invalid JSON" in caplog.text and "CGR_CALL_FINISHED" in caplog.text


async def test_bad_length_header_drops_only_that_stream_and_charges_nothing(gateway) -> None:
    gw, fake = gateway
    end = orjson.dumps({"event": "CGR_CALL_END", **CALL, "Usage": "600"})
    fake.send_raw(b"x%d:%s," % (len(end), end))                          # unrecoverable framing
    await fake.wait_connections(2)
    fake.send({"event": "CGR_AUTH_REQUEST", "tr_index": "7", "tr_label": "8", **CALL})
    assert (await fake.next())["TransactionIndex"] == "7"
    assert gw.accounts.get("cgrates.org", "1001").total() == Decimal(10)
    assert await gw.storage.query_cdrs(CdrFilter(accounts=["1001"])) == []
