"""Peer state machine: capabilities, watchdog, disconnect and the base protocol's errors."""

from __future__ import annotations

import struct

from tests.agents.diameter.diameter_helpers import ccr, cer, dpr, dwr

from agents.diameter import constants as C
from agents.diameter.codec import Message, decode_message
from agents.diameter.peer import (CLOSED, OPEN, AnswerReceived, CapabilitiesExchanged, ConnectionClosed,
                                  PeerConfig, PeerConnection, RequestReceived, RequestTimedOut)

CFG = PeerConfig(origin_host="localhost", origin_realm="test", watchdog_interval=30, origin_state_id=7)


def answers(conn: PeerConnection) -> list[Message]:
    data = conn.data_to_send()
    out = []
    while data:
        length = int.from_bytes(data[1:4], "big")
        out.append(decode_message(data[:length]))
        data = data[length:]
    return out


def opened(now: float = 0.0) -> PeerConnection:
    conn = PeerConnection(CFG, now)
    events = conn.receive_data(cer().encode(), now)
    assert isinstance(events[0], CapabilitiesExchanged)
    answers(conn)
    return conn


def test_cea_advertises_our_capabilities() -> None:
    conn = PeerConnection(CFG, 0.0)
    events = conn.receive_data(cer("kamailio.test").encode(), 0.0)
    assert events[0].origin_host == "kamailio.test" and conn.state == OPEN
    (cea,) = answers(conn)
    assert cea.command_code == 257 and not cea.is_request
    assert cea.get("Result-Code") == 2001
    assert cea.get("Origin-Host") == "localhost" and cea.get("Origin-Realm") == "test"
    assert cea.get("Host-IP-Address") == "127.0.0.1"
    assert cea.get("Product-Name") == "chargeway" and cea.get("Vendor-Id") == 0
    assert cea.get("Auth-Application-Id") == 4 and cea.get("Supported-Vendor-Id") == 10415
    vsai = cea.find("Vendor-Specific-Application-Id")
    assert vsai.get("Vendor-Id") == 10415 and vsai.get("Auth-Application-Id") == 4


def test_cer_split_across_reads_and_relay_peer_accepted() -> None:
    conn = PeerConnection(CFG, 0.0)
    raw = cer("fd.client.test", apps=(0xFFFFFFFF,)).encode()
    assert conn.receive_data(raw[:7], 0.0) == []
    assert isinstance(conn.receive_data(raw[7:], 0.0)[0], CapabilitiesExchanged)


def test_no_common_application_is_5010_and_closed() -> None:
    conn = PeerConnection(CFG, 0.0)
    events = conn.receive_data(cer(apps=(16777238,)).encode(), 0.0)
    (cea,) = answers(conn)
    assert cea.get("Result-Code") == C.DIAMETER_NO_COMMON_APPLICATION
    assert isinstance(events[-1], ConnectionClosed) and conn.state == CLOSED


def test_anything_before_cer_closes_the_connection() -> None:
    conn = PeerConnection(CFG, 0.0)
    events = conn.receive_data(ccr("s;1", 1, 0).encode(), 0.0)
    assert isinstance(events[0], ConnectionClosed) and conn.closed
    assert conn.data_to_send() == b""


def test_silent_connection_closed_after_cer_timeout() -> None:
    conn = PeerConnection(CFG, 100.0)
    assert conn.next_deadline() == 110.0
    assert conn.handle_timer(105.0) == []
    assert isinstance(conn.handle_timer(110.0)[0], ConnectionClosed)


def test_dwr_answered_with_dwa() -> None:
    conn = opened()
    req = dwr()
    conn.receive_data(req.encode(), 1.0)
    (dwa,) = answers(conn)
    assert dwa.command_code == 280 and dwa.get("Result-Code") == 2001
    assert (dwa.hop_by_hop, dwa.end_to_end) == (req.hop_by_hop, req.end_to_end)
    assert dwa.get("Origin-State-Id") == 7


def test_we_send_dwr_after_tw_idle_and_close_when_unanswered() -> None:
    conn = opened(0.0)
    assert conn.next_deadline() == 30.0
    conn.handle_timer(30.0)
    (our_dwr,) = answers(conn)
    assert our_dwr.command_code == 280 and our_dwr.is_request
    # The peer answers: the connection stays up.
    dwa = our_dwr.answer().add("Result-Code", 2001).add("Origin-Host", "pgw.test").add("Origin-Realm", "test")
    assert conn.receive_data(dwa.encode(), 31.0) == []
    assert conn.state == OPEN
    conn.handle_timer(61.0)
    answers(conn)
    events = conn.handle_timer(91.5)        # second DWR unanswered for Tw
    assert isinstance(events[-1], ConnectionClosed) and "watchdog" in events[-1].reason


