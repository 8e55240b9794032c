"""CPU of one Diameter CCR-U inside chargeway, without sockets: codec, peer, template, CCA.

    python -m bench.diameter_agent_cycle [--sessions 1000] [--rounds 3] [--batch 32] [--profile]

The real agent (``build_configs``, ``templates/diameter.yaml``, ``CreditControlServer``,
``DiameterServer`` and one ``_Connection`` on a fake transport): encoded CCR bytes go
into ``_Connection.data_received`` ``--batch`` messages per read, as a client with many
sessions outstanding delivers them, and the answers are collected from the transport's
``write``. Every session is opened with a CCR-I (not measured), then each round sends one
CCR-U per session; the bench prints CPU µs per CCR-U, best of ``--rounds``:

(a) the template in dry-run (no engine): the agent's own cost, as ``diameter_bench``'s
    "agent_dry_run" phase measures it through sockets;
(b) the real engine (``bench.engine_bench.open_engine``, SQLite synchronous=FULL) with the
    data plan of ``bench.diameter_bench.write_plan``: event-loop thread and whole process
    (adds the SQLite writer thread).

Encoding the requests happens before the clock starts. ``--profile`` prints a cProfile of
one more round of each phase (top 30 by own time).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agents.diameter import constants as C
from agents.diameter.codec import Message, decode_message
from agents.diameter.credit_control import CreditControlServer
from agents.diameter.link import DiameterLink
from agents.diameter.mapping import TemplateMapper
from agents.diameter.server import DiameterServer, _Connection
from agents.diameter.service import build_configs
from bench.diameter_bench import ccr, write_plan
from engine.templating import load_template

REPO = Path(__file__).resolve().parents[1]
SECTION = {"origin_host": "localhost", "origin_realm": "bench", "validity_time": 3600}


class FakeTransport:
    """What ``_Connection`` uses of an asyncio transport; keeps what is written."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def cer() -> bytes:
    msg = Message(C.CMD_CAPABILITIES_EXCHANGE, 0, C.FLAG_REQUEST, 1, 1)
    msg.add("Origin-Host", "pgw.bench").add("Origin-Realm", "bench").add("Host-IP-Address", "127.0.0.1")
    msg.add("Vendor-Id", 0).add("Product-Name", "bench").add("Auth-Application-Id", 4)
    return msg.encode()


def answers(data: bytes) -> list[Message]:
    out, pos = [], 0
    while pos < len(data):
        length = int.from_bytes(data[pos + 1:pos + 4], "big")
        out.append(decode_message(data[pos:pos + length]))
        pos += length
    return out


class Rig:
    """The agent as ``agents.diameter.service.start`` assembles it, minus the listeners."""

    def __init__(self, sessions: Any) -> None:
        peer_config, cc_config = build_configs(dict(SECTION))
        template = load_template(REPO / "templates" / "diameter.yaml", agent="diameter")
        self.mapper = TemplateMapper(template, sessions)
        self.cc = CreditControlServer(self.mapper, cc_config, clock=asyncio.get_running_loop().time)
        self.server = DiameterServer(peer_config, self.cc)
        self.mapper.link = DiameterLink(self.server)
        self.server.start_supervision()
        self.transport = FakeTransport()
        self.conn = _Connection(self.server)
        self.conn.connection_made(self.transport)  # type: ignore[arg-type]
        self.conn.data_received(cer())
        self.hbh = 1000
        self.numbers: dict[int, int] = {}

    def requests(self, first: int, count: int, kind: int, accounts: int, prefix: str) -> list[bytes]:
        """Encoded CCRs of sessions ``first..first+count`` (request numbers advance per session)."""
        out = []
        for i in range(first, first + count):
            number = 0 if kind == C.CC_INITIAL else self.numbers.get(i, 0) + 1
            self.numbers[i] = number
            self.hbh += 1
            out.append(ccr(f"{prefix};{i}", str(100000 + i % accounts), kind, number, self.hbh).encode())
        return out

    async def feed(self, wire: list[bytes], batch: int) -> list[bytes]:
        """All requests in reads of ``batch`` messages; returns what was written back."""
        conn, transport = self.conn, self.transport
        transport.chunks.clear()
        for first in range(0, len(wire), batch):
            conn.data_received(b"".join(wire[first:first + batch]))
            while conn.tasks:
                await asyncio.gather(*list(conn.tasks))
        await asyncio.sleep(0)      # the answers' flush (call_soon)
        return transport.chunks

    async def close(self) -> None:
        self.conn.connection_lost(None)
        await self.server.close(grace=0)


