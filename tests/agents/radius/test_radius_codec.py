"""Codec and dictionary against the real RADIUS captures (secret xyzzy5461)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pyrad.packet import AcctPacket, AuthPacket
from pyrad.dictionary import Dictionary

from agents.radius import codec
from agents.radius.codec import MalformedPacket, parse
from agents.radius.dictionary import DEFAULT_DICTIONARY, RadiusDictionary
from agents.radius.view import RadiusMessageView

CAPTURES = Path(__file__).parent / "captures"
SECRET = b"xyzzy5461"


def capture(name: str) -> bytes:
    return bytes.fromhex((CAPTURES / f"{name}.hex").read_text().strip())


@pytest.fixture(scope="module")
def dictionary() -> RadiusDictionary:
    return RadiusDictionary.load()


def test_pap_request_rfc2865_7_1(dictionary):
    pkt = parse(capture("access_request_rfc2865_7_1"))
    assert pkt.code == codec.ACCESS_REQUEST and pkt.identifier == 0
    view = RadiusMessageView(pkt, dictionary, SECRET)
    assert view.values(("User-Name",)) == ["nemo"]
    assert view.values(("User-Password",)) == ["arctangent"]
    assert view.values(("NAS-IP-Address",)) == ["192.168.1.16"]
    assert view.values(("NAS-Port",)) == [3]


def test_chap_request_rfc2865_7_2(dictionary):
    pkt = parse(capture("access_request_rfc2865_7_2"))
    view = RadiusMessageView(pkt, dictionary, SECRET)
    assert view.first("User-Name") == "flopsy"
    assert view.first("Service-Type") == "Framed-User"
    assert view.first("Framed-Protocol") == "PPP"
    assert view.first("NAS-Port") == 20
    chap = pkt.get(codec.CHAP_PASSWORD)
    assert chap is not None and len(chap) == 17
    # CHAP without CHAP-Challenge uses the Request Authenticator as challenge; a wrong password fails.
    assert not codec.chap_ok(chap, b"wrong", pkt.authenticator)


def test_accounting_start_authenticator(dictionary):
    pkt = parse(capture("accounting_request_start"))
    assert codec.request_authenticator_ok(pkt, SECRET)
    assert not codec.request_authenticator_ok(pkt, b"other")
    view = RadiusMessageView(pkt, dictionary, SECRET)
    assert view.first("Acct-Status-Type") == "Start"
    assert view.first("Acct-Session-Id") == "20024"
    assert view.first("User-Name") == "nemo"


def test_reply_is_what_pyrad_accepts(dictionary):
    """Our Accounting-Response verifies with pyrad's client-side check."""
    raw = capture("accounting_request_start")
    pkt = parse(raw)
    reply = codec.encode_reply(codec.ACCOUNTING_RESPONSE, pkt.identifier, pkt.authenticator, [], SECRET)
    pyd = Dictionary(str(DEFAULT_DICTIONARY))
    request = AcctPacket(packet=raw, secret=SECRET, dict=pyd)
    assert request.VerifyReply(AcctPacket(packet=reply, secret=SECRET, dict=pyd), reply)


def test_access_accept_with_message_authenticator_verifies_in_pyrad(dictionary):
    raw = capture("access_request_rfc2865_7_1")
    pkt = parse(raw)
    st = dictionary.definition("Session-Timeout")
    reply = codec.encode_reply(codec.ACCESS_ACCEPT, pkt.identifier, pkt.authenticator,
                               [(st.key, dictionary.encode(st, 120))], SECRET, message_authenticator=True)
    assert reply[20] == codec.MESSAGE_AUTHENTICATOR       # first attribute (BlastRADIUS)
    pyd = Dictionary(str(DEFAULT_DICTIONARY))
    request = AuthPacket(packet=raw, secret=SECRET, dict=pyd)
    answer = AuthPacket(packet=reply, secret=SECRET, dict=pyd)
    assert request.VerifyReply(answer, reply, enforce_ma=True)
    assert answer["Session-Timeout"] == [120]


