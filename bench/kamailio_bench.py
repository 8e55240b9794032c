"""Calls per second through Kamailio: chargeway charging every call vs a no-op evapi peer vs cnxcc.

    python -m bench.kamailio_bench            # 1000 and 1500 CPS, 10 s of 1-second calls per rate
    python -m bench.kamailio_bench --quick    # CI-sized: 200 CPS for 4 s
    python -m bench.kamailio_bench --rates 1000,2000,3000 --duration 10

Same machine, same run, same SIP path (sipp UAC -> Kamailio -> sipp UAS, record-routed,
dialog-tracked, 1 s calls):
  noop       the shipped config/kamailio/kamailio.cfg, evapi answered by bench/kamailio/noop_peer.py
  chargeway  the same cfg, evapi answered by `chargeway serve` (authorize, initiate with a debit,
             terminate with settle and a CDR for every call; SQLite storage)
  cnxcc      bench/kamailio/cnxcc.cfg: the same routing with Kamailio's own cnxcc credit control
Reported per rate: achieved CPS, failed calls, retransmissions, INVITE->200 setup time (sipp rtd:
mean/p50/p95 ms) and CPU of Kamailio and of the peer. Targets: chargeway >= 80 % of the no-op
peer's CPS, and < 2 ms added setup time at 1,000 CPS.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.cdr_counts import cdr_counts  # noqa: E402
from chargeway.commands.console import call  # noqa: E402
from bench.kamailio.wire_setup import WireCapture, analyze  # noqa: E402
from tests.support.processes import wait_released  # noqa: E402
from tests.integration.kamailio.peers import (  # noqa: E402
    SIPP, SIPP_DIR, Kamailio, Ports, render, render_cfg, stop_proc, wait_udp,
)

PORTS = Ports(sip=45090, evapi=48455, jsonrpc=48456, uas=45092, uac=45091)
HZ = os.sysconf("SC_CLK_TCK")
WIRE = True  # capture each run on lo for the on-the-wire setup time (--no-wire turns it off)


@dataclass
class Row:
    mode: str
    rate: int
    calls: int = 0
    ok: int = 0
    failed: int = 0
    retrans: int = 0
    cps: float = 0.0
    setup_mean: float = 0.0
    setup_p50: float = 0.0
    setup_p95: float = 0.0
    kam_cpu: int = 0
    peer_cpu: int | None = None
    wire: dict | None = None     # INVITE->200 on the wire and its parts (bench/kamailio/wire_setup.py)
    cdrs: int | None = None      # chargeway only: CDRs committed for this rate's calls
    drain_s: float | None = None  # chargeway only: seconds after the last call until all were recorded
    steal: float | None = None   # % of the box's CPU time the hypervisor took during the load
    notes: list[str] = field(default_factory=list)


def cpu_times() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs from /proc/stat (0, 0 where there is none).

    Why: on a shared VM the hypervisor runs other guests on our cores; a run where it took
    a large share says more about the box than about the peer under test."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return (values[7] if len(values) > 7 else 0), sum(values[:8])


def ticks(pid: int, children: bool = True) -> int:
    """utime+stime of a process (and its direct children: Kamailio's workers)."""
    pids = [pid]
    if children:
        try:
            out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
            pids += [int(p) for p in out.split()]
        except OSError:
            pass
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total


def plan_dir(work: Path) -> Path:
    """A one-account tariff plan with credit for any run: 0.01/s to anyone."""
    tp = work / "tp"
    tp.mkdir(parents=True, exist_ok=True)
    files = {
        "Destinations.csv": "#Id,Prefix\nDST_ANY,1\n",
        "Rates.csv": "#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\nRT,0,0.01,1s,1s,0s\n",
        "DestinationRates.csv": "#Id,DestinationId,RatesTag,RoundingMethod,RoundingDecimals,MaxCost,"
                                "MaxCostStrategy\nDR,*any,RT,*up,4,0,\n",
        "RatingPlans.csv": "#Id,DestinationRatesId,TimingTag,Weight\nRP,DR,*any,10\n",
        "RatingProfiles.csv": "#Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject\n"
                              "cgrates.org,call,*any,2014-01-14T00:00:00Z,RP,\n",
        "Actions.csv": "#ActionsId,Action,ExtraParameters,Filter,BalanceId,BalanceType,Categories,"
                       "DestinationIds,RatingSubject,SharedGroup,ExpiryTime,TimingIds,Units,BalanceWeight,"
                       "BalanceBlocker,BalanceDisabled,Weight\n"
                       "TOPUP,*topup_reset,,,,*monetary,,*any,,,*unlimited,,1000000000,10,false,false,10\n",
        "ActionPlans.csv": "#Id,ActionsId,TimingId,Weight\nAP,TOPUP,*asap,10\n",
        "AccountActions.csv": "#Tenant,Account,ActionPlanId,ActionTriggersId,AllowNegative,Disabled\n"
                              "cgrates.org,1001,AP,,false,false\n",
        "Chargers.csv": "#Tenant,ID,FilterIDs,ActivationInterval,RunID,AttributeIDs,Weight\n"
                        "cgrates.org,DEFAULT,,,*default,*none,0\n",
    }
    for name, text in files.items():
        (tp / name).write_text(text)
    for name in ("Timings.csv", "ActionTriggers.csv"):
        (tp / name).write_text((REPO / "config" / "tariffplan" / name).read_text().splitlines()[0] + "\n")
    return tp


STATUS_API = ("127.0.0.1:48457", "127.0.0.1:48458", "127.0.0.1:48459")  # tcp, http, birpc


def chargeway_config(work: Path, *, status_api: bool = False) -> Path:
    """``status_api``: the JSON-RPC API on STATUS_API, for CoreSv1.Status (loop_status)."""
    api = ({"enabled": True, "tcp": STATUS_API[0], "http": STATUS_API[1], "birpc": STATUS_API[2]}
           if status_api else {"enabled": False})
    config = {
        "general": {"log_level": "warning"},
        "tariffplan": {"folder": str(plan_dir(work)), "load_on_start": "always"},
        "sessions": {"debit_interval": "30s"},
        "api": api, "diameter": {"enabled": False}, "radius": {"enabled": False},
        "kamailio": {"enabled": True, "evapi_conns": [{"address": f"127.0.0.1:{PORTS.evapi}"}],
                     "debit_interval": "30s"},
    }
    path = work / "chargeway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def loop_status(timeout: float = 5.0) -> dict:
    """chargeway's CoreSv1.Status over the raw JSON-RPC port of ``chargeway_config(status_api=True)``."""
    return call(STATUS_API[0], "CoreSv1.Status", {}, token=None, timeout=timeout) or {}


def wait_evapi_client(timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{PORTS.evapi} )"],
                             capture_output=True, text=True).stdout
        if out.strip():
            return True
        time.sleep(0.1)
    return False


