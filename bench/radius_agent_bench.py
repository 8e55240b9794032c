"""The RADIUS agent's own CPU per Accounting-Request, without the engine or the network.

    .venv/bin/python -m bench.radius_agent_bench [--pairs N]

Start/Stop pairs shaped like bench/radload.py's go through the real server path
(client lookup, parse, Request Authenticator, duplicate cache, task), the real handler
and the real templates/radius.yaml, against an engine that answers at once; replies are
"sent" to a counting socket. It prints process CPU per request, so the agent + template
share of radius_bench's figure can be followed apart from the engine's. For a steady
count run it under ``valgrind --tool=callgrind`` and compare two sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import socket
import struct
import time
from pathlib import Path

from agents.radius.clients import ClientTable
from chargeway.app import tune_gc
from agents.radius.dedup import DuplicateCache
from agents.radius.dictionary import RadiusDictionary
from agents.radius.handler import RadiusHandler
from agents.radius.server import RadiusServer
from engine.reply import Reply
from engine.templating import TemplateRunner, load_template

ROOT = Path(__file__).resolve().parent.parent
SECRET = b"s3cr3t"
WINDOW = 256


def _attr(code: int, value: bytes) -> bytes:
    return bytes((code, len(value) + 2)) + value


def _attr_int(code: int, number: int) -> bytes:
    return struct.pack("!BBI", code, 6, number)


def accounting_request(identifier: int, stop: bool, session: int) -> bytes:
    """The attributes radload sends (Acct-Session-Time and octets on the Stop)."""
    user = b"u%04d" % (session % 100)
    attrs = b"".join((
        _attr_int(40, 2 if stop else 1), _attr(44, b"ab-%08x-%010d" % (7, session)), _attr(1, user),
        _attr(31, user), _attr_int(5, identifier), _attr(4, socket.inet_aton("127.0.0.1")),
        _attr(30, b"1002"), _attr_int(41, 0), _attr_int(45, 1), _attr_int(55, int(time.time())),
        (_attr_int(46, 60) + _attr_int(42, 123456) + _attr_int(43, 654321) + _attr_int(49, 1)) if stop else b"",
    ))
    header = struct.pack("!BBH", 4, identifier & 0xFF, 20 + len(attrs))
    return header + hashlib.md5(header + bytes(16) + attrs + SECRET).digest() + attrs


class InstantEngine:
    """Answers initiate/terminate at once (the agent's cost is what is measured)."""

    calls = 0

    async def initiate(self, fields: dict, opts: dict, link: object = None) -> Reply:
        self.calls += 1
        return Reply(max_usage=1_000_000_000)

    async def terminate(self, fields: dict, opts: dict) -> Reply:
        self.calls += 1
        return Reply()

    def active_sessions(self, match: dict) -> list:
        return []


class CountingSocket:
    sent = 0

    def sendto(self, data: bytes, addr: tuple) -> None:
        self.sent += 1


async def run(pairs: int) -> float:
    engine = InstantEngine()
    runner = TemplateRunner(load_template(ROOT / "templates" / "radius.yaml", agent="radius"), engine)
    clients = ClientTable.from_config([{"network": "127.0.0.0/8", "secret": SECRET.decode()}])
    handler = RadiusHandler(RadiusDictionary.load(), runner, engine, None)
    server = RadiusServer("acct", clients, handler, DuplicateCache(5))
    sock = CountingSocket()
    server._sock = sock                       # the receive path without a real socket
    server._loop = asyncio.get_running_loop()
    packets = [accounting_request(i & 0xFF, stop, i) for i in range(pairs) for stop in (False, True)]
    addr = ("127.0.0.1", 40000)
    tune_gc()                                 # the collector settings `chargeway serve` runs with
    start = time.process_time()
    for first in range(0, len(packets), WINDOW):
        for data in packets[first:first + WINDOW]:
            server._datagram(data, addr)
        while server._tasks:
            await asyncio.sleep(0)
    await asyncio.sleep(0)                    # the last answers' flush
    cpu = time.process_time() - start
    if sock.sent != len(packets):
        raise SystemExit(f"only {sock.sent} of {len(packets)} requests answered: {server.stats}")
    return cpu / len(packets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20_000)
    args = parser.parse_args()
    import uvloop

    per_request = uvloop.run(run(args.pairs))
    print(f"{2 * args.pairs} Accounting-Requests: {per_request * 1e6:.1f} us CPU per request "
          "(agent + template, instant engine)")


if __name__ == "__main__":
    main()