def test_dpr_answered_then_closed() -> None:
    conn = opened()
    events = conn.receive_data(dpr().encode(), 1.0)
    (dpa,) = answers(conn)
    assert dpa.command_code == 282 and dpa.get("Result-Code") == 2001
    assert isinstance(events[0], ConnectionClosed) and conn.closed


def test_our_orderly_disconnect_waits_for_dpa() -> None:
    conn = opened()
    conn.disconnect(1.0)
    (our_dpr,) = answers(conn)
    assert our_dpr.command_code == 282 and our_dpr.get("Disconnect-Cause") == 0
    assert not conn.closed
    dpa = our_dpr.answer().add("Result-Code", 2001).add("Origin-Host", "pgw.test").add("Origin-Realm", "test")
    events = conn.receive_data(dpa.encode(), 2.0)
    assert isinstance(events[0], ConnectionClosed) and conn.closed


def test_unknown_application_3007_with_e_bit() -> None:
    conn = opened()
    req = ccr("s;1", 1, 0)
    req.application_id = 16777238
    conn.receive_data(req.encode(), 1.0)
    (ans,) = answers(conn)
    assert ans.get("Result-Code") == C.DIAMETER_APPLICATION_UNSUPPORTED and ans.is_error
    assert ans.get("Session-Id") == "s;1"


def test_unknown_command_3001() -> None:
    conn = opened()
    req = ccr("s;1", 1, 0)
    req.command_code = 271
    conn.receive_data(req.encode(), 1.0)
    (ans,) = answers(conn)
    assert ans.get("Result-Code") == C.DIAMETER_COMMAND_UNSUPPORTED and ans.is_error
    assert conn.state == OPEN


def test_missing_mandatory_avp_5005_names_it_in_failed_avp() -> None:
    conn = opened()
    req = ccr("s;1", 1, 0)
    req.avps = [a for a in req.avps if a.name != "CC-Request-Number"]
    conn.receive_data(req.encode(), 1.0)
    (ans,) = answers(conn)
    assert ans.get("Result-Code") == C.DIAMETER_MISSING_AVP
    failed = ans.find("Failed-AVP")
    assert [a.name for a in failed.value] == ["CC-Request-Number"]
    assert "CC-Request-Number" in ans.get("Error-Message")


def test_malformed_avp_5014_with_failed_avp_and_connection_survives() -> None:
    conn = opened()
    good = ccr("s;1", 1, 0).encode()
    # Corrupt CC-Request-Number (code 415) to a 5-byte Unsigned32.
    idx = good.index(struct.pack("!I", 415))
    bad = bytearray(good)
    bad[idx + 5:idx + 8] = (13).to_bytes(3, "big")
    bad[idx + 8:idx + 12] = b"\x00\x00\x00\x00"
    # Keep the message length consistent: the AVP now occupies 16 bytes (13 + padding).
    frame = bytes(bad[:idx + 12]) + b"\x00\x00\x00\x00" + bytes(bad[idx + 12:])
    frame = frame[:1] + len(frame).to_bytes(3, "big") + frame[4:]
    events = conn.receive_data(frame, 1.0)
    assert events == []
    (ans,) = answers(conn)
    assert ans.get("Result-Code") == C.DIAMETER_INVALID_AVP_LENGTH
    failed = ans.find("Failed-AVP").value          # raw: the AVP is malformed by definition
    assert failed[:4] == struct.pack("!I", 415) and int.from_bytes(failed[5:8], "big") == 13
    assert "CC-Request-Number" in ans.get("Error-Message")
    # Next request on the same connection still works.
    events = conn.receive_data(ccr("s;2", 1, 0).encode(), 2.0)
    assert isinstance(events[0], RequestReceived)


def test_unframable_stream_closes() -> None:
    conn = opened()
    events = conn.receive_data(b"\x01\x00\x00\x13" + b"\x80" * 16, 1.0)
    assert isinstance(events[-1], ConnectionClosed)
    (ans,) = answers(conn)
    assert ans.get("Result-Code") == C.DIAMETER_INVALID_MESSAGE_LENGTH


def test_answers_to_our_requests_are_correlated_and_timeouts_reported() -> None:
    conn = opened()
    rar = conn.new_request(C.CMD_RE_AUTH, 4, proxiable=True)
    rar.add("Session-Id", "s;1")
    conn.send_request(rar, 5.0)
    (sent,) = answers(conn)
    raa = sent.answer()
    raa.add("Session-Id", "s;1").add("Result-Code", 2001).add("Origin-Host", "pgw.test").add("Origin-Realm", "test")
    (event,) = conn.receive_data(raa.encode(), 6.0)
    assert isinstance(event, AnswerReceived) and event.request.command_code == 258
    asr = conn.new_request(C.CMD_ABORT_SESSION, 4).add("Session-Id", "s;2")
    conn.send_request(asr, 10.0)
    events = conn.handle_timer(15.0)
    assert any(isinstance(e, RequestTimedOut) and e.request.command_code == 274 for e in events)
