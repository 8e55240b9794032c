"""freeDiameter 1.2 as a base-protocol peer: CER/CEA, DWR/DWA both ways, DPR/DPA.

freeDiameter rejects a CEA whose Origin-Host differs from its ConnectPeer name, so a
connection that stays up is itself a conformance check of our CEA. tshark watches the
whole exchange and must decode every frame we sent without an expert complaint.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from tests.agents.diameter.engine_rig import start_rig, stop_rig

from .peers import FREEDIAMETERD, SERVER_PORT, Capture, Child, fd_messages, freediameter_conf, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


async def test_freediameter_connects_watchdogs_and_disconnects(tmp_path: Path) -> None:
    rig = await start_rig(tmp_path, listeners=[{"address": f"127.0.0.1:{SERVER_PORT}", "transport": "tcp"}],
                          watchdog_interval=30)
    server = rig.service.server
    fd: Child | None = None
    try:
        async with Capture(tmp_path) as capture:
            fd = await Child.start([FREEDIAMETERD, "-c", str(freediameter_conf(tmp_path, tw=6)), "-dd"],
                                   tmp_path / "fd.log")
            await wait_for(lambda: "fd.client.test" in server.peers, 15)
            # Its DWR after TwTimer (6 s) of silence: we answer with DWA.
            await wait_for(lambda: ("SND", "Device-Watchdog-Request") in fd_messages(fd.text()), 15)
            await wait_for(lambda: ("RCV", "Device-Watchdog-Answer") in fd_messages(fd.text()), 5)
            # Now make our side the idle-watcher: our DWR must be answered too.
            conn = server.peers["fd.client.test"]
            conn.peer.config = dataclasses.replace(conn.peer.config, watchdog_interval=0.5)
            conn._arm()
            await wait_for(lambda: ("RCV", "Device-Watchdog-Request") in fd_messages(fd.text()), 10)
            await wait_for(lambda: ("SND", "Device-Watchdog-Answer") in fd_messages(fd.text()), 5)
            # SIGTERM: freeDiameter sends DPR, we answer DPA and close.
            await fd.stop()
            await wait_for(lambda: not server.connections, 10)
        log = fd.text()
        messages = fd_messages(log)
        assert messages[0] == ("SND", "Capabilities-Exchange-Request")
        assert ("RCV", "Capabilities-Exchange-Answer") in messages
        assert ("SND", "Disconnect-Peer-Request") in messages and ("RCV", "Disconnect-Peer-Answer") in messages
        assert "Invalid argument" not in log and "failed" not in log.lower()
        rows = capture.fields("diameter.cmd.code", "diameter.flags.request", "diameter.Result-Code",
                              display_filter=f"diameter && tcp.srcport=={SERVER_PORT}")
        sent = {(row[0], row[1]) for row in rows}
        assert {("257", "0"), ("280", "0"), ("280", "1"), ("282", "0")} <= sent
        assert all(row[2] in ("", "2001") for row in rows)
        assert capture.expert_problems(from_port=SERVER_PORT) == []
    finally:
        if fd is not None:
            await fd.stop()
        await stop_rig(rig)
        await asyncio.sleep(0)
