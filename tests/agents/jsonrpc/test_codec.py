"""The streaming decoder finds JSON-RPC values however TCP slices them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.jsonrpc.codec import (
    BadValue,
    JsonStreamDecoder,
    MessageTooLarge,
    ProtocolError,
    Request,
    Response,
    classify,
    encode_request,
    encode_response,
)

AUTH = (b'{"method":"SessionSv1.AuthorizeEvent","id":1,"params":[{"GetMaxUsage":true,'
        b'"Tenant":"cgrates.org","ID":"ev1","Event":{"Account":"1001","Destination":"1002",'
        b'"Note":"brace } and quote \\" and backslash \\\\ in a string {[","Usage":"3h"}}]}')


def test_one_value_per_read() -> None:
    dec = JsonStreamDecoder()
    [value] = dec.feed(AUTH)
    assert value["method"] == "SessionSv1.AuthorizeEvent"
    assert value["params"][0]["Event"]["Note"] == 'brace } and quote " and backslash \\ in a string {['
    assert dec.buffered == 0


def test_value_split_at_every_byte() -> None:
    dec = JsonStreamDecoder()
    out = []
    for i in range(len(AUTH)):
        out.extend(dec.feed(AUTH[i:i + 1]))
    assert len(out) == 1 and out[0]["params"][0]["Event"]["Usage"] == "3h"


def test_several_values_in_one_read_without_newlines() -> None:
    dec = JsonStreamDecoder()
    values = dec.feed(AUTH + AUTH + b"\n" + b'{"id":7,"result":"OK","error":null}  ')
    assert [v.get("id") for v in values] == [1, 1, 7]


def test_value_boundary_inside_read() -> None:
    dec = JsonStreamDecoder()
    assert dec.feed(AUTH + AUTH[:10]) and dec.buffered == 10
    [second] = dec.feed(AUTH[10:])
    assert second["id"] == 1


def test_bad_value_is_reported_and_stream_continues() -> None:
    dec = JsonStreamDecoder()
    values = dec.feed(b'{"method": , "id": 2}' + AUTH)
    assert isinstance(values[0], BadValue)
    assert values[1]["id"] == 1


def test_garbage_between_values_is_a_protocol_error() -> None:
    dec = JsonStreamDecoder()
    with pytest.raises(ProtocolError):
        dec.feed(b"hello world")


def test_oversized_message_raises_before_completion() -> None:
    dec = JsonStreamDecoder(max_bytes=1000)
    dec.feed(b'{"method":"X","params":["')
    with pytest.raises(MessageTooLarge):
        dec.feed(b"a" * 2000)


def test_oversized_single_read_raises() -> None:
    dec = JsonStreamDecoder(max_bytes=100)
    with pytest.raises(MessageTooLarge):
        dec.feed(b'{"a":"' + b"x" * 200 + b'"}' + b'{"a":')


def test_classify_requests_and_responses() -> None:
    req = classify({"method": "AgentV1.DisconnectSession", "params": [{}], "id": 3})
    assert isinstance(req, Request) and req.id == 3
    resp = classify({"id": 3, "result": None, "error": "NOT_IMPLEMENTED"})
    assert isinstance(resp, Response) and resp.error == "NOT_IMPLEMENTED"
    assert isinstance(classify([1, 2]), BadValue)
    assert isinstance(classify({"foo": 1}), BadValue)


def test_encoders_match_cgrates_wire_shape() -> None:
    assert encode_response(1, {"Cost": Decimal("0.7002")}, None) == \
        b'{"id":1,"result":{"Cost":0.7002},"error":null}\n'
    assert encode_response("a", "ignored", "NOT_FOUND") == b'{"id":"a","result":null,"error":"NOT_FOUND"}\n'
    assert orjson.loads(encode_request("AgentV1.GetActiveSessionIDs", "", 5)) == \
        {"method": "AgentV1.GetActiveSessionIDs", "params": [""], "id": 5}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.dictionaries(st.text(max_size=8), st.one_of(st.text(max_size=12), st.integers(min_value=-2**62, max_value=2**62),
             st.lists(st.text(max_size=4), max_size=3)), max_size=5), min_size=1, max_size=6),
    st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=50),
)
def test_any_slicing_yields_the_same_values(values: list[dict], cuts: list[int]) -> None:
    stream = b"".join(orjson.dumps(v) + (b"\n" if i % 2 else b"") for i, v in enumerate(values))
    dec = JsonStreamDecoder()
    out, pos, i = [], 0, 0
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        out.extend(dec.feed(stream[pos:pos + step]))
        pos += step
        i += 1
    assert out == values


CAPTURES = Path(__file__).parent / "captures"
CAPTURED = ["cgrates_module_getmaxusage.json", "cgrates_module_initiatesession.json",
            "cgrates_module_terminatesession.json", "cgrates_disconnectsession_to_opensips.json"]


def test_opensips_captures_parse_whole_split_and_back_to_back() -> None:
    frames = [(CAPTURES / name).read_bytes() for name in CAPTURED]
    stream = b"".join(frames)  # OpenSIPS writes one object per write, no separator
    whole = JsonStreamDecoder().feed(stream)
    dec, split = JsonStreamDecoder(), []
    for i in range(0, len(stream), 7):
        split.extend(dec.feed(stream[i:i + 7]))
    assert whole == split and len(whole) == 4
    kinds = [classify(v) for v in whole]
    assert [k.method for k in kinds] == ["SMGenericV1.GetMaxUsage", "SMGenericV1.InitiateSession",
                                         "SMGenericV1.TerminateSession", "SMGClientV1.DisconnectSession"]
    assert kinds[0].id == 1933966014 and kinds[1].params[0]["DialogID"] == 1504619733
    assert kinds[3].params[0]["Reason"] == "-INSUFFICIENT_FUNDS"
