"""API benchmark: session cycles/s over TCP JSON-RPC vs a bare asyncio JSON echo server,
and memory per active session.

    python -m bench.api_bench [--quick] [--clients N] [--seconds S] [--sessions M]

1. Starts ``python -m chargeway serve`` (API only, SQLite in a temp dir, a
   0.01/s tariff), gives each client its own funded prepaid account, and runs
   full AuthorizeEvent + InitiateSession + TerminateSession cycles from N
   concurrent clients for S seconds.
2. Starts a bare asyncio JSON echo server (orjson, one reply per request, same
   loop implementation) and runs the same request pattern against it.
   The ratio API/echo is the figure: how much of the raw transport rate survives
   real charging (rating, balance reservation, durable ledger, CDR).
3. Opens M prepaid sessions in an in-process SessionManager and reports memory
   per active session beyond the baseline (RSS and tracemalloc), plus the
   allocation sites that dominate.

Server and load generator are separate processes (2 cores: one each).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]

TARIFF = {
    "Destinations.csv": "#Id,Prefix\nDST_1002,1002\n",
    "Rates.csv": "#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\nRT_1CNT,0,0.01,1s,1s,0s\n",
    "DestinationRates.csv": "#Id,DestinationId,RatesTag,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy\n"
                            "DR_1002,DST_1002,RT_1CNT,*up,4,0,\n",
    "RatingPlans.csv": "#Id,DestinationRatesId,TimingTag,Weight\nRP_BENCH,DR_1002,*any,10\n",
    "RatingProfiles.csv": "#Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject\n"
                          "cgrates.org,call,*any,2014-01-14T00:00:00Z,RP_BENCH,\n",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_tariff(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in TARIFF.items():
        (folder / name).write_text(text)
    return folder


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# --- the load generator ---------------------------------------------------------------------

class Conn:
    """Minimal pipelined-capable client: one outstanding request per call here."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.next_id = 0

    async def call(self, method: str, param: Any) -> Any:
        self.next_id += 1
        self.writer.write(orjson.dumps({"method": method, "params": [param], "id": self.next_id}) + b"\n")
        line = await self.reader.readline()  # both servers end each reply with "\n"
        reply = orjson.loads(line)
        if reply.get("error"):
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]


def cycle_events(account: str, n: int) -> tuple[dict, dict, dict]:
    origin = f"{account}-{n}-{uuid.uuid4().hex[:8]}"
    ev = {"Tenant": "cgrates.org", "ToR": "*voice", "OriginID": origin, "OriginHost": "10.0.0.1",
          "RequestType": "*prepaid", "Account": account, "Destination": "1002",
          "SetupTime": "*now", "AnswerTime": "*now"}
    auth = {"GetMaxUsage": True, "Tenant": "cgrates.org", "ID": origin + "a", "Event": dict(ev, Usage="3h")}
    init = {"InitSession": True, "Tenant": "cgrates.org", "ID": origin + "i", "Event": ev}
    term = {"TerminateSession": True, "Tenant": "cgrates.org", "ID": origin + "t",
            "Event": dict(ev, Usage="10s")}
    return auth, init, term


async def run_cycles(port: int, clients: int, seconds: float, accounts: list[str]) -> dict[str, float]:
    conns = []
    for _ in range(clients):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        conns.append(Conn(reader, writer))
    latencies: list[float] = []
    stop_at = 0.0

    async def worker(conn: Conn, account: str) -> int:
        done = 0
        while time.perf_counter() < stop_at:
            auth, init, term = cycle_events(account, done)
            t0 = time.perf_counter()
            await conn.call("SessionSv1.AuthorizeEvent", auth)
            await conn.call("SessionSv1.InitiateSession", init)
            await conn.call("SessionSv1.TerminateSession", term)
            latencies.append(time.perf_counter() - t0)
            done += 1
        return done

    # warm-up (imports, caches, SQLite pages), then the measured run
    stop_at = time.perf_counter() + min(1.0, seconds / 4)
    await asyncio.gather(*(worker(c, a) for c, a in zip(conns, accounts)))
    latencies.clear()
    started = time.perf_counter()
    stop_at = started + seconds
    counts = await asyncio.gather(*(worker(c, a) for c, a in zip(conns, accounts)))
    elapsed = time.perf_counter() - started
    for conn in conns:
        conn.writer.close()
    latencies.sort()
    total = sum(counts)
    return {
        "cycles": total,
        "cycles_per_s": total / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else 0.0,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0.0,
    }