def test_message_authenticator_request_verification():
    pyd = Dictionary(str(DEFAULT_DICTIONARY))
    req = AuthPacket(secret=SECRET, dict=pyd, id=7, User_Name="bob")
    req["User-Password"] = req.PwCrypt("hello")
    req.add_message_authenticator()
    raw = req.RequestPacket()
    pkt = parse(raw)
    assert codec.message_authenticator_ok(pkt, SECRET)
    assert not codec.message_authenticator_ok(pkt, b"bad")
    tampered = bytearray(raw)
    tampered[-1] ^= 1
    assert not codec.message_authenticator_ok(parse(bytes(tampered)), SECRET)


def test_password_roundtrip():
    auth = bytes(range(16))
    hidden = codec.encrypt_user_password(b"a-longer-password-than-16", SECRET, auth)
    assert len(hidden) == 32
    assert codec.decrypt_user_password(hidden, SECRET, auth) == b"a-longer-password-than-16"


def test_chap_ok():
    challenge = b"0123456789abcdef"
    chap = b"\x05" + hashlib.md5(b"\x05" + b"secretpw" + challenge).digest()
    assert codec.chap_ok(chap, b"secretpw", challenge)
    assert not codec.chap_ok(chap, b"secretpx", challenge)


@pytest.mark.parametrize("data, reason", [
    (b"\x04\x01\x00", "shorter than the 20-octet header"),
    (b"\x04\x01\x00\x10" + bytes(16), "outside 20..4096"),
    (b"\x04\x01\x00\x30" + bytes(16), "exceeds the 20 octets"),
    (b"\x04\x01\x00\x18" + bytes(16) + b"\x01\x08ab", "runs past the packet end"),
    (b"\x04\x01\x00\x17" + bytes(16) + b"\x01\x01a", "length 1 < 2"),
    (b"\x04\x01\x00\x15" + bytes(16) + b"\x01", "truncated"),
    (b"\x01\x01\x00\x18" + bytes(16) + b"\x50\x04ab", "Message-Authenticator has length 4"),
])
def test_malformed_packets_rejected_with_reason(data, reason):
    with pytest.raises(MalformedPacket, match=reason):
        parse(data)


def test_vendor_specific_and_tagged(dictionary):
    cisco = dictionary.definition("h323-credit-time")
    tunnel = dictionary.definition("Tunnel-Type")
    group = dictionary.definition("Tunnel-Private-Group-Id")
    attrs = [(cisco.key, dictionary.encode(cisco, "300")),
             ((9, 1), b"h323-ivr-out=balance:12"),
             (tunnel.key, dictionary.encode(tunnel, "VLAN", tag=1)),
             (group.key, dictionary.encode(group, "100", tag=1))]
    raw = codec.encode_request(codec.ACCOUNTING_REQUEST, 3, attrs, SECRET)
    pkt = parse(raw)
    assert codec.request_authenticator_ok(pkt, SECRET)
    view = RadiusMessageView(pkt, dictionary, SECRET)
    assert view.values(("h323-credit-time",)) == ["300"]
    assert view.values(("Cisco-AVPair",)) == ["h323-ivr-out=balance:12"]
    assert view.values(("Tunnel-Type",)) == ["VLAN"]
    assert view.values(("Tunnel-Type:1",)) == ["VLAN"]
    assert view.values(("Tunnel-Type:2",)) == []
    assert view.values(("Tunnel-Private-Group-Id",)) == ["100"]
    # on the wire: 26, len, vendor 9, sub-type 102
    assert raw[20:28] == bytes((26, 11, 0, 0, 0, 9, 102, 5))


def test_kamailio_sip_attributes_decode_with_radcli_numbers(dictionary):
    attrs = [(101, (1).to_bytes(4, "big")), (105, b"fromtag"), (104, b"totag"), (55, (1795364999).to_bytes(4, "big"))]
    pkt = parse(codec.encode_request(codec.ACCOUNTING_REQUEST, 1, attrs, SECRET))
    view = RadiusMessageView(pkt, dictionary)
    assert view.first("Sip-Method") == "Invite"
    assert view.first("Sip-From-Tag") == "fromtag"
    assert view.first("Sip-To-Tag") == "totag"
    assert view.first("Event-Timestamp") == datetime.fromtimestamp(1795364999, timezone.utc)


