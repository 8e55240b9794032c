"""CPU of one Kamailio call inside chargeway, without sockets: agent + template + engine.

    python -m bench.kamailio.agent_cycle [--calls 3000] [--rounds 3] [--profile]

The real gateway (composition root, bench tariff plan, SQLite with synchronous=FULL,
serve's GC settings) with its Kamailio agent; frames go straight into
``KamailioAgent.frame`` and replies are encoded but not sent. Each call is what the
shipped cfg sends: CGR_AUTH_REQUEST (answered), CGR_CALL_START, CGR_CALL_END, ``--batch``
calls at a time so SQLite group commit behaves as under load. Prints CPU µs per call of
the event-loop thread and of the whole process (adds the SQLite writer), best of rounds:
a steadier figure than kamailio_bench's peer CPU share for the per-call work.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from agents.kamailio.codec import Frame
from bench.kamailio_bench import plan_dir
from chargeway.app import Gateway, tune_gc
from chargeway.config import load_config

from tests.agents.kamailio.fake_evapi import FakeEvapi


def messages(n: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    now = f"{time.time():.6f}"
    common = {"cgr_flags": "*accounts", "Tenant": "cgrates.org", "RequestType": "*prepaid",
              "OriginID": f"cyc-{n}@bench", "Account": "1001", "Destination": "1002", "SetupTime": now}
    dialog = {"h_entry": str(n % 4096), "h_id": str(n), "AnswerTime": now}
    return ({"event": "CGR_AUTH_REQUEST", "tr_index": str(n), "tr_label": "1",
             "reply_route": "CGR_SESSIONAUTH_REPLY", **common},
            {"event": "CGR_CALL_START", **dialog, **common},
            {"event": "CGR_CALL_END", **dialog, **common, "Usage": "1000ms"})


async def run(calls: int, rounds: int, batch: int, profile: bool) -> None:
    fake = await FakeEvapi().start()
    with tempfile.TemporaryDirectory(prefix="agent-cycle-") as tmp:
        work = Path(tmp)
        config = {
            "general": {"log_level": "warning"},
            "tariffplan": {"folder": str(plan_dir(work)), "load_on_start": "always"},
            "sessions": {"debit_interval": "30s"},
            "api": {"enabled": False}, "diameter": {"enabled": False}, "radius": {"enabled": False},
            "kamailio": {"enabled": True, "evapi_conns": [{"address": fake.address}], "debit_interval": "30s"},
        }
        (work / "c.yaml").write_text(yaml.safe_dump(config))
        gw = Gateway(load_config(work / "c.yaml", work / "data"))
        await gw.start()
        await fake.wait_connections(1)
        agent = gw.services["kamailio"].agent
        client = agent.links[0].client
        sent: list[bytes] = []
        codec = client._protocol.codec
        client.send = lambda message: sent.append(codec.encode(message))  # type: ignore[method-assign]
        tune_gc(os.environ.get("GCPOL", "timed"))
        n = 0

        async def one_round(count: int) -> tuple[float, float]:
            nonlocal n
            loop0, cpu0 = time.thread_time(), time.process_time()
            for first in range(n, n + count, batch):
                group = [messages(i) for i in range(first, min(first + batch, n + count))]
                for auth, _, _ in group:
                    agent.frame(client, Frame(auth, b""))
                for _, start, _ in group:
                    agent.frame(client, Frame(start, b""))
                while agent._tasks:
                    await asyncio.gather(*list(agent._tasks))
                for _, _, end in group:
                    agent.frame(client, Frame(end, b""))
                while agent._tasks:
                    await asyncio.gather(*list(agent._tasks))
            n += count
            return ((time.thread_time() - loop0) / count * 1e6, (time.process_time() - cpu0) / count * 1e6)

        await one_round(min(500, calls))  # warm-up: caches, first prices
        best = min([await one_round(calls) for _ in range(rounds)])
        print(f"calls/round {calls}, batch {batch}: CPU µs per call: loop {best[0]:.0f}, process {best[1]:.0f}")
        if profile:
            prof = cProfile.Profile()
            prof.enable()
            await one_round(calls)
            prof.disable()
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(30)
            print(out.getvalue())
        assert len(sent) == n and b'"MaxUsage":10800' in sent[-1], sent[-1]
        await gw.stop()
    await fake.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    import uvloop
    uvloop.run(run(args.calls, args.rounds, args.batch, args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
