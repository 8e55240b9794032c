"""evapi framing: the real 2015 captures, byte-split streams, raw JSON, corrupt input."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.kamailio.codec import BadFrame, EvapiCodec, Frame

# Copies of /work/shared/captures/kamailio (sources and sha256 in the .meta.json files).
CAPTURES = Path(__file__).parent / "captures"


def capture(name: str) -> bytes:
    return (CAPTURES / name).read_bytes()


def frames(items: list) -> list[dict]:
    assert all(isinstance(i, Frame) for i in items), items
    return [i.message for i in items]


def test_captured_auth_request_decodes_with_newlines_inside_json() -> None:
    codec = EvapiCodec()
    [msg] = frames(codec.feed(capture("evapi_cgr_auth_request.netstring")))
    assert msg["event"] == "CGR_AUTH_REQUEST"
    assert msg["tr_index"] == "35215" and msg["tr_label"] == "852281699"
    assert msg["cgr_account"] == "1001" and msg["cgr_setuptime"] == "1420142013"
    assert codec.buffered == 0 and codec.error is None


def test_three_captures_in_one_stream_split_at_every_byte() -> None:
    stream = b"".join(capture(n) for n in ("evapi_cgr_auth_request.netstring",
                                            "evapi_cgr_call_start.netstring",
                                            "evapi_cgr_call_end.netstring"))
    codec = EvapiCodec()
    got: list = []
    for i in range(len(stream)):
        got += codec.feed(stream[i:i + 1])
    names = [m["event"] for m in frames(got)]
    assert names == ["CGR_AUTH_REQUEST", "CGR_CALL_START", "CGR_CALL_END"]
    assert frames(got)[1]["h_entry"] == "2395" and frames(got)[2]["cgr_duration"] == "6"


def test_encode_is_a_netstring_kamailio_reads() -> None:
    wire = EvapiCodec().encode({"Event": "CGR_AUTH_REPLY", "MaxUsage": -1})
    assert wire == b'40:{"Event":"CGR_AUTH_REPLY","MaxUsage":-1},'


def test_bad_json_inside_a_good_netstring_is_skipped_and_stream_continues() -> None:
    codec = EvapiCodec()
    good = codec.encode({"event": "CGR_CALL_END", "OriginID": "x"})
    items = codec.feed(b"9:{not json,5:[1,2],3:\"a\"," + good)
    assert [type(i) for i in items] == [BadFrame, BadFrame, BadFrame, Frame]
    assert "invalid JSON" in items[0].reason and "not an object" in items[1].reason
    assert items[3].message["OriginID"] == "x" and codec.error is None


@pytest.mark.parametrize("junk", [b"abc:{}", b"12x:{}", b"1234567890123:{", b":{},", b"3:abcd"])
def test_bad_length_header_is_fatal_but_earlier_frames_survive(junk: bytes) -> None:
    codec = EvapiCodec()
    good = codec.encode({"event": "CGR_CALL_START"})
    items = codec.feed(good + junk)
    assert frames(items) == [{"event": "CGR_CALL_START"}]
    assert codec.error is not None
    assert codec.feed(good) == []  # dead until the connection is replaced


def test_oversized_length_is_fatal_without_buffering_it() -> None:
    codec = EvapiCodec(max_frame=1000)
    codec.feed(b"5000:")
    assert codec.error is not None and "exceeds" in str(codec.error)


def test_raw_json_mode_splits_concatenated_objects_with_braces_in_strings() -> None:
    codec = EvapiCodec(netstrings=False)
    a = {"event": "CGR_AUTH_REQUEST", "tr_index": "1", "Account": "a}b{\"c"}
    b = {"event": "CGR_DLG_LIST_REPLY", "jsonrpl_body": {"result": [{"call-id": "x"}]}}
    stream = orjson.dumps(a) + b"\n" + orjson.dumps(b)
    got: list = []
    for i in range(0, len(stream), 7):
        got += codec.feed(stream[i:i + 7])
    assert frames(got) == [a, b]
    assert codec.encode(a) == orjson.dumps(a)


def test_raw_json_mode_reports_junk_and_bad_objects_then_continues() -> None:
    codec = EvapiCodec(netstrings=False)
    items = codec.feed(b'garbage {"a":1,} {"event":"CGR_CALL_END"}')
    assert [type(i) for i in items] == [BadFrame, BadFrame, Frame]
    assert items[2].message == {"event": "CGR_CALL_END"}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=5), st.text(max_size=8), max_size=4), max_size=5),
       st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=10),
       st.booleans())
def test_any_split_of_any_messages_round_trips(messages: list[dict], cuts: list[int],
                                               netstrings: bool) -> None:
    codec = EvapiCodec(netstrings=netstrings)
    stream = b"".join(codec.encode(m) for m in messages)
    got: list = []
    pos = 0
    for cut in cuts * (len(stream) // max(sum(cuts), 1) + 1):
        got += codec.feed(stream[pos:pos + cut])
        pos += cut
    got += codec.feed(stream[pos:])
    assert frames(got) == messages
