"""The on-the-wire setup-time analyzer of the Kamailio benchmark, on a pcap built here."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from bench.kamailio.wire_setup import analyze

SIP, EVAPI, UAC, PEER = 45090, 48455, 45091, 51000


def frame(proto: int, sport: int, dport: int, payload: bytes, seq: int = 0) -> bytes:
    if proto == 17:
        l4 = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
    else:
        l4 = struct.pack(">HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x18, 65535, 0, 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0, 64, proto, 0,
                     b"\x7f\0\0\1", b"\x7f\0\0\1") + l4
    return b"\0" * 12 + b"\x08\x00" + ip


def pcap(path: Path, packets: list[tuple[float, bytes]]) -> None:
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for when, data in packets:
        sec, usec = int(when), round((when - int(when)) * 1e6)
        out += struct.pack("<IIII", sec, usec, len(data), len(data)) + data
    path.write_bytes(bytes(out))


def sip(first: str, call: str, cseq: str) -> bytes:
    return f"{first}\r\nVia: x\r\nCall-ID: {call}\r\nCSeq: {cseq}\r\n\r\n".encode()


def netstring(msg: dict) -> bytes:
    raw = json.dumps(msg).encode()
    return str(len(raw)).encode() + b":" + raw + b","


def test_setup_splits_into_kamailio_before_peer_answer_and_after(tmp_path):
    req = netstring({"event": "CGR_AUTH_REQUEST", "tr_index": "7", "tr_label": "9", "callid": "1-2@h"})
    rep = netstring({"Event": "CGR_AUTH_REPLY", "TransactionIndex": "7", "TransactionLabel": "9"})
    t = 1000.0
    pcap(tmp_path / "w.pcap", [
        (t, frame(17, UAC, SIP, sip("INVITE sip:1002@h SIP/2.0", "1-2@h", "1 INVITE"))),
        (t + 0.001, frame(6, EVAPI, PEER, req[:20], seq=100)),            # the request in two segments
        (t + 0.0012, frame(6, EVAPI, PEER, req[20:], seq=120)),
        (t + 0.0013, frame(6, EVAPI, PEER, req[20:], seq=120)),           # a retransmission: ignored
        (t + 0.0030, frame(6, PEER, EVAPI, rep, seq=5000)),
        (t + 0.0045, frame(17, SIP, UAC, sip("SIP/2.0 200 OK", "1-2@h", "1 INVITE"))),
        (t + 2.0, frame(17, SIP, UAC, sip("SIP/2.0 200 OK", "1-2@h", "2 BYE"))),  # not the setup
    ])
    out = analyze(tmp_path / "w.pcap", SIP, EVAPI, UAC)
    assert out["calls"] == 1
    assert out["setup"]["mean"] == 4.5
    assert out["before"]["mean"] == 1.2      # INVITE in -> the request's last byte leaves Kamailio
    assert out["peer"]["mean"] == 1.8
    assert out["after"]["mean"] == 1.5


def test_without_an_evapi_peer_only_the_total_is_reported(tmp_path):
    pcap(tmp_path / "w.pcap", [
        (5.0, frame(17, UAC, SIP, sip("INVITE sip:1002@h SIP/2.0", "a@h", "1 INVITE"))),
        (5.0004, frame(17, SIP, UAC, sip("SIP/2.0 200 OK", "a@h", "1 INVITE"))),
    ])
    out = analyze(tmp_path / "w.pcap", SIP, 0, UAC)
    assert out == {"calls": 1, "setup": {"mean": 0.4, "p50": 0.4, "p95": 0.4, "p99": 0.4}}
