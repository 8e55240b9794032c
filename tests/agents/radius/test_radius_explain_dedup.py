"""``template explain`` loading of RADIUS messages, and the sans-IO duplicate cache."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agents.radius.dedup import DuplicateCache, Seen
from agents.radius.explain import load_message
from engine.templating import load_template
from engine.templating.explain import explain

ROOT = Path(__file__).resolve().parents[3]
CAPTURES = Path(__file__).parent / "captures"


def run_explain(path: Path):
    template = load_template(ROOT / "templates" / "radius.yaml", agent="radius")
    view, variables = load_message(path)
    outcome, _, error = asyncio.run(explain(template, view, variables))
    return view, variables, outcome, error


def test_explain_hex_capture_uses_sidecar_secret():
    view, variables, outcome, error = run_explain(CAPTURES / "access_request_rfc2865_7_1.hex")
    assert variables["*radReqType"] == "*radAuth" and variables["OriginHost"] == "192.168.1.16"
    assert view.first("User-Password") == "arctangent"
    assert error is None and outcome.processor_id == "VoiceAuth" and outcome.call == "authorize"
    assert outcome.request["Account"] == "nemo"


def test_explain_radclient_text_stop(tmp_path):
    message = tmp_path / "stop.txt"
    message.write_text('Acct-Status-Type = Stop\nAcct-Session-Id = "call-0001"\nUser-Name = "1001"\n'
                       'Called-Station-Id = "sip:1002@example.com", NAS-Identifier = "bras-1"\n'
                       'Acct-Session-Time = 65\nEvent-Timestamp = "Nov 22 2026 16:40:00 UTC"\n')
    _, variables, outcome, error = run_explain(message)
    assert error is None and outcome.processor_id == "VoiceStop" and outcome.call == "terminate"
    assert variables["OriginHost"] == "bras-1"
    assert outcome.request["Usage"] == 65 * 10**9
    assert outcome.request["Destination"] == "1002" and outcome.request["OriginID"] == "call-0001"


def test_duplicate_cache_states_and_expiry():
    cache = DuplicateCache(ttl=5)
    key = ("10.0.0.1", 1812, 7, b"A" * 16)
    assert cache.check(key, 0.0) == (Seen.NEW, b"")
    assert cache.check(key, 0.1) == (Seen.IN_FLIGHT, b"")
    cache.answered(key, b"reply", 0.2)
    assert cache.check(key, 1.0) == (Seen.ANSWERED, b"reply")
    assert cache.check(key, 5.3)[0] is Seen.NEW               # expired: a new request
    other = ("10.0.0.1", 1812, 7, b"B" * 16)                  # same id, new authenticator
    assert cache.check(other, 5.4)[0] is Seen.NEW
    cache.forget(other)
    assert cache.check(other, 5.5)[0] is Seen.NEW


def test_duplicate_cache_bounded():
    cache = DuplicateCache(ttl=100, max_entries=10)
    for i in range(50):
        key = ("h", 1, i % 256, bytes([i]) * 16)
        cache.check(key, float(i))
        cache.answered(key, b"r", float(i))
    assert len(cache) <= 11


def test_duplicate_cache_sweeps_expired_answers_but_keeps_live_ones():
    cache = DuplicateCache(ttl=5)
    old = ("10.0.0.1", 1813, 1, b"O" * 16)
    again = ("10.0.0.1", 1813, 2, b"A" * 16)
    for key in (old, again):
        cache.check(key, 0.0)
        cache.answered(key, b"r", 0.0)
    assert cache.check(again, 6.0)[0] is Seen.NEW             # expired, processed anew...
    cache.answered(again, b"r2", 6.0)                         # ...answered again; the sweep drops old
    cache.check(("10.0.0.1", 1813, 3, b"N" * 16), 6.1)        # still in flight
    cache.answered(("10.0.0.1", 1813, 4, b"M" * 16), b"x", 7.5)
    assert len(cache) == 3
    assert cache.check(again, 7.6) == (Seen.ANSWERED, b"r2")  # its stale expiry did not evict it
    assert cache.check(("10.0.0.1", 1813, 3, b"N" * 16), 7.7)[0] is Seen.IN_FLIGHT
