"""Codec: real captures round-trip, python-diameter reads our bytes (and we read its), strict lengths."""

from __future__ import annotations

import struct
from datetime import datetime, timezone
from pathlib import Path

import diameter.message as pydia
import pytest
import diameter.message.constants as pyc
from diameter.message.avp import Avp as PyAvp
from diameter.message.commands import CreditControlRequest

from agents.diameter import constants as C
from agents.diameter.codec import (AvpError, HeaderError, Message, decode_message, group,
                                   make_avp, message_length)
from agents.diameter.dictionary import BY_NAME, by_name

# Real frames (see each .meta.json for provenance), copied beside the tests so CI has them.
CAPTURES = Path(__file__).parent / "captures"


def capture(name: str) -> bytes:
    return bytes.fromhex((CAPTURES / name).read_text().strip())


def zero_padding(data: bytes) -> bytes:
    """The go-diameter fixture has junk in its padding; we always send zeros."""
    out = bytearray(data)
    msg = decode_message(data)

    def walk(start: int, end: int) -> None:
        pos = start
        while pos < end:
            code, word = struct.unpack_from("!II", data, pos)
            length = word & 0xFFFFFF
            head = 12 if word >> 24 & 0x80 else 8
            vendor = struct.unpack_from("!I", data, pos + 8)[0] if head == 12 else 0
            from agents.diameter.dictionary import lookup
            defn = lookup(code, vendor)
            if defn is not None and defn.type == "Grouped":
                walk(pos + head, pos + length)
            pad_end = pos + length + (-length & 3)
            out[pos + length:pad_end] = b"\x00" * (pad_end - pos - length)
            pos = pad_end

    walk(20, len(data))
    assert msg is not None
    return bytes(out)


@pytest.mark.parametrize("name", sorted(p.name for p in CAPTURES.glob("*.hex")))
def test_every_capture_round_trips_byte_for_byte(name: str) -> None:
    raw = capture(name)
    msg = decode_message(raw)
    assert msg.command_code == C.CMD_CREDIT_CONTROL and msg.is_request
    assert msg.encode() == zero_padding(raw)
    assert decode_message(msg.encode()).avps == msg.avps


def test_ccr_t_values_from_the_ggsn_capture() -> None:
    msg = decode_message(capture("ccr_t_gy_data_ggsn.hex"))
    assert msg.get("Session-Id") == "c0-172-25-37-3-ggsn971;1397107004;74"
    assert msg.get("CC-Request-Type") == C.CC_TERMINATION
    assert msg.get("CC-Request-Number") == 2
    subs = {s.get("Subscription-Id-Type"): s.get("Subscription-Id-Data") for s in msg.find_all("Subscription-Id")}
    assert subs == {0: "596696310364", 1: "340019702747508"}
    mscc = msg.find("Multiple-Services-Credit-Control")
    usu = mscc.find("Used-Service-Unit")
    assert (usu.get("CC-Total-Octets"), usu.get("CC-Input-Octets"), usu.get("CC-Output-Octets")) == (29223, 2661, 26562)
    assert mscc.get("Rating-Group") == 199
    assert msg.get("Event-Timestamp") == datetime(2014, 4, 15, 15, 58, 21, tzinfo=timezone.utc)
    # Binary data in a "UTF8String" 3GPP AVP is kept rather than refused.
    ps = msg.find("Service-Information").find("PS-Information")
    assert ps.get("3GPP-Session-Stop-Indicator") == b"\xff"


def test_godiameter_capture_vendor_avps_and_junk_padding() -> None:
    msg = decode_message(capture("ccr_i_gy_data_godiameter.hex"))
    assert msg.get("Origin-Host") == "client"
    assert msg.get("Service-Context-Id") == "302.220.8.32251@3gpp.org"
    ps = msg.find("Service-Information").find("PS-Information")
    assert ps.find("GGSN-Address").value == "127.0.0.1"


def test_gx_capture_application_id_is_kept() -> None:
    msg = decode_message(capture("ccr_i_gx_ggsn.hex"))
    assert msg.application_id == 16777238


