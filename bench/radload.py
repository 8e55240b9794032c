#!/usr/bin/env python3
"""radload.py - closed-loop RADIUS accounting load generator (stdlib only, asyncio).

Adapted for chargeway from research/bench-kit/radload.py (written for this project): adds
--users (User-Name u0000..u<N-1>, so the accounts can exist in the engine) and --called.

Every "slot" of the window sends Accounting-Request Start, waits for the
Accounting-Response, sends the Stop of the same session, waits, then starts the next
session. So at most --window requests are outstanding at any time.
Request Authenticators are computed per RFC 2866 section 3
(MD5(Code+Identifier+Length+16 zero octets+Attributes+Secret)); every reply's
Response Authenticator (RFC 2866 / RFC 2865 section 3) is checked, bad ones are counted
and ignored. A request not answered within --timeout is counted as lost and the slot
starts a new session.

Identifiers are one octet, so the window is spread over ceil(window/256) UDP sockets
(one source port each), at most 256 outstanding per socket.

Bounded: stops issuing after --duration seconds or --count requests, whichever first,
then waits at most --timeout for the stragglers.

Output: a human summary on stderr and (with --json) one JSON line on stdout.
  radload.py --target 127.0.0.1:1813 --secret s3cr3t --window 64 --duration 10 --json
  radload.py --table results.jsonl          # pretty-print JSON lines collected by radius.sh
"""
import argparse
import asyncio
import hashlib
import json
import math
import os
import socket
import struct
import sys
import time
from array import array

ZERO16 = bytes(16)
md5 = hashlib.md5


def attr(t, v):
    return bytes((t, len(v) + 2)) + v


def attr_int(t, n):
    return struct.pack("!BBI", t, 6, n)