async def fund_accounts(port: int, accounts: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = Conn(reader, writer)
    for account in accounts:
        await conn.call("APIerSv1.SetBalance", {"Tenant": "cgrates.org", "Account": account,
                                               "BalanceType": "*monetary", "Value": 1_000_000,
                                               "Balance": {"ID": "main"}})
    writer.close()


def bench_api(tmp: Path, clients: int, seconds: float) -> dict[str, float]:
    import yaml

    port = free_port()
    config = {
        "general": {"log_level": "warning"},
        "tariffplan": {"folder": str(write_tariff(tmp / "tp")), "load_on_start": "if_empty"},
        "api": {"enabled": True, "tcp": f"127.0.0.1:{port}", "http": "", "birpc": ""},
        "diameter": {"enabled": False}, "radius": {"enabled": False}, "kamailio": {"enabled": False},
    }
    (tmp / "bench.yaml").write_text(yaml.safe_dump(config))
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "chargeway", "serve", "--config", str(tmp / "bench.yaml"),
                             "--data-dir", str(tmp / "data")], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_listening(port, proc)
        accounts = [f"bench{i}" for i in range(clients)]
        run_loop(fund_accounts(port, accounts))
        return run_loop(run_cycles(port, clients, seconds, accounts))
    except Exception:
        log.flush()
        sys.stderr.write((tmp / "server.log").read_text()[-3000:])
        raise
    finally:
        stop(proc)


def bench_echo(clients: int, seconds: float) -> dict[str, float]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.api_bench", "--echo-server", str(port)], cwd=ROOT)
    try:
        wait_listening(port, proc)
        return run_loop(run_cycles(port, clients, seconds, [f"echo{i}" for i in range(clients)]))
    finally:
        stop(proc)


# --- the bare echo server -------------------------------------------------------------------

class EchoProtocol(asyncio.Protocol):
    """Newline-delimited JSON in, ``{"id","result","error"}`` out: the transport floor."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        out = []
        for line in lines:
            if line:
                req = orjson.loads(line)
                out.append(orjson.dumps({"id": req["id"], "result": {"MaxUsage": 10800000000000},
                                         "error": None}) + b"\n")
        if out:
            self.transport.write(b"".join(out))  # type: ignore[attr-defined]


def serve_echo(port: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop_event = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop_event.set)
        server = await loop.create_server(EchoProtocol, "127.0.0.1", port)
        await stop_event.wait()
        server.close()

    run_loop(main())


def run_loop(coro: Any) -> Any:
    """Same loop implementation chargeway serve uses (uvloop when installed)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


# --- memory per active session -------------------------------------------------------------

# A debit loop still runs for every session, but no tick falls inside the measurement:
# otherwise 100k sessions x one debit per 30 s would be measured as well.
LONG_INTERVAL = {"*sessionsDebitInterval": "1h"}


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def open_sessions(tmp: Path, count: int, trace_sample: int) -> dict[str, Any]:
    from engine.accounts.service import AccountService
    from engine.event import EventDefaults
    from engine.rating.rater import Rater
    from engine.sessions.config import SessionsConfig
    from engine.sessions.manager import SessionManager
    from engine.storage.base import open_storage
    from engine.tariffplan.loader import load_tariffplan

    storage = open_storage(tmp / "mem", synchronous="NORMAL")
    await storage.open()
    rater = Rater(load_tariffplan(write_tariff(tmp / "tp-mem")))
    accounts = AccountService(storage, lambda: rater)
    await accounts.start()
    await accounts.set_balance("cgrates.org", "mem", "*monetary", 10**12, {"ID": "main"})
    manager = SessionManager(accounts, lambda: rater, storage, SessionsConfig.from_mapping({}), EventDefaults())
    await manager.start()

    def event(i: int) -> dict[str, Any]:
        return {"Tenant": "cgrates.org", "ToR": "*voice", "OriginID": f"mem-{i}", "OriginHost": "10.0.0.1",
                "RequestType": "*prepaid", "Account": "mem", "Destination": "1002", "AnswerTime": "*now"}

    async def open_range(start: int, stop_: int) -> None:
        batch = 5000
        for base in range(start, stop_, batch):
            replies = await asyncio.gather(*(manager.initiate(event(i), LONG_INTERVAL)
                                             for i in range(base, min(base + batch, stop_))))
            bad = [r for r in replies if r.error or not r.max_usage]
            if bad:
                raise RuntimeError(f"initiate failed: {bad[0]}")

    async def settle() -> None:
        """Drop the finished tasks of the last gather (the loop keeps them until its next one)."""
        await asyncio.sleep(0)
        await asyncio.gather(asyncio.sleep(0))
        gc.collect()

    # warm every code path once so its caches count as baseline
    await open_range(0, 200)
    await settle()
    base_rss = rss_bytes()
    tracemalloc.start(25)
    base_traced = tracemalloc.get_traced_memory()[0]
    first = tracemalloc.take_snapshot()
    started = time.perf_counter()
    await open_range(200, 200 + trace_sample)
    await settle()
    sample_snapshot = tracemalloc.take_snapshot()
    traced_per = (tracemalloc.get_traced_memory()[0] - base_traced) / trace_sample
    tracemalloc.stop()
    await open_range(200 + trace_sample, 200 + count)
    opened_in = time.perf_counter() - started
    await settle()
    active = len(manager.active_sessions())
    rss_per = (rss_bytes() - base_rss) / count
    top = owner_sites(sample_snapshot.compare_to(first, "traceback"), trace_sample)
    await manager.stop()
    await storage.close()
    return {
        "sessions": count, "active": active, "rss_per_session": rss_per, "traced_per_session": traced_per,
        "open_rate": count / opened_in,
        "top": top,
    }


