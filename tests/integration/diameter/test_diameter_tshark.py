"""tshark (Wireshark 4.0) decodes every message we send, with no malformed or expert errors.

Our Gy client drives every kind of answer we produce: CEA, CCA with several MSCCs,
Final-Unit-Indication, 4012, 5030, 5005 with Failed-AVP, 5004, 3001/3007 with the E bit,
Cost-Information, Check-Balance-Result, DWA, ASR, RAR and DPA.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.diameter import constants as C
from agents.diameter.codec import Message, group
from tests.agents.diameter.engine_rig import start_rig, stop_rig

from .peers import SERVER_PORT, Capture

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

MB = 1048576
CAPTURES = Path(__file__).resolve().parents[2] / "agents" / "diameter" / "captures"
IMS = group("Service-Information", group("IMS-Information", ("Called-Party-Address", "sip:+1002@ims.test")))


async def test_every_message_we_send_decodes_cleanly_in_tshark(tmp_path: Path) -> None:
    rig = await start_rig(tmp_path, listeners=[{"address": f"127.0.0.1:{SERVER_PORT}", "transport": "tcp"}])
    try:
        async with Capture(tmp_path) as capture:
            gy = await rig.client()
            await gy.request(gy.ccr("ts;1", 1, 0, msccs=[{"rg": 1, "rsu": {"CC-Total-Octets": 10 * MB}},
                                                         {"rg": 2, "si": 9, "rsu": {"CC-Input-Octets": MB}}]))
            await gy.request(gy.ccr("ts;1", 2, 1, msccs=[{"rg": 1, "usu": {"CC-Total-Octets": MB},
                                                          "rsu": {"CC-Total-Octets": MB}}]))
            assert await rig.service.link.reauth("ts;1") == 2001
            await rig.engine.sessions.force_disconnect({"OriginID": "ts;1_1"})
            await gy.wait_request(C.CMD_ABORT_SESSION)
            await gy.request(gy.ccr("ts;1", 3, 2, msccs=[{"rg": 1, "usu": {"CC-Total-Octets": MB}},
                                                         {"rg": 2, "usu": {"CC-Input-Octets": 10}}]))
            await gy.request(gy.ccr("ts;2", 1, 0, subscriber="1003", msccs=[{"rg": 5, "rsu": {"CC-Total-Octets": 5000 * MB}}]))
            await gy.request(gy.ccr("ts;2", 2, 1, subscriber="1003", msccs=[{"rg": 5, "usu": {"CC-Total-Octets": 1000 * MB},
                                                                             "rsu": {"CC-Total-Octets": MB}}]))
            await gy.request(gy.ccr("ts;3", 1, 0, subscriber="ghost", msccs=[{"rg": 1, "rsu": {"CC-Total-Octets": 1}}]))
            await gy.request(gy.ccr("ts;4", 1, 0, subscriber="", msccs=[{"rg": 1}]))
            await gy.request(gy.ccr("ts;5", 9, 0))
            await gy.request(gy.ccr("ts;6", 4, 0, context="32260@3gpp.org", requested_action=3,
                                    msccs=[{"rsu": {"CC-Time": 60}}], extra=[IMS]))
            await gy.request(gy.ccr("ts;7", 4, 0, context="32260@3gpp.org", requested_action=2,
                                    msccs=[{"rsu": {"CC-Time": 60}}], extra=[IMS]))
            await gy.request(gy.ccr("ts;8", 4, 0, context="32274@3gpp.org", msccs=[{"rsu": {"CC-Service-Specific-Units": 1}}]))
            unknown_app = gy.ccr("ts;9", 1, 0)
            unknown_app.application_id = 16777238
            await gy.request(unknown_app)
            unknown_cmd = gy.ccr("ts;10", 1, 0)
            unknown_cmd.command_code = 271
            await gy.request(unknown_cmd)
            dwr = Message(C.CMD_DEVICE_WATCHDOG, 0, C.FLAG_REQUEST).add("Origin-Host", "pgw.test").add("Origin-Realm", "test")
            await gy.request(dwr)
            # A real-world frame with junk padding, sent by the client: tshark flags *that* one,
            # which shows the check below would see a problem in ours.
            raw = bytearray(bytes.fromhex((CAPTURES / "ccr_i_gy_data_godiameter.hex").read_text().strip()))
            raw[12:20] = (0x7777).to_bytes(4, "big") * 2
            gy.send_raw(bytes(raw))
            dpr = Message(C.CMD_DISCONNECT_PEER, 0, C.FLAG_REQUEST).add("Origin-Host", "pgw.test")
            dpr.add("Origin-Realm", "test").add("Disconnect-Cause", 0)
            await gy.request(dpr)
        ours = capture.fields("diameter.cmd.code", "diameter.flags.request", "diameter.Result-Code",
                              display_filter=f"diameter && tcp.srcport=={SERVER_PORT}")
        commands = [(int(row[0]), row[1]) for row in ours]
        for expected in ((257, "0"), (272, "0"), (258, "1"), (274, "1"), (280, "0"), (282, "0")):
            assert expected in commands, f"{expected} not decoded by tshark: {commands}"
        codes = {code for row in ours for code in row[2].split(",") if code}
        assert {"2001", "4012", "5030", "5005", "5004", "3007", "3001"} <= codes
        assert capture.expert_problems(from_port=SERVER_PORT) == []
        assert capture.expert_problems() != []        # the junk-padded client frame is flagged
    finally:
        await stop_rig(rig)
