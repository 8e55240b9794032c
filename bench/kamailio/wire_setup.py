"""Call setup time measured on the wire, and where it goes.

Why not only sipp's number: sipp's per-call response time (``-trace_rtt``) comes out in
whole 4 ms steps here (0, 4, 8, ... ms), so a mean of it moves by a millisecond from run to
run on its own. A capture on the loopback gives each call's INVITE->200 at Kamailio to the
microsecond, and with the evapi stream in the same capture it splits that time into
  before   INVITE reaches Kamailio -> CGR_AUTH_REQUEST leaves it (Kamailio, and its Nagle
           wait for the peer's ACK of the previous message)
  peer     CGR_AUTH_REQUEST -> the peer's reply (chargeway's or the no-op peer's own time)
  after    reply -> 200 OK leaves Kamailio (resume, forward, the callee, relay)

    capture = WireCapture(work / "wire.pcap", sip_port, evapi_port).start(); ...; capture.stop()
    summary = analyze(work / "wire.pcap", sip_port, evapi_port, uac_port)

A plain pcap reader (Ethernet/IPv4, in-order TCP on loopback) keeps this free of tshark's
start-up cost; the capture itself needs tcpdump and the right to capture (root).
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CALL_ID = re.compile(rb"\r\nCall-ID: *([^\r\n]+)", re.IGNORECASE)
CSEQ_INVITE = re.compile(rb"\r\nCSeq: *\d+ INVITE\r\n", re.IGNORECASE)


class WireCapture:
    """tcpdump on lo for the SIP port and the evapi port, for the length of one load run."""

    def __init__(self, path: Path, sip_port: int, evapi_port: int) -> None:
        self.path = path
        self.filter = f"udp port {sip_port}" + (f" or tcp port {evapi_port}" if evapi_port else "")
        self.proc: subprocess.Popen | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("tcpdump") is not None

    def start(self) -> "WireCapture":
        self.proc = subprocess.Popen(["tcpdump", "-i", "lo", "-s", "0", "-U", "-w", str(self.path), self.filter],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 5
        while time.time() < deadline and not (self.path.exists() and self.path.stat().st_size > 0):
            time.sleep(0.05)  # tcpdump writes the pcap header once it is listening
        return self

    def stop(self) -> bool:
        if self.proc is None:
            return False
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.path.exists()


def packets(path: Path) -> Iterator[tuple[float, str, int, int, int, bytes]]:
    """(time, 'udp'|'tcp', src port, dst port, tcp seq or 0, payload) of each IPv4 packet."""
    data = path.read_bytes()
    if len(data) < 24:
        return
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    link_len = {1: 14, 0: 4, 113: 16}.get(linktype, 14)   # Ethernet, BSD loopback, Linux cooked
    record = struct.Struct(endian + "IIII")
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, caplen, _ = record.unpack_from(data, pos)
        pos += 16
        frame = data[pos:pos + caplen]
        pos += caplen
        ip = frame[link_len:]
        if len(ip) < 20 or ip[0] >> 4 != 4:
            continue
        ihl = (ip[0] & 15) * 4
        total = struct.unpack_from(">H", ip, 2)[0]
        proto = ip[9]
        body = ip[ihl:total]
        when = sec + frac / (1e9 if nano else 1e6)
        if proto == 17 and len(body) >= 8:
            sport, dport = struct.unpack_from(">HH", body)
            yield when, "udp", sport, dport, 0, body[8:]
        elif proto == 6 and len(body) >= 20:
            sport, dport, seq = struct.unpack_from(">HHI", body)
            off = (body[12] >> 4) * 4
            if len(body) > off:
                yield when, "tcp", sport, dport, seq, body[off:]


def _netstrings(buf: bytearray) -> Iterator[bytes]:
    while True:
        colon = buf.find(b":")
        if colon <= 0 or not buf[:colon].isdigit():
            if colon > 0:
                buf.clear()  # not netstrings (JSON-per-line mode): give up on this stream
            return
        size = int(buf[:colon])
        end = colon + 1 + size
        if len(buf) < end + 1:
            return
        yield bytes(buf[colon + 1:end])
        del buf[:end + 1]


def analyze(path: Path, sip_port: int, evapi_port: int, uac_port: int) -> dict[str, Any]:
    invite_in: dict[bytes, float] = {}
    ok_out: dict[bytes, float] = {}
    request_at: dict[tuple[str, str], tuple[bytes, float]] = {}
    auth: dict[bytes, tuple[float, float]] = {}    # call-id -> (request sent, reply received)
    streams: dict[bool, bytearray] = {True: bytearray(), False: bytearray()}
    next_seq: dict[bool, int] = {}
    for when, proto, sport, dport, seq, payload in packets(path):
        if proto == "udp":
            match = CALL_ID.search(payload)
            if not match:
                continue
            call = match.group(1).strip()
            if payload.startswith(b"INVITE ") and sport == uac_port and dport == sip_port:
                invite_in.setdefault(call, when)
            elif payload.startswith(b"SIP/2.0 200") and sport == sip_port and dport == uac_port \
                    and CSEQ_INVITE.search(payload):
                ok_out.setdefault(call, when)
            continue
        if not evapi_port or evapi_port not in (sport, dport):
            continue
        to_peer = sport == evapi_port   # Kamailio (evapi server) -> peer
        expected = next_seq.get(to_peer)
        if expected is not None and (seq - expected) & 0xFFFFFFFF > 0x7FFFFFFF:
            continue  # a retransmission of bytes already seen
        next_seq[to_peer] = (seq + len(payload)) & 0xFFFFFFFF
        buf = streams[to_peer]
        buf += payload
        for raw in _netstrings(buf):
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if to_peer and msg.get("event") == "CGR_AUTH_REQUEST":
                call = str(msg.get("callid") or msg.get("OriginID") or "").encode()
                request_at[(str(msg.get("tr_index")), str(msg.get("tr_label")))] = (call, when)
            elif not to_peer and "TransactionIndex" in msg:
                key = (str(msg.get("TransactionIndex")), str(msg.get("TransactionLabel")))
                if key in request_at:
                    call, sent = request_at.pop(key)
                    auth.setdefault(call, (sent, when))
    total = [ok_out[c] - t for c, t in invite_in.items() if c in ok_out]
    out: dict[str, Any] = {"calls": len(total), "setup": _stats(total)}
    if auth:
        out["before"] = _stats([auth[c][0] - t for c, t in invite_in.items() if c in auth])
        out["peer"] = _stats([r - s for s, r in auth.values()])
        out["after"] = _stats([ok_out[c] - auth[c][1] for c in auth if c in ok_out])
    return out


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    values.sort()
    n = len(values)
    return {"mean": round(1e3 * statistics.fmean(values), 3), "p50": round(1e3 * values[n // 2], 3),
            "p95": round(1e3 * values[int(n * 0.95)], 3), "p99": round(1e3 * values[int(n * 0.99)], 3)}
