"""`chargeway serve` CPU per call and authorization latency, driven by a fake Kamailio.

    python -m bench.kamailio.evapi_load --rate 300 --duration 10

kamailio_bench measures the whole SIP path, where sipp and Kamailio share the two cores
with chargeway and the peer's CPU is a noisy share of a busy box. This driver replaces
Kamailio and sipp with one asyncio evapi server that sends exactly what the shipped cfg
sends (CGR_AUTH_REQUEST, CGR_CALL_START 10 ms after the reply, CGR_CALL_END 1 s later)
at a fixed rate, and reports what chargeway spends: CPU per call of its event-loop
thread and of its SQLite writer, and how long each authorization took to be answered
(the part of the caller's setup time chargeway adds).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from bench.kamailio_bench import HZ, PORTS, REPO, chargeway_config, loop_status, wait_cdrs


def thread_ticks(pid: int) -> dict[int, tuple[int, int]]:
    """(utime, stime) per thread id."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[int(task.name)] = (int(fields[11]), int(fields[12]))
        except (OSError, ValueError, IndexError):
            continue
    return out


def frame(message: dict) -> bytes:
    payload = orjson.dumps(message)
    return b"%d:%s," % (len(payload), payload)


class FakeKamailio:
    """The evapi server side: one chargeway connects, calls are pushed at a fixed rate."""

    def __init__(self) -> None:
        self.writer: asyncio.StreamWriter | None = None
        self.connected = asyncio.Event()
        self.pending: dict[str, tuple[float, asyncio.Future]] = {}
        self.latencies: list[float] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.connected.set()
        buf = b""
        while data := await reader.read(65536):
            buf += data
            while (colon := buf.find(b":")) > 0:
                length = int(buf[:colon])
                if len(buf) < colon + length + 2:
                    break
                message = orjson.loads(buf[colon + 1:colon + 1 + length])
                buf = buf[colon + length + 2:]
                waiting = self.pending.pop(str(message.get("TransactionIndex")), None)
                if waiting is not None:
                    self.latencies.append((time.perf_counter() - waiting[0]) * 1000)
                    waiting[1].set_result(message)

    async def call(self, n: int) -> None:
        assert self.writer is not None
        origin, now = f"load-{n}@bench", f"{time.time():.6f}"
        common = {"cgr_flags": "*accounts", "Tenant": "cgrates.org", "RequestType": "*prepaid",
                  "OriginID": origin, "Account": "1001", "Destination": "1002", "SetupTime": now}
        reply = asyncio.get_running_loop().create_future()
        self.pending[str(n)] = (time.perf_counter(), reply)
        self.writer.write(frame({"event": "CGR_AUTH_REQUEST", "tr_index": str(n), "tr_label": "1",
                                 "reply_route": "CGR_SESSIONAUTH_REPLY", **common}))
        answer = await reply
        if answer.get("Error") or answer.get("MaxUsage") == 0:
            return
        await asyncio.sleep(0.01)
        dialog = {"h_entry": str(n % 4096), "h_id": str(n), "AnswerTime": f"{time.time():.6f}"}
        self.writer.write(frame({"event": "CGR_CALL_START", **dialog, **common}))
        await asyncio.sleep(1.0)
        self.writer.write(frame({"event": "CGR_CALL_END", **dialog, **common, "Usage": "1000ms"}))


async def drive(rate: int, duration: float, work: Path, switch_interval: float | None = None) -> int:
    kam = FakeKamailio()
    server = await asyncio.start_server(kam.serve, "127.0.0.1", PORTS.evapi)
    serve = ["serve", "--config", str(chargeway_config(work, status_api=True)), "--data-dir", str(work / "data")]
    # --switch-interval: what serve would do with a shorter GIL switch interval (the loop and
    # the SQLite writer thread wait up to that long for each other's GIL hand-over).
    cmd = [sys.executable, "-m", "chargeway", *serve] if switch_interval is None else [
        sys.executable, "-c", f"import runpy, sys; sys.setswitchinterval({switch_interval}); "
        f"sys.argv = ['chargeway', *{serve!r}]; runpy.run_module('chargeway', run_name='__main__')"]
    proc = subprocess.Popen(cmd, cwd=REPO,
                            stdout=open(work / "serve.log", "wb"), stderr=subprocess.STDOUT)
    try:
        await asyncio.wait_for(kam.connected.wait(), 60)
        await asyncio.sleep(0.5)
        for n in range(200):  # warm-up, not counted
            asyncio.ensure_future(kam.call(n))
            await asyncio.sleep(1 / rate)
        await asyncio.sleep(2.0)
        kam.latencies.clear()
        calls = int(rate * duration)
        before, t0 = thread_ticks(proc.pid), time.perf_counter()
        tasks = []
        for i in range(calls):
            tasks.append(asyncio.ensure_future(kam.call(1000 + i)))
            delay = t0 + (i + 1) / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await asyncio.gather(*tasks)
        after = thread_ticks(proc.pid)
        status = await asyncio.to_thread(loop_status)
        count, drain = await asyncio.to_thread(wait_cdrs, work, 200 + calls)
        report(before, after, calls, kam.latencies, count - 200, drain, time.perf_counter() - t0)
        wait = status.get("loop_wait_ms") or {}
        print(f"  chargeway loop wait ms (last minute, {wait.get('samples')} samples): "
              f"p50 {wait.get('p50')} p99 {wait.get('p99')} max {wait.get('max')}")
        return 0
    finally:
        proc.terminate()
        proc.wait(10)
        server.close()


def report(before: dict, after: dict, calls: int, lat: list[float], cdrs: int, drain: float,
           wall: float) -> None:
    rows = []
    for tid, (u1, s1) in after.items():
        u0, s0 = before.get(tid, (0, 0))
        rows.append(((u1 - u0), (s1 - s0), tid))
    rows.sort(reverse=True)
    per_call = lambda ticks: ticks / HZ / calls * 1e6  # noqa: E731
    lat.sort()
    print(f"calls {calls} in {wall:.1f} s; CDRs {cdrs} (drain {drain} s)")
    for name, (u, s, _) in zip(("loop", "writer"), rows):
        print(f"  {name:<6} CPU µs/call {per_call(u + s):7.0f}  (user {per_call(u):.0f}, sys {per_call(s):.0f})")
    print(f"  total  CPU µs/call {per_call(sum(u + s for u, s, _ in rows)):7.0f}")
    print(f"  auth reply ms: mean {statistics.fmean(lat):.3f} p50 {lat[len(lat) // 2]:.3f} "
          f"p95 {lat[int(len(lat) * 0.95)]:.3f} p99 {lat[int(len(lat) * 0.99)]:.3f} max {lat[-1]:.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=int, default=300)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--switch-interval", type=float, default=None, help="sys.setswitchinterval for serve (s)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="evapi-load-") as tmp:
        import uvloop
        return uvloop.run(drive(args.rate, args.duration, Path(tmp), args.switch_interval))


if __name__ == "__main__":
    sys.exit(main())