def _our_ccr_u() -> Message:
    msg = Message(C.CMD_CREDIT_CONTROL, C.APP_CREDIT_CONTROL, C.FLAG_REQUEST | C.FLAG_PROXIABLE, 0x1234, 0x5678)
    msg.add("Session-Id", "pgw.test;1;2")
    msg.add("Origin-Host", "pgw.test").add("Origin-Realm", "test").add("Destination-Realm", "chargeway")
    msg.add("Auth-Application-Id", 4).add("Service-Context-Id", "32251@3gpp.org")
    msg.add("CC-Request-Type", "UPDATE_REQUEST").add("CC-Request-Number", 1)
    msg.avps.append(group("Subscription-Id", ("Subscription-Id-Type", "END_USER_E164"),
                          ("Subscription-Id-Data", "491700000001")))
    for rg, used in ((10, 750000), (20, 5_000_000_000)):
        msg.avps.append(group(
            "Multiple-Services-Credit-Control",
            group("Requested-Service-Unit", ("CC-Total-Octets", 1_000_000)),
            group("Used-Service-Unit", ("CC-Total-Octets", used), ("CC-Input-Octets", 1), ("CC-Output-Octets", 2)),
            ("Rating-Group", rg)))
    return msg


def test_python_diameter_decodes_our_ccr() -> None:
    raw = _our_ccr_u().encode()
    theirs = pydia.Message.from_bytes(raw)
    assert isinstance(theirs, CreditControlRequest)
    assert theirs.session_id == "pgw.test;1;2"
    assert theirs.cc_request_type == 2
    assert [m.rating_group for m in theirs.multiple_services_credit_control] == [10, 20]
    assert theirs.multiple_services_credit_control[1].used_service_unit[0].cc_total_octets == 5_000_000_000
    assert theirs.subscription_id[0].subscription_id_data == "491700000001"
    # Their re-encoding (their own flag choices) still decodes to the same values with ours.
    again = decode_message(theirs.as_bytes())
    assert [(a.name, a.value) for a in again.avps] == [(a.name, a.value) for a in _our_ccr_u().avps]


def test_we_decode_python_diameter_ccr() -> None:
    ccr = CreditControlRequest()
    ccr.header.hop_by_hop_identifier = 7
    ccr.header.end_to_end_identifier = 9
    ccr.session_id = "x;1"
    ccr.origin_host = b"h"
    ccr.origin_realm = b"r"
    ccr.destination_realm = b"d"
    ccr.auth_application_id = 4
    ccr.service_context_id = "32260@3gpp.org"
    ccr.cc_request_type = 1
    ccr.cc_request_number = 0
    ccr.add_subscription_id(subscription_id_type=1, subscription_id_data="001010123456789")
    # python-diameter 0.9's typed MSCC constructor mis-nests RSU/USU under an empty GSU,
    # so the group is built from its generic AVP API.
    rsu = PyAvp.new(pyc.AVP_REQUESTED_SERVICE_UNIT)
    rsu.value = [PyAvp.new(pyc.AVP_CC_TIME, value=60)]
    usu = PyAvp.new(pyc.AVP_USED_SERVICE_UNIT)
    usu.value = [PyAvp.new(pyc.AVP_CC_TIME, value=5)]
    mscc = PyAvp.new(pyc.AVP_MULTIPLE_SERVICES_CREDIT_CONTROL)
    mscc.value = [rsu, usu, PyAvp.new(pyc.AVP_RATING_GROUP, value=1)]
    ccr.append_avp(mscc)
    raw = ccr.as_bytes()
    ours = decode_message(raw)
    assert (ours.hop_by_hop, ours.end_to_end) == (7, 9)
    assert ours.get("Service-Context-Id") == "32260@3gpp.org"
    mscc = ours.find("Multiple-Services-Credit-Control")
    assert mscc.find("Requested-Service-Unit").get("CC-Time") == 60
    assert mscc.find("Used-Service-Unit").get("CC-Time") == 5
    assert ours.find("Subscription-Id").get("Subscription-Id-Data") == "001010123456789"
    assert ours.encode() == raw


def test_all_types_round_trip() -> None:
    msg = Message(C.CMD_CAPABILITIES_EXCHANGE, 0, C.FLAG_REQUEST, 1, 2)
    msg.add("Host-IP-Address", "127.0.0.1").add("Host-IP-Address", "::1")
    msg.add("Event-Timestamp", datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc))
    msg.add("Exponent", -3).add("CC-Total-Octets", 2**63).add("Vendor-Id", 10415)
    msg.add("Product-Name", "chargeway ünïcode").add("Class", b"\x00\xffbin")
    back = decode_message(msg.encode())
    assert [a.value for a in back.avps] == [a.value for a in msg.avps]
    assert back.find("Product-Name").flags == 0  # Product-Name is not mandatory
    tgpp = make_avp("3GPP-RAT-Type", b"\x06")
    assert tgpp.encode()[4] == 0xC0 and tgpp.encode()[8:12] == struct.pack("!I", 10415)