async def measure(rig: Rig, sessions: int, accounts: int, rounds: int, batch: int, prefix: str,
                  profile: bool) -> tuple[float, float, cProfile.Profile | None]:
    """Open ``sessions`` sessions, then best of ``rounds`` rounds of one CCR-U each:
    (loop-thread µs, process µs) per CCR-U."""
    written = await rig.feed(rig.requests(0, sessions, C.CC_INITIAL, accounts, prefix), batch)
    check(written, sessions)
    best = (float("inf"), float("inf"))
    for round_no in range(rounds + 1):        # round 0 warms caches up
        wire = rig.requests(0, sessions, C.CC_UPDATE, accounts, prefix)
        loop0, cpu0 = time.thread_time(), time.process_time()
        written = await rig.feed(wire, batch)
        spent = ((time.thread_time() - loop0) / sessions * 1e6, (time.process_time() - cpu0) / sessions * 1e6)
        check(written, sessions)
        if round_no:
            best = min(best, spent)
    prof = None
    if profile:
        wire = rig.requests(0, sessions, C.CC_UPDATE, accounts, prefix)
        prof = cProfile.Profile()
        prof.enable()
        written = await rig.feed(wire, batch)
        prof.disable()
        check(written, sessions)
    written = await rig.feed(rig.requests(0, sessions, C.CC_TERMINATION, accounts, prefix), batch)
    check(written, sessions)
    return best[0], best[1], prof


def check(written: list[bytes], expected: int) -> None:
    """Every request answered 2001 (a bench of error answers measures the wrong path)."""
    got = answers(b"".join(written))
    bad = [a for a in got if a.get("Result-Code") != C.DIAMETER_SUCCESS]
    if len(got) != expected or bad:
        raise SystemExit(f"diameter_agent_cycle: {len(got)} answers for {expected} requests, "
                         f"{len(bad)} not 2001: {bad[:1]}")


def print_profile(title: str, prof: cProfile.Profile | None) -> None:
    if prof is None:
        return
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(30)
    print(f"--- profile: {title}\n{out.getvalue()}")


async def run(args: argparse.Namespace) -> None:
    from bench.engine_bench import open_engine
    from chargeway.app import tune_gc

    tune_gc()
    rig = Rig(None)
    dry = await measure(rig, args.sessions, args.accounts, args.rounds, args.batch, "dry", args.profile)
    await rig.close()
    with tempfile.TemporaryDirectory(prefix="diameter-cycle-") as tmp:
        work = Path(tmp)
        write_plan(work / "plan", args.accounts)
        storage, _rater, _accounts, sessions = await open_engine(work, work / "plan")
        try:
            tune_gc()       # as `chargeway serve` does once the engine has started
            rig = Rig(sessions)
            full = await measure(rig, args.sessions, args.accounts, args.rounds, args.batch, "full",
                                 args.profile)
            await rig.close()
        finally:
            await sessions.stop()
            await storage.close()
    print(f"sessions {args.sessions}, batch {args.batch}, best of {args.rounds}: CPU µs per CCR-U: "
          f"(a) dry-run loop {dry[0]:.1f} process {dry[1]:.1f}; "
          f"(b) engine loop {full[0]:.1f} process {full[1]:.1f}")
    print_profile("dry-run", dry[2])
    print_profile("engine", full[2])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--accounts", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32, help="CCRs per read")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    import uvloop
    uvloop.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