def start_peer(mode: str, work: Path) -> subprocess.Popen | None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    if mode == "noop":
        cmd = [sys.executable, "-m", "bench.kamailio.noop_peer", f"127.0.0.1:{PORTS.evapi}"]
    elif mode == "chargeway":
        cmd = [sys.executable, "-m", "chargeway", "serve", "--config", str(chargeway_config(work)),
               "--data-dir", str(work / "data")]
    else:
        return None
    log = open(work / f"peer-{mode}.log", "wb")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    if not wait_evapi_client(60):
        stop_proc(proc)
        raise RuntimeError(f"{mode} peer did not connect:\n{(work / f'peer-{mode}.log').read_text()[-2000:]}")
    time.sleep(0.3)
    return proc


def parse_stat(path: Path) -> dict:
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter=";") if r.get("ElapsedTime(C)")]
    if not rows:
        return {}
    last = rows[-1]

    def secs(v: str) -> float:
        p = v.strip().split(":")
        frac = p[3] if len(p) > 3 else "0"
        return int(p[0]) * 3600 + int(p[1]) * 60 + int(p[2]) + int(frac) / 10 ** len(frac)

    total = int(last["OutgoingCall(C)"])
    t_sent = next((secs(r["ElapsedTime(C)"]) for r in rows if int(r["OutgoingCall(C)"]) >= total), 0.0)
    return {"calls": total, "ok": int(last["SuccessfulCall(C)"]), "failed": int(last["FailedCall(C)"]),
            "retrans": int(last.get("Retransmissions(C)") or 0),
            "cps": round(total / t_sent, 1) if t_sent else 0.0}


def parse_rtt(work: Path) -> list[float]:
    """sipp -trace_rtt: one row per call, response time in ms (sub-ms precision)."""
    values: list[float] = []
    for path in work.glob("uac_rr_*_rtt.csv"):
        for line in path.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 2:
                try:
                    values.append(float(parts[1]))
                except ValueError:
                    continue
        path.unlink()
    return values