def test_unknown_attribute_by_number(dictionary):
    pkt = parse(codec.encode_request(codec.ACCOUNTING_REQUEST, 1, [(240, b"x"), ((4242, 7), b"y")], SECRET))
    view = RadiusMessageView(pkt, dictionary)
    assert view.values(("Attr-240",)) == [b"x"]
    assert view.values(("Vendor-4242-Attr-7",)) == [b"y"]
    assert view.as_dict() == {"Attr-240": b"x", "Vendor-4242-Attr-7": b"y"}


def test_user_dictionary_adds_vendor(tmp_path):
    extra = tmp_path / "dictionary.acme"
    extra.write_text("VENDOR Acme 4242\nBEGIN-VENDOR Acme\nATTRIBUTE Acme-Plan 7 string\nEND-VENDOR Acme\n")
    d = RadiusDictionary.load([extra])
    pkt = parse(codec.encode_request(codec.ACCOUNTING_REQUEST, 1, [((4242, 7), b"gold")], SECRET))
    assert RadiusMessageView(pkt, d).first("Acme-Plan") == "gold"


def test_bad_user_dictionary_names_the_file(tmp_path):
    from agents.radius.dictionary import DictionaryError
    bad = tmp_path / "dictionary.bad"
    bad.write_text("ATTRIBUTE Foo 300 nonsense-type\n")
    with pytest.raises(DictionaryError, match="dictionary.bad"):
        RadiusDictionary.load([bad])


def test_template_view_reads_what_the_full_view_reads(dictionary):
    """The handler hands the template a DictView of the names it reads: same values, fewer decoded."""
    from agents.radius.view import ReadPlan
    from engine.templating import DictView

    tunnel = dictionary.definition("Tunnel-Type")
    attrs = [(1, b"nemo"), (tunnel.key, dictionary.encode(tunnel, "VLAN", tag=1)),
             (25, b"c1"), (25, b"c2"), (240, b"x"), (40, (2).to_bytes(4, "big")),
             (55, (1795364999).to_bytes(4, "big")), (44, b"never-read"), (30, b"\xff\xfe1002")]
    pkt = parse(codec.encode_request(codec.ACCESS_REQUEST, 9, attrs, SECRET))
    pkt.attributes.append((codec.USER_PASSWORD, codec.encrypt_user_password(b"arctangent", SECRET,
                                                                            pkt.authenticator)))
    view = RadiusMessageView(pkt, dictionary, SECRET)
    names = ["User-Name", "user-name", "Tunnel-Type", "Tunnel-Type:1", "Tunnel-Type:2", "Class",
             "Attr-240", "Acct-Status-Type", "Event-Timestamp", "User-Password", "Service-Type",
             "Vendor-9-Attr-1", "Called-Station-Id"]
    fast = view.template_view(ReadPlan(names, dictionary))
    assert type(fast) is DictView
    for name in names:
        assert fast.values((name,)) == view.values((name,)), name
    assert fast.values(("User-Password",)) == ["arctangent"]
    assert fast.values(("Class",)) == [b"c1", b"c2"] or fast.values(("Class",)) == ["c1", "c2"]
    assert fast.values(("Called-Station-Id",)) == [b"\xff\xfe1002"]   # not UTF-8: the octets
    assert "Acct-Session-Id" not in fast.data          # not read by the template: not decoded
    again = ReadPlan(names, dictionary)
    assert again.read(pkt, SECRET).data == fast.data   # without a full view given, same values


def test_empty_reply_is_encode_reply_without_attributes():
    """The Accounting-Response fast path sends exactly the bytes encode_reply would."""
    request_auth = bytes(range(16))
    for identifier in (0, 7, 255):
        assert codec.empty_reply(codec.ACCOUNTING_RESPONSE, identifier, request_auth, SECRET) == \
            codec.encode_reply(codec.ACCOUNTING_RESPONSE, identifier, request_auth, [], SECRET)
    reply = parse(codec.empty_reply(codec.ACCOUNTING_RESPONSE, 9, request_auth, SECRET))
    assert codec.response_authenticator_ok(reply, request_auth, SECRET)
