"""Hostile and broken input against the running agent and the real engine.

Truncated packets, attribute lengths past the end, random datagrams (seeded; 2,000 in CI,
``RADIUS_FUZZ_PACKETS=100000`` for the full run) and a flood from an unknown address: the agent
keeps serving, nothing is charged, and a legitimate NAS is answered throughout.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import socket
import struct
from decimal import Decimal

import pytest

from agents.radius import codec
from tests.integration.radius.harness import SECRET, acct_attrs, balance, radclient, radius_service, start_gateway

pytestmark = pytest.mark.integration

FUZZ_PACKETS = int(os.environ.get("RADIUS_FUZZ_PACKETS", "2000"))


@pytest.fixture
async def gateway(tmp_path):
    gw = await start_gateway(tmp_path, {"1001": "10"},
                             clients=[{"network": "127.0.0.1/32", "secret": SECRET}])
    try:
        yield gw
    finally:
        await gw.stop()


def valid_start(session: str, ident: int) -> bytes:
    attrs = [(40, (1).to_bytes(4, "big")), (44, session.encode()), (1, b"1001"), (30, b"1002"),
             (4, socket.inet_aton("127.0.0.1"))]
    return codec.encode_request(codec.ACCOUNTING_REQUEST, ident, attrs, SECRET.encode())


def signed(code: int, ident: int, body: bytes, length: int | None = None) -> bytes:
    """A packet whose Request Authenticator is right for the bytes sent (so only the format is wrong)."""
    header = struct.pack("!BBH", code, ident, length if length is not None else 20 + len(body))
    return header + hashlib.md5(header + bytes(16) + body + SECRET.encode()).digest() + body


async def send_all(port: int, packets: list[bytes], bind: str = "127.0.0.1", pace: int = 200) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((bind, 0))
    try:
        for i, data in enumerate(packets):
            sock.sendto(data, ("127.0.0.1", port))
            if i % pace == pace - 1:
                await asyncio.sleep(0)         # let the agent drain; the kernel queue is finite
    finally:
        sock.close()


async def still_serving(gateway, session: str) -> None:
    port = radius_service(gateway).acct_address[1]
    result = await radclient(port, "acct", acct_attrs("Start", session))
    assert "Received Accounting-Response" in result.out, result.out


async def test_truncated_and_overlong_attributes_are_dropped(gateway):
    service = radius_service(gateway)
    good = valid_start("ok-0", 1)
    bad = [
        good[:10],                                              # shorter than the header
        good[:-3],                                              # length field beyond the datagram
        signed(4, 2, bytes((44, 40)) + b"abc"),                 # attribute length past the end
        signed(4, 3, bytes((44, 1)) + b"x"),                    # attribute length below 2
        signed(4, 4, bytes((1, 6)) + b"1001" + b"\x2c"),        # attribute header truncated
        signed(4, 5, bytes((26, 5, 0, 0, 0))),                  # VSA without a vendor id
        signed(4, 6, b"", length=5000),                         # length over 4096
    ]
    await send_all(service.acct_address[1], bad)
    await still_serving(gateway, "after-bad")
    stats = service.acct.stats
    assert stats.malformed == len(bad)
    assert stats.handler_errors == 0
    assert [s["OriginID"] for s in gateway.sessions.active_sessions()] == ["after-bad"]


async def test_random_datagrams_charge_nothing_and_never_stop_the_agent(gateway):
    service = radius_service(gateway)
    rng = random.Random(7)
    base = valid_start("seed", 9)
    packets = []
    for i in range(FUZZ_PACKETS):
        kind = i % 4
        if kind == 0:                       # pure noise
            data = rng.randbytes(rng.randrange(0, 200))
        elif kind == 1:                     # a valid packet with flipped bytes
            data = bytearray(base)
            for _ in range(rng.randrange(1, 6)):
                data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
            data = bytes(data)
        elif kind == 2:                     # plausible header, random attributes, right authenticator
            body = rng.randbytes(rng.randrange(0, 120))
            data = signed(rng.choice((1, 4, 4, 12, 40, 43)), rng.randrange(256), body)
        else:                               # random well-formed attributes, right authenticator
            body = b"".join(bytes((t, len(v) + 2)) + v for t, v in
                            ((rng.randrange(1, 256), rng.randbytes(rng.randrange(0, 20)))
                             for _ in range(rng.randrange(0, 8))))
            data = signed(4, rng.randrange(256), body)
        packets.append(data)
    await send_all(service.acct_address[1], packets)
    await send_all(service.auth_address[1], packets[: FUZZ_PACKETS // 4])
    await asyncio.sleep(0.5)
    await still_serving(gateway, "after-fuzz")
    assert service.acct.stats.handler_errors == 0 and service.auth.stats.handler_errors == 0
    # random attributes never made an Account + Acct-Session-Id pair that the engine charged
    assert balance(gateway, "1001") == Decimal("10") - Decimal("0.01")   # only after-fuzz's 1 s reservation
    assert {s["OriginID"] for s in gateway.sessions.active_sessions()} == {"after-fuzz"}


async def test_flood_from_unknown_address_does_not_starve_the_nas(gateway):
    service = radius_service(gateway)
    flood = [valid_start(f"flood-{i}", i % 256) for i in range(5000)]
    flooder = asyncio.create_task(send_all(service.acct_address[1], flood, bind="127.0.0.2", pace=500))
    await still_serving(gateway, "during-flood")
    await flooder
    await asyncio.sleep(0.2)
    assert service.acct.stats.unknown_client >= 4000           # the kernel may drop some under the flood
    assert [s["OriginID"] for s in gateway.sessions.active_sessions()] == ["during-flood"]
    assert balance(gateway, "1001") == Decimal("9.99")
