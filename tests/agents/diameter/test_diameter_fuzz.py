"""Bad input: fuzzed, truncated and lying frames never crash the agent, get the right answer
or a close, and never disturb other peers.

CI runs a short seeded run; the full 100k run: ``DIAMETER_FUZZ_N=100000 pytest ...`` or
``python -m tests.agents.diameter.test_diameter_fuzz 100000``.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from decimal import Decimal
from pathlib import Path

from agents.diameter import constants as C
from agents.diameter.client import GyClient
from agents.diameter.codec import decode_message
from agents.diameter.credit_control import CcConfig, CreditControlServer, PeerInfo
from agents.diameter.mapping import TemplateMapper
from agents.diameter.peer import ConnectionClosed, PeerConfig, PeerConnection, RequestReceived
from engine.templating import load_template
from tests.agents.diameter.diameter_helpers import ccr, cer, dwr

from tests.agents.diameter.engine_rig import REPO, Rig

CFG = PeerConfig(origin_host="localhost", origin_realm="test")
CAPTURES = Path(__file__).parent / "captures"
SEEDS = [bytes.fromhex(p.read_text().strip()) for p in sorted(CAPTURES.glob("*.hex"))]
SEEDS += [
    ccr("f;1", 1, 0, msccs=[{"rg": 1, "rsu": {"CC-Total-Octets": 5}}, {"rg": 2, "usu": {"CC-Time": 3}}]).encode(),
    ccr("f;2", 4, 0, requested_action=3, context="32274@3gpp.org").encode(),
    dwr().encode(),
]


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One of: bit flips, a lying length field (message or AVP), truncation, random junk."""
    buf = bytearray(data)
    kind = rng.randrange(6)
    if kind == 0:
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    elif kind == 1:       # message length lies (but stays framable, a multiple of 4)
        length = max(20, (len(buf) + rng.choice((-8, -4, 4, 8, 64))) & ~3)
        buf[1:4] = length.to_bytes(3, "big")
    elif kind == 2:       # an AVP length runs past the end or below its header
        pos = 20
        if len(buf) > 28:
            pos = 20 + 4 * rng.randrange((len(buf) - 28) // 4 + 1)
        if pos + 8 <= len(buf):
            buf[pos + 5:pos + 8] = rng.choice((0, 3, 7, 11, 0xFFFFFF, len(buf))).to_bytes(3, "big")
    elif kind == 3:       # truncated frame with a consistent header length
        cut = max(20, (rng.randrange(20, len(buf) + 1)) & ~3)
        buf = buf[:cut]
        buf[1:4] = cut.to_bytes(3, "big")
    elif kind == 4:       # random bytes behind a valid-looking header
        body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 64) * 4))
        buf = bytearray(data[:20]) + body
        buf[1:4] = len(buf).to_bytes(3, "big")
    else:                 # pure junk
        buf = bytearray(rng.getrandbits(8) for _ in range(rng.randrange(1, 200)))
    return bytes(buf)


def opened() -> PeerConnection:
    conn = PeerConnection(CFG, 0.0)
    conn.receive_data(cer().encode(), 0.0)
    conn.data_to_send()
    return conn


def run_fuzz(count: int, seed: int = 6) -> dict[str, int]:
    """Feed ``count`` mutated frames; every answer we send must itself decode."""
    rng = random.Random(seed)
    stats = {"requests": 0, "closed": 0, "answers": 0}
    conn = opened()
    for i in range(count):
        frame = mutate(rng, rng.choice(SEEDS))
        events = conn.receive_data(frame, float(i))
        out = conn.data_to_send()
        while out:
            length = int.from_bytes(out[1:4], "big")
            answer = decode_message(out[:length])
            assert not answer.is_request or answer.command_code == C.CMD_DEVICE_WATCHDOG
            if answer.command_code != C.CMD_CAPABILITIES_EXCHANGE:
                assert answer.get("Result-Code") is not None
            stats["answers"] += 1
            out = out[length:]
        stats["requests"] += sum(isinstance(e, RequestReceived) for e in events)
        if conn.closed or any(isinstance(e, ConnectionClosed) for e in events):
            stats["closed"] += 1
            conn = opened()
        elif len(conn._in) > 0 and rng.random() < 0.2:
            conn = opened()       # a half frame would swallow the next ones: start over sometimes
    return stats