def test_table_is_consistent() -> None:
    assert by_name("Multiple-Services-Credit-Control").code == 456
    assert by_name("Service-Information").vendor == 10415
    assert by_name("Real-Called-Number").vendor == 2011
    for defn in BY_NAME.values():
        for member in defn.members:
            assert isinstance(member, str)
    assert by_name("Subscription-Id-Type").enum_value("END_USER_IMSI") == 1


# ------------------------------------------------------------------ strictness

def _frame(body: bytes, flags: int = 0x80, cmd: int = 272) -> bytes:
    return struct.pack("!II", (1 << 24) | (20 + len(body)), (flags << 24) | cmd) + struct.pack("!III", 4, 1, 2) + body


def test_avp_length_past_the_end_names_the_avp() -> None:
    body = struct.pack("!II", 263, (0x40 << 24) | 200) + b"abcd"   # Session-Id claims 200 bytes
    with pytest.raises(AvpError) as err:
        decode_message(_frame(body))
    assert err.value.result_code == C.DIAMETER_INVALID_AVP_LENGTH
    assert err.value.name == "Session-Id"
    assert err.value.failed_avp[:4] == struct.pack("!I", 263)


def test_fixed_size_type_with_wrong_length_is_5014_inside_group() -> None:
    bad_time = struct.pack("!II", 420, (0x40 << 24) | 11) + b"\x00\x00\x00" + b"\x00"  # CC-Time 3 bytes
    rsu = struct.pack("!II", 437, (0x40 << 24) | (8 + len(bad_time))) + bad_time
    mscc = struct.pack("!II", 456, (0x40 << 24) | (8 + len(rsu))) + rsu
    with pytest.raises(AvpError) as err:
        decode_message(_frame(mscc))
    assert err.value.name == "CC-Time"
    assert err.value.result_code == 5014
    # Failed-AVP is MSCC { RSU { CC-Time } } and itself decodes as far as the bad member.
    assert err.value.failed_avp[:4] == struct.pack("!I", 456)
    assert int.from_bytes(err.value.failed_avp[5:8], "big") == len(err.value.failed_avp)


def test_avp_length_below_header() -> None:
    body = struct.pack("!II", 263, (0x40 << 24) | 4)
    with pytest.raises(AvpError) as err:
        decode_message(_frame(body))
    assert err.value.result_code == 5014


def test_header_errors() -> None:
    with pytest.raises(HeaderError) as err:
        message_length(b"\x02\x00\x00\x14")
    assert err.value.result_code == C.DIAMETER_UNSUPPORTED_VERSION
    with pytest.raises(HeaderError):
        message_length(b"\x01\x00\x00\x13")
    with pytest.raises(HeaderError):
        decode_message(_frame(b"")[:19])
    with pytest.raises(HeaderError) as err:
        decode_message(_frame(b"", flags=0xA0))
    assert err.value.result_code == C.DIAMETER_INVALID_HDR_BITS


def test_identity_not_utf8_is_5004() -> None:
    body = struct.pack("!II", 264, (0x40 << 24) | 10) + b"\xff\xfe\x00\x00"
    with pytest.raises(AvpError) as err:
        decode_message(_frame(body))
    assert err.value.result_code == C.DIAMETER_INVALID_AVP_VALUE and err.value.name == "Origin-Host"


def test_unknown_avp_kept_raw() -> None:
    body = struct.pack("!III", 99999, (0xC0 << 24) | 14, 12345) + b"xy\x00\x00"
    msg = decode_message(_frame(body))
    assert msg.avps[0].value == b"xy" and msg.avps[0].vendor == 12345
    assert msg.encode() == _frame(body)