def owner_sites(stats: list[Any], per: int, limit: int = 8) -> list[tuple[str, float]]:
    """Attribute each allocation to the innermost chargeway source line on its stack,
    so "asyncio/tasks.py" or "dataclasses" lines point at the engine code responsible."""
    sites: dict[str, float] = {}
    root = str(ROOT) + os.sep
    for stat in stats:
        frames = list(stat.traceback)  # oldest first
        where = next((f for f in reversed(frames) if f.filename.startswith(root)
                      and "/bench/" not in f.filename and "/.venv/" not in f.filename), None)
        key = f"{where.filename.removeprefix(root)}:{where.lineno}" if where else \
            f"(no chargeway frame) {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}"
        sites[key] = sites.get(key, 0.0) + stat.size_diff / per
    return sorted(sites.items(), key=lambda kv: -kv[1])[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short run for CI")
    parser.add_argument("--clients", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--sessions", type=int, default=None, help="sessions to hold open for the memory figure")
    parser.add_argument("--echo-server", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        serve_echo(args.echo_server)
        return
    clients = args.clients or (8 if args.quick else 32)
    seconds = args.seconds or (3.0 if args.quick else 15.0)
    sessions = args.sessions or (5_000 if args.quick else 100_000)
    tmp = Path(tempfile.mkdtemp(prefix="chargeway-api-bench-"))
    try:
        api = bench_api(tmp / "api", clients, seconds)
        echo = bench_echo(clients, seconds)
        print(f"session cycles (AuthorizeEvent+InitiateSession+TerminateSession), {clients} clients, {seconds:g}s")
        print(f"  {'server':<22}{'cycles/s':>10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
        for name, r in (("chargeway API", api), ("bare asyncio echo", echo)):
            print(f"  {name:<22}{r['cycles_per_s']:>10.0f}{3 * r['cycles_per_s']:>10.0f}"
                  f"{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}")
        print(f"  ratio API/echo: {api['cycles_per_s'] / echo['cycles_per_s']:.3f}")
        mem = run_loop(open_sessions(tmp, sessions, min(1_000 if args.quick else 5_000, sessions)))
        verdict = "OK" if mem["rss_per_session"] <= 2048 else "OVER the 2 KB target"
        print(f"memory per active prepaid session, {mem['active']} open "
              f"(opened at {mem['open_rate']:.0f}/s in-process):")
        print(f"  RSS {mem['rss_per_session']:.0f} B/session ({verdict}; includes SQLite page cache and "
              f"allocator slack, amortised better with more sessions), "
              f"tracemalloc {mem['traced_per_session']:.0f} B/session (Python objects only)")
        print("  top allocation sites per session (tracemalloc sample):")
        for where, size in mem["top"]:
            print(f"    {size:8.0f} B  {where}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