class Gen:
    def __init__(self, a):
        self.a = a
        host, port = a.target.rsplit(":", 1)
        self.addr = (host, int(port))
        self.secret = a.secret.encode()
        self.nsock = max(1, math.ceil(a.window / 256))
        per = math.ceil(a.window / self.nsock)
        self.slots = [s * 256 + i for s in range(self.nsock) for i in range(per)][: a.window]
        n = self.nsock * 256
        self.sent_at = array("d", bytes(8 * n))      # 0.0 = idle
        self.req_auth = [ZERO16] * n
        self.phase = bytearray(n)                     # 0 = Start outstanding, 1 = Stop outstanding
        self.sess = [0] * n
        self.next_sess = 0
        self.socks = []
        # counters
        self.sent = self.answered = self.lost = self.bad = self.unexpected = self.send_err = 0
        self.starts_ok = self.stops_ok = 0
        self.win_answered = 0
        self.lat = array("d")
        self.stop_issuing = False
        # fixed attribute blocks
        self.st_start = attr_int(40, 1)               # Acct-Status-Type = Start
        self.st_stop = attr_int(40, 2)                # Acct-Status-Type = Stop
        self.common = (attr(4, socket.inet_aton("127.0.0.1"))      # NAS-IP-Address
                       + attr(30, a.called.encode())                   # Called-Station-Id
                       + attr_int(41, 0)                             # Acct-Delay-Time
                       + attr_int(45, 1))                            # Acct-Authentic = RADIUS
        self.stop_extra = (attr_int(46, 60)                          # Acct-Session-Time
                           + attr_int(42, 123456)                    # Acct-Input-Octets
                           + attr_int(43, 654321)                    # Acct-Output-Octets
                           + attr_int(49, 1))                        # Acct-Terminate-Cause = User-Request

    def build(self, k, phase, sess, now):
        user = b"u%04d" % (sess % self.a.users)
        attrs = b"".join((
            self.st_stop if phase else self.st_start,
            attr(44, b"ab-%08x-%010d" % (self.a.run_id, sess)),     # Acct-Session-Id
            attr(1, user),                                           # User-Name
            attr(31, user),                                          # Calling-Station-Id
            attr_int(5, k),                                          # NAS-Port
            self.common,
            attr_int(55, int(time.time())),                          # Event-Timestamp (wall clock:
            #   a NAS sends epoch seconds; ``now`` is perf_counter, which would date the call 1970)
            self.stop_extra if phase else b"",
        ))
        hdr = struct.pack("!BBH", 4, k & 0xFF, 20 + len(attrs))
        auth = md5(hdr + ZERO16 + attrs + self.secret).digest()
        return hdr + auth + attrs, auth

    def issue(self, k, phase, now):
        """Send the next request on slot k (phase 0 starts a new session)."""
        if phase == 0:
            if self.stop_issuing or self.sent >= self.a.count or now >= self.t_end:
                self.stop_issuing = True
                self.sent_at[k] = 0.0
                return
            self.sess[k] = self.next_sess
            self.next_sess += 1
        pkt, auth = self.build(k, phase, self.sess[k], now)
        self.phase[k] = phase
        self.req_auth[k] = auth
        self.sent_at[k] = now
        try:
            self.socks[k >> 8].send(pkt)
            self.sent += 1
        except (BlockingIOError, InterruptedError):
            self.send_err += 1          # will time out and be counted lost
            self.sent += 1

    def on_readable(self, si):
        sock = self.socks[si]
        base = si << 8
        secret = self.secret
        for _ in range(512):
            try:
                data = sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:
                self.unexpected += 1     # ICMP port unreachable: nobody listening
                continue
            now = time.perf_counter()
            if len(data) < 20:
                self.bad += 1
                continue
            k = base + data[1]
            t0 = self.sent_at[k]
            if t0 == 0.0:
                self.unexpected += 1     # late reply for a slot that gave up, or a duplicate
                continue
            if data[0] != 5 or md5(data[:4] + self.req_auth[k] + data[20:] + secret).digest() != data[4:20]:
                self.bad += 1            # wrong code or Response Authenticator (e.g. reply to an old request)
                continue
            self.answered += 1
            if now >= self.t_win0 and t0 >= self.t_win0:
                self.win_answered += 1
                self.lat.append(now - t0)
            if self.phase[k] == 0:
                self.starts_ok += 1
                self.issue(k, 1, now)
            else:
                self.stops_ok += 1
                self.issue(k, 0, now)

    async def sweeper(self):
        tmo = self.a.timeout
        while True:
            await asyncio.sleep(min(0.05, tmo / 4))
            now = time.perf_counter()
            busy = 0
            for k in self.slots:
                t0 = self.sent_at[k]
                if t0 == 0.0:
                    continue
                if now - t0 > tmo:
                    self.lost += 1
                    self.sent_at[k] = 0.0
                    self.issue(k, 0, now)       # give up on this session, start a new one
                    if self.sent_at[k] == 0.0:
                        continue
                busy += 1
            if busy == 0 and self.stop_issuing:
                return
            if now > self.t_end + tmo + 0.5:    # hard bound
                for k in self.slots:
                    if self.sent_at[k] != 0.0:
                        self.lost += 1
                        self.sent_at[k] = 0.0
                return

    async def run(self):
        loop = asyncio.get_running_loop()
        for si in range(self.nsock):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            s.bind((self.a.bind, 0))
            s.connect(self.addr)
            s.setblocking(False)
            self.socks.append(s)
            loop.add_reader(s.fileno(), self.on_readable, si)
        self.cpu0 = (proc_cpu(self.a.watch_pid), sum(os.times()[:2]))
        self.t0 = time.perf_counter()
        self.t_win0 = self.t0 + self.a.warmup
        self.t_end = self.t0 + self.a.warmup + self.a.duration
        # ramp the window up over <= 0.25 s (inside the warmup): a burst of 256 datagrams at t=0
        # overflows a default-sized server receive buffer (UdpRcvbufErrors) and would count as loss
        ramp = min(0.25, self.a.warmup / 2)
        for i, k in enumerate(self.slots):
            loop.call_later(ramp * i / len(self.slots), lambda k=k: self.issue(k, 0, time.perf_counter()))
        await self.sweeper()
        self.t_done = time.perf_counter()
        self.cpu1 = (proc_cpu(self.a.watch_pid), sum(os.times()[:2]))
        for s in self.socks:
            loop.remove_reader(s.fileno())
            s.close()

    def result(self):
        lat = sorted(self.lat)

        def pct(p):
            if not lat:
                return None
            return round(lat[min(len(lat) - 1, int(p / 100.0 * len(lat)))] * 1000, 3)

        win = max(1e-9, min(self.t_end, self.t_done) - self.t_win0)
        wall = max(1e-9, self.t_done - self.t0)
        srv = None
        if self.cpu0[0] is not None and self.cpu1[0] is not None:
            srv = round(100.0 * (self.cpu1[0] - self.cpu0[0]) / wall)
        return {
            "label": self.a.label or self.a.target, "target": self.a.target, "window": self.a.window,
            "duration_s": round(win, 2), "sent": self.sent, "answered": self.answered,
            "answered_per_s": round(self.win_answered / win), "sessions_per_s": round(self.win_answered / win / 2),
            "p50_ms": pct(50), "p99_ms": pct(99), "max_ms": round(lat[-1] * 1000, 3) if lat else None,
            "lost": self.lost, "bad_auth": self.bad, "unexpected": self.unexpected, "send_err": self.send_err,
            "starts_ok": self.starts_ok, "stops_ok": self.stops_ok,
            "srv_cpu_pct": srv, "gen_cpu_pct": round(100.0 * (self.cpu1[1] - self.cpu0[1]) / wall),
        }