async def test_python_diameter_reads_the_cca_our_server_assembles() -> None:
    """Our CCA (several MSCCs, FUI, Validity-Time, Cost-Information) as an independent decoder sees it."""
    from agents.diameter.credit_control import CcConfig, CreditControlServer, PeerInfo, UnitOutcome
    from diameter.message.commands import CreditControlAnswer

    class Granting:
        async def map_unit(self, view, variables):
            rg = variables["RatingGroup"]
            tree = [("Multiple-Services-Credit-Control", [
                ("Granted-Service-Unit", [("CC-Total-Octets", 1000 * rg)]), ("Validity-Time", 60),
                *([("Final-Unit-Indication", [("Final-Unit-Action", "TERMINATE")])] if rg == 2 else [])]),
                ("Cost-Information", [("Unit-Value", "0.0123"), ("Currency-Code", 978)])]
            return UnitOutcome(tree, {"OriginID": f"x_{rg}"})

    cc = CreditControlServer(Granting(), CcConfig("localhost", "test"), lambda: 0.0)
    req = _our_ccr_u()
    req.avps = [a for a in req.avps if a.name != "Multiple-Services-Credit-Control"]
    for rg in (1, 2):
        req.avps.append(group("Multiple-Services-Credit-Control", ("Rating-Group", rg)))
    cca = await cc.handle(req, PeerInfo("pgw.test", "test"))
    theirs = pydia.Message.from_bytes(cca.encode())
    assert isinstance(theirs, CreditControlAnswer)
    assert theirs.result_code == 2001 and theirs.session_id == "pgw.test;1;2"
    msccs = theirs.multiple_services_credit_control
    assert [(m.rating_group, m.granted_service_unit.cc_total_octets, m.validity_time, m.result_code)
            for m in msccs] == [(1, 1000, 60, 2001), (2, 2000, 60, 2001)]
    assert msccs[1].final_unit_indication.final_unit_action == 0
    assert (theirs.cost_information.unit_value.value_digits, theirs.cost_information.unit_value.exponent) == (123, -4)


def test_repeated_avps_are_decoded_once_and_values_never_leak_between_messages() -> None:
    from agents.diameter import codec
    from tests.agents.diameter.diameter_helpers import ccr

    first = decode_message(ccr("s;1", 2, 1, subscriber="491700", msccs=[{"rg": 1, "usu": {"CC-Time": 5}}]).encode())
    second = decode_message(ccr("s;1", 2, 2, subscriber="491700", msccs=[{"rg": 1, "usu": {"CC-Time": 9}}]).encode())
    # Same bytes: the same AVP object (Session-Id, the whole Subscription-Id group).
    assert first.find("Session-Id") is second.find("Session-Id")
    assert first.find("Subscription-Id") is second.find("Subscription-Id")
    # Different bytes: each message has its own values.
    assert (first.get("CC-Request-Number"), second.get("CC-Request-Number")) == (1, 2)
    usu = [m.find("Multiple-Services-Credit-Control").find("Used-Service-Unit").get("CC-Time") for m in (first, second)]
    assert usu == [5, 9]
    # The template views: the shared group's dict is made once, each unit reads its own values.
    from agents.diameter.view import ccr_view, unit_avps
    views = [ccr_view(m, unit_avps(m)[0]) for m in (first, second)]
    assert views[0].data["Subscription-Id"] is views[1].data["Subscription-Id"]
    path = ("Multiple-Services-Credit-Control", "Used-Service-Unit", "CC-Time")
    assert [v.values(path) for v in views] == [[5], [9]]
    # Bounded: many distinct AVPs never grow the table past its limit.
    for n in range(codec._SHARED_MAX + 10):
        decode_message(ccr(f"s;{n}", 2, n).encode())
    assert len(codec._SHARED) <= codec._SHARED_MAX


def test_decoded_avps_echo_their_own_bytes_only_when_re_encoding_gives_them() -> None:
    """Session-Id echoed in a CCA is the request's bytes (junk padding zeroed); an AVP whose
    header would be re-encoded differently (V bit with vendor 0) is encoded as before."""
    from agents.diameter.codec import encode_avp

    sid = struct.pack("!II", 263, (0x40 << 24) | 13) + b"s;1;2" + b"\xaa\xbb\xcc"     # junk padding
    odd = struct.pack("!III", 415, (0xC0 << 24) | 16, 0) + struct.pack("!I", 7)      # V bit, vendor 0
    msg = decode_message(_frame(sid + odd))
    session_id, number = msg.avps
    assert session_id.wire == sid[:13] + b"\x00\x00\x00" and encode_avp(session_id) == session_id.wire
    assert number.wire is None and number.value == 7
    assert encode_avp(number) == struct.pack("!II", 415, (0x40 << 24) | 12) + struct.pack("!I", 7)