def cdr_count(work: Path) -> int:
    """Charged CDRs chargeway has committed (see bench/cdr_counts.py)."""
    return cdr_counts(work / "data")[1]


def wait_cdrs(work: Path, expected: int, timeout: float = 60.0) -> tuple[int, float]:
    """Wait until ``expected`` CDRs are committed; returns (count, seconds waited)."""
    start = time.time()
    count = cdr_count(work)
    while count < expected and time.time() - start < timeout:
        time.sleep(0.2)
        count = cdr_count(work)
    return count, round(time.time() - start, 1)


def run_rate(mode: str, rate: int, duration: int, work: Path, kam_pid: int,
             peer: subprocess.Popen | None) -> Row:
    row = Row(mode, rate)
    stat = work / f"stat-{mode}-{rate}.csv"
    cdrs_before = cdr_count(work) if mode == "chargeway" else 0
    capture = WireCapture(work / f"wire-{mode}-{rate}.pcap", PORTS.sip, PORTS.evapi if peer else 0) \
        if WIRE and WireCapture.available() else None
    if capture is not None:
        capture.start()
    k0, p0, t0 = ticks(kam_pid), ticks(peer.pid, False) if peer else 0, time.time()
    steal0, total0 = cpu_times()
    proc = subprocess.run(
        [SIPP, f"127.0.0.1:{PORTS.sip}", "-sf", str(SIPP_DIR / "uac_rr.xml"), "-s", "1002",
         "-key", "caller", "1001", "-i", "127.0.0.1", "-p", str(PORTS.uac), "-r", str(rate),
         "-m", str(rate * duration), "-d", "1000", "-l", str(rate * 30), "-nostdin",
         "-default_behaviors", "all,-abortunexp", "-recv_timeout", "10000",
         "-timeout", f"{duration * 3 + 30}s", "-trace_stat", "-stf", str(stat), "-fd", "1",
         "-trace_rtt", "-rtt_freq", "100"],
        cwd=work, capture_output=True, timeout=duration * 3 + 60)
    elapsed = time.time() - t0
    steal1, total1 = cpu_times()
    if total1 > total0:
        row.steal = round(100 * (steal1 - steal0) / (total1 - total0), 1)
    if capture is not None and capture.stop():
        row.wire = analyze(capture.path, PORTS.sip, PORTS.evapi if peer else 0, PORTS.uac)
        capture.path.unlink()
    row.kam_cpu = round(100 * (ticks(kam_pid) - k0) / HZ / elapsed)
    if peer is not None:
        row.peer_cpu = round(100 * (ticks(peer.pid, False) - p0) / HZ / elapsed)
    stats = parse_stat(stat)
    for key, value in stats.items():
        setattr(row, key, value)
    if mode == "chargeway":
        # Every answered call must end up as a CDR; how long after the load that takes shows
        # whether call start/end processing keeps up with the call rate.
        count, row.drain_s = wait_cdrs(work, cdrs_before + row.ok)
        row.cdrs = count - cdrs_before
    rtt = parse_rtt(work)
    if rtt:
        rtt.sort()
        row.setup_mean = round(statistics.fmean(rtt), 3)
        row.setup_p50 = round(rtt[len(rtt) // 2], 3)
        row.setup_p95 = round(rtt[int(len(rtt) * 0.95)], 3)
    if proc.returncode not in (0, 1):
        row.notes.append(f"sipp rc {proc.returncode}")
    time.sleep(5)  # sipp UAS time-wait and Kamailio's transaction timers drain between rates
    return row


def run_mode(mode: str, rates: list[int], duration: int, base: Path) -> list[Row]:
    work = base / mode
    work.mkdir(parents=True, exist_ok=True)
    kam = Kamailio(work, PORTS)
    if mode == "cnxcc":
        kam.cfg_text = render(REPO / "bench" / "kamailio" / "cnxcc.cfg", {
            "SIP_LISTEN": f"udp:127.0.0.1:{PORTS.sip}", "SIP_ALIAS": f"127.0.0.1:{PORTS.sip}",
            "RUN_DIR": str(work / "run"), "CALLEE_URI": f"sip:127.0.0.1:{PORTS.uas}"})
        kam.ports = Ports(sip=PORTS.sip, evapi=0, jsonrpc=0, uas=PORTS.uas, uac=PORTS.uac)
    else:
        kam.cfg_text = render_cfg(PORTS, work / "run").replace("\ndebug=2\n", "\ndebug=1\n")
    (work / "run").mkdir(parents=True, exist_ok=True)
    uas_proc = subprocess.Popen([SIPP, "-sf", str(SIPP_DIR / "uas_rr.xml"), "-i", "127.0.0.1",
                                 "-p", str(PORTS.uas), "-nostdin"], cwd=work,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peer = None
    rows: list[Row] = []
    try:
        if not wait_udp(PORTS.uas):
            raise RuntimeError("sipp UAS did not start")
        kam.start()
        peer = start_peer(mode, work)
        for rate in rates:
            rows.append(run_rate(mode, rate, duration, work, kam.proc.pid, peer))
            print(format_row(rows[-1]), flush=True)
    finally:
        if peer is not None:
            stop_proc(peer)
        kam.stop()
        stop_proc(uas_proc)
        # Kamailio's main process exits before its children: the next mode's Kamailio must not
        # find the SIP port still bound (it then fails to start and the old children serve).
        wait_released(PORTS.sip)
    return rows


HEADER = ("| mode      | target cps | achieved cps |  calls |     ok | failed | retrans | setup mean ms "
          "| p50 ms | p95 ms | wire setup mean / p95 ms | wire: peer answer ms "
          "| kamailio cpu% | peer cpu% |   cdrs | cdr drain s | VM steal % |")


def wire_cells(r: Row) -> tuple[str, str]:
    w = r.wire or {}
    setup, peer = w.get("setup"), w.get("peer")
    return (f"{setup['mean']} / {setup['p95']}" if setup else "-", f"{peer['mean']}" if peer else "-")


def format_row(r: Row) -> str:
    peer = "-" if r.peer_cpu is None else str(r.peer_cpu)
    wire_setup, wire_peer = wire_cells(r)
    return (f"| {r.mode:<9} | {r.rate:>10} | {r.cps:>12} | {r.calls:>6} | {r.ok:>6} | {r.failed:>6} "
            f"| {r.retrans:>7} | {r.setup_mean:>13} | {r.setup_p50:>6} | {r.setup_p95:>6} "
            f"| {wire_setup:>24} | {wire_peer:>20} "
            f"| {r.kam_cpu:>13} | {peer:>9} | {'-' if r.cdrs is None else r.cdrs:>6} "
            f"| {'-' if r.drain_s is None else r.drain_s:>11} | {'-' if r.steal is None else r.steal:>10} |" + (f" {'; '.join(r.notes)}" if r.notes else ""))


def added_setup(noop: Row, cw: Row) -> tuple[float, float | None]:
    """Setup time chargeway adds over the no-op peer: by sipp's clock and on the wire (or None)."""
    wire_added = None
    if cw.wire and noop.wire and cw.wire.get("setup") and noop.wire.get("setup"):
        wire_added = cw.wire["setup"]["mean"] - noop.wire["setup"]["mean"]
    return cw.setup_mean - noop.setup_mean, wire_added


def valid_baseline(noop: Row) -> bool:
    """A baseline that itself failed or retransmitted calls was starved by the box, not
    slowed by its peer: comparing against it says nothing either way."""
    return not (noop.failed or noop.retrans)


def verdict(rows: list[Row]) -> list[str]:
    out = []
    by = {(r.mode, r.rate): r for r in rows}
    for rate in sorted({r.rate for r in rows}):
        noop, cw = by.get(("noop", rate)), by.get(("chargeway", rate))
        if not noop or not cw:
            continue
        ratio = cw.ok / noop.ok if noop.ok else 0.0
        ratio_cps = cw.cps / noop.cps if noop.cps else 0.0
        added, wire_added = added_setup(noop, cw)
        # Judged on both measures: sipp's (4 ms steps) and the capture's, when there is one.
        worst = max(added, wire_added if wire_added is not None else added)
        ok = (ratio_cps >= 0.8 and cw.failed == 0 and cw.cdrs == cw.ok
              and (rate < 1000 or worst < 2.0))
        wire_text = "" if wire_added is None else f" (on the wire {wire_added:+.3f} ms)"
        outcome = ("NO VERDICT: the no-op baseline failed or retransmitted calls (box disturbed)"
                   if not valid_baseline(noop) else
                   ("meets" if ok else "MISSES") + " target (>= 80 % CPS, < 2 ms added at 1,000 CPS)")
        out.append(f"{rate} CPS: chargeway {cw.cps} vs no-op {noop.cps} CPS ({ratio_cps:.0%}), "
                   f"completed calls {ratio:.0%} of no-op, CDRs {cw.cdrs}/{cw.ok}, added setup {added:+.3f} ms"
                   f"{wire_text} -> {outcome}")
    return out


def median_added(runs: list[list[Row]]) -> list[str]:
    """Per rate, the median added setup over the runs with a valid baseline: one disturbed run
    on a shared VM moves a mean or a best/worst figure, not the median of interleaved runs."""
    out = []
    for rate in sorted({r.rate for rows in runs for r in rows}):
        sipp, wire = [], []
        for rows in runs:
            by = {(r.mode, r.rate): r for r in rows}
            noop, cw = by.get(("noop", rate)), by.get(("chargeway", rate))
            if not noop or not cw or not valid_baseline(noop):
                continue
            added, wire_added = added_setup(noop, cw)
            sipp.append(added)
            if wire_added is not None:
                wire.append(wire_added)
        if sipp:
            wire_text = f", on the wire {statistics.median(wire):+.3f} ms" if wire else ""
            out.append(f"{rate} CPS: median added setup over {len(sipp)} runs with a valid baseline: "
                       f"{statistics.median(sipp):+.3f} ms (sipp){wire_text}")
    return out


LOOPBACK_ROUTE = ["local", "127.0.0.1", "dev", "lo", "table", "local", "proto", "kernel", "scope", "host",
                  "src", "127.0.0.1"]


@contextmanager
def quickack_route() -> Iterator[None]:
    """Linux sends ACKs at once on a route with ``quickack 1``: Kamailio's evapi (Nagle on) then
    never waits for the peer to read before sending its next message."""
    subprocess.run(["ip", "route", "change", *LOOPBACK_ROUTE, "quickack", "1"], check=True)
    try:
        yield
    finally:
        subprocess.run(["ip", "route", "change", *LOOPBACK_ROUTE, "quickack", "0"], check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="CI-sized run: 200 CPS for 4 s")
    ap.add_argument("--rates", default="1000,1500", help="comma-separated target CPS")
    ap.add_argument("--duration", type=int, default=10, help="seconds of load per rate")
    ap.add_argument("--modes", default="noop,chargeway,cnxcc")
    ap.add_argument("--workdir", default="", help="keep logs and sipp files here (default: a temp dir)")
    ap.add_argument("--no-wire", action="store_true", help="no tcpdump capture (wire setup columns stay empty)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run the modes this many times, interleaved, and report how often the target was met "
                         "(one run on a shared box is not a verdict)")
    ap.add_argument("--quickack-route", action="store_true",
                    help="for the run, set 'quickack 1' on the loopback route (root; restored after): "
                         "the host setting docs/kamailio.md suggests against Kamailio's Nagle")
    args = ap.parse_args()
    global WIRE
    WIRE = not args.no_wire
    if args.quickack_route:
        with quickack_route():
            return run(args)
    return run(args)


def run(args: argparse.Namespace) -> int:
    rates = [200] if args.quick else [int(r) for r in args.rates.split(",")]
    duration = 4 if args.quick else min(args.duration, 120)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    repeats = max(1, args.repeat)
    runs: list[list[Row]] = []
    with tempfile.TemporaryDirectory(prefix="kamailio-bench-") as tmp:
        base = Path(args.workdir) if args.workdir else Path(tmp)
        print(HEADER, flush=True)
        for n in range(repeats):
            rows: list[Row] = []
            for mode in modes:
                rows += run_mode(mode, rates, duration, base / f"run{n}" if repeats > 1 else base)
            runs.append(rows)
    ok = True
    verdicts: list[list[str]] = []
    for n, rows in enumerate(runs):
        title = f" (run {n + 1} of {repeats})" if repeats > 1 else ""
        print(f"\n== Kamailio CPS ({os.cpu_count()} cores, {duration} s per rate, 1 s calls){title}")
        print(HEADER)
        for r in rows:
            print(format_row(r))
        lines = verdict(rows)
        verdicts.append(lines)
        for line in lines:
            print(line)
        ok = ok and all("meets" in line for line in lines) and not any(r.failed for r in rows)
    if repeats > 1:
        met = sum(all("meets" in line for line in lines) for lines in verdicts)
        void = sum(any("NO VERDICT" in line for line in lines) for lines in verdicts)
        print(f"\ntarget met in {met} of {repeats} runs" + (f" ({void} without a valid baseline)" if void else ""))
        for line in median_added(runs):
            print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