def proc_cpu(pid):
    """utime+stime (s) of a whole process (all threads), or None."""
    if not pid:
        return None
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def table(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    cols = [("label", "target", "<"), ("window", "win", ">"), ("answered_per_s", "answered/s", ">"),
            ("sessions_per_s", "sess/s", ">"), ("p50_ms", "p50 ms", ">"), ("p99_ms", "p99 ms", ">"),
            ("max_ms", "max ms", ">"), ("sent", "sent", ">"), ("lost", "lost", ">"), ("bad_auth", "bad", ">"),
            ("srv_cpu_pct", "srv cpu%", ">"), ("gen_cpu_pct", "gen cpu%", ">")]
    w = {c: max(len(h), *(len(str(r.get(c))) for r in rows)) for c, h, _ in cols} if rows else {}
    print("| " + " | ".join(f"{h:{al}{w[c]}}" for c, h, al in cols) + " |")
    print("|" + "|".join("-" * (w[c] + 1) + (":" if al == ">" else "-") for c, h, al in cols) + "|")
    for r in rows:
        print("| " + " | ".join(f"{str(r.get(c)):{al}{w[c]}}" for c, h, al in cols) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="127.0.0.1:1813", help="HOST:PORT of the accounting server")
    ap.add_argument("--secret", default="s3cr3t")
    ap.add_argument("--window", type=int, default=64, help="outstanding requests (closed loop)")
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds (after warmup)")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds excluded from the stats")
    ap.add_argument("--count", type=int, default=5_000_000, help="hard cap on requests sent")
    ap.add_argument("--timeout", type=float, default=2.0, help="seconds before a request counts as lost")
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--users", type=int, default=10000, help="distinct User-Name values u0000..")
    ap.add_argument("--called", default="1002", help="Called-Station-Id")
    ap.add_argument("--label", default="")
    ap.add_argument("--watch-pid", type=int, default=0, help="server PID: report its CPU%% (all threads) during the run")
    ap.add_argument("--json", action="store_true", help="print one JSON result line on stdout")
    ap.add_argument("--table", metavar="JSONL", help="only pretty-print a JSON-lines result file")
    a = ap.parse_args()
    if a.table:
        table(a.table)
        return
    if not 1 <= a.window <= 65536:
        ap.error("--window must be 1..65536")
    a.duration = min(a.duration, 600.0)           # bounded, whatever the caller says
    a.run_id = int(time.time()) & 0xFFFFFFFF
    g = Gen(a)
    asyncio.run(g.run())
    r = g.result()
    print("%(label)s win=%(window)d: %(answered_per_s)d answered/s (%(sessions_per_s)d sessions/s), "
          "p50 %(p50_ms)s ms, p99 %(p99_ms)s ms, max %(max_ms)s ms; sent %(sent)d answered %(answered)d "
          "lost %(lost)d bad %(bad_auth)d unexpected %(unexpected)d" % r, file=sys.stderr)
    if a.json:
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