def test_seeded_fuzz_never_raises_and_always_answers_well_formed() -> None:
    count = int(os.environ.get("DIAMETER_FUZZ_N", "3000"))
    stats = run_fuzz(count)
    assert stats["answers"] > count // 10 and stats["closed"] > 0 and stats["requests"] > 0


async def test_fuzzed_ccrs_that_decode_go_through_the_template_without_crashing() -> None:
    template = load_template(REPO / "templates" / "diameter.yaml", agent="diameter")
    rng = random.Random(9)
    seed = ccr("f;3", 1, 0, msccs=[{"rg": 1, "rsu": {"CC-Total-Octets": 5}}]).encode()
    handled = 0
    conn = opened()
    for i in range(400):
        frame = bytearray(seed)
        for _ in range(rng.randint(1, 3)):
            pos = rng.randrange(20, len(frame))
            frame[pos] = rng.getrandbits(8)
        frame[1:4] = len(frame).to_bytes(3, "big")
        if conn.closed or conn._in:
            conn = opened()
        events = conn.receive_data(bytes(frame), float(i))
        conn.data_to_send()
        for event in events:
            if not isinstance(event, RequestReceived):
                continue
            # A fresh server each time: the duplicate cache would otherwise answer from memory.
            cc = CreditControlServer(TemplateMapper(template, None), CcConfig("localhost", "test"), lambda: 0.0)
            answer = await cc.handle(event.message, PeerInfo("pgw.test", "test"))
            assert answer.get("Result-Code") is not None
            decode_message(answer.encode())
            handled += 1
    assert handled > 50


def test_header_and_avp_lies_get_the_right_answer() -> None:
    conn = opened()
    good = ccr("f;4", 1, 0).encode()
    lying = bytearray(good)
    lying[20 + 5:20 + 8] = (len(good)).to_bytes(3, "big")     # Session-Id length past the end
    conn.receive_data(bytes(lying), 1.0)
    out = conn.data_to_send()
    answer = decode_message(out)
    assert answer.get("Result-Code") == C.DIAMETER_INVALID_AVP_LENGTH
    assert answer.get("Error-Message").startswith("Session-Id")
    # A version 2 header cannot be trusted for framing: 5011 and close.
    bad_version = b"\x02" + good[1:]
    events = conn.receive_data(bad_version, 2.0)
    assert decode_message(conn.data_to_send()).get("Result-Code") == C.DIAMETER_UNSUPPORTED_VERSION
    assert isinstance(events[-1], ConnectionClosed)


async def test_garbage_peer_is_closed_and_others_keep_being_served(rig: Rig) -> None:
    good = await rig.client("good.pgw")
    # A peer that sends a huge length, one that sends before CER, one that sends junk.
    for payload, cer_first in ((b"\x01\xff\xff\xf0" + b"\x00" * 60, True),
                               (ccr("evil;1", 1, 0).encode(), False),
                               (bytes(random.Random(1).getrandbits(8) for _ in range(300)), True)):
        bad = GyClient("bad.pgw")
        await bad.connect(rig.host, rig.port, cer=cer_first)
        bad.send_raw(payload)
        await asyncio.wait_for(bad.closed.wait(), 5)
        await bad.close()
    cca = await good.request(good.ccr("good;1", C.CC_EVENT, 0, context="32274@3gpp.org",
                                      msccs=[{"rsu": {"CC-Service-Specific-Units": 1}}]))
    assert cca.get("Result-Code") == 2001
    late = await rig.client("late.pgw")
    assert late.cea.get("Result-Code") == 2001


if __name__ == "__main__":
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    result = run_fuzz(total)
    print(f"{total} fuzzed frames: {result}")


async def test_a_flooding_peer_gets_too_busy_instead_of_unbounded_queues(rig: Rig) -> None:
    rig.service.server.max_in_flight = 2
    gy = await rig.client("flood.pgw")
    msgs = [gy.ccr(f"flood;{i}", C.CC_EVENT, 0, context="32274@3gpp.org",
                   msccs=[{"rsu": {"CC-Service-Specific-Units": 1}}]) for i in range(6)]
    answers = await asyncio.gather(*(gy.request(m) for m in msgs))
    codes = sorted(a.get("Result-Code") for a in answers)
    assert codes.count(C.DIAMETER_TOO_BUSY) >= 1 and codes.count(2001) >= 2
    assert all(a.is_error for a in answers if a.get("Result-Code") == C.DIAMETER_TOO_BUSY)
    # Exactly the accepted events were charged.
    assert rig.monetary("1001") == Decimal(10) - Decimal("0.01") * codes.count(2001)
