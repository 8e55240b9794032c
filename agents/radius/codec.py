"""Sans-IO RADIUS packet codec: bytes in, a checked packet out, and back.

pyrad's ``Packet`` decodes everything into an OrderedDict on construction
(~30 µs per accounting packet) and accepts some malformed input; on the hot
path chargeway only needs the header, the raw attribute list and a handful of
values, with strict length checks so that hostile datagrams are rejected with
a clear reason. Value conversion (integer, ipaddr, date, tags...) stays with
pyrad through :mod:`agents.radius.dictionary`.

Nothing here touches a socket or a clock.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass, field

# Packet codes (RFC 2865, 2866, 5176).
ACCESS_REQUEST = 1
ACCESS_ACCEPT = 2
ACCESS_REJECT = 3
ACCOUNTING_REQUEST = 4
ACCOUNTING_RESPONSE = 5
ACCESS_CHALLENGE = 11
STATUS_SERVER = 12
DISCONNECT_REQUEST = 40
DISCONNECT_ACK = 41
DISCONNECT_NAK = 42
COA_REQUEST = 43
COA_ACK = 44
COA_NAK = 45

CODE_NAMES = {
    ACCESS_REQUEST: "Access-Request", ACCESS_ACCEPT: "Access-Accept", ACCESS_REJECT: "Access-Reject",
    ACCOUNTING_REQUEST: "Accounting-Request", ACCOUNTING_RESPONSE: "Accounting-Response",
    ACCESS_CHALLENGE: "Access-Challenge", STATUS_SERVER: "Status-Server",
    DISCONNECT_REQUEST: "Disconnect-Request", DISCONNECT_ACK: "Disconnect-ACK",
    DISCONNECT_NAK: "Disconnect-NAK", COA_REQUEST: "CoA-Request", COA_ACK: "CoA-ACK", COA_NAK: "CoA-NAK",
}

# Attribute codes the codec itself needs.
USER_NAME = 1
USER_PASSWORD = 2
CHAP_PASSWORD = 3
VENDOR_SPECIFIC = 26
PROXY_STATE = 33
CHAP_CHALLENGE = 60
EAP_MESSAGE = 79
MESSAGE_AUTHENTICATOR = 80

HEADER_LEN = 20
MAX_PACKET_LEN = 4096
ZERO16 = bytes(16)

# An attribute key: the type code, or (vendor id, vendor type) for a VSA.
AttrKey = int | tuple[int, int]


class MalformedPacket(ValueError):
    """The datagram is not a valid RADIUS packet; ``str`` says why (for the log)."""


@dataclass(slots=True)
class RadiusPacket:
    """A parsed packet: header, attributes in wire order (raw values), the bytes."""

    code: int
    identifier: int
    authenticator: bytes
    attributes: list[tuple[AttrKey, bytes]]
    raw: bytes = b""
    # Offset of the Message-Authenticator value inside ``raw`` (-1: absent).
    ma_offset: int = -1
    # First raw value per key, made on the first ``get`` (a handler asks for ~5 keys,
    # most of them absent: one C-level dict build instead of a scan per question). To change
    # ``attributes`` after that, make a new packet (``dataclasses.replace``).
    _first: dict | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def code_name(self) -> str:
        return CODE_NAMES.get(self.code, str(self.code))

    def get(self, key: AttrKey) -> bytes | None:
        """First raw value of an attribute, or None."""
        first = self._first
        if first is None:
            first = self._first = dict(self.attributes[::-1])
        return first.get(key)

    def get_all(self, key: AttrKey) -> list[bytes]:
        if self.get(key) is None:
            return []
        return [v for k, v in self.attributes if k == key]

    def get_int(self, key: AttrKey) -> int | None:
        raw = self.get(key)
        if raw is None or len(raw) != 4:
            return None
        return int.from_bytes(raw, "big")

    def get_str(self, key: AttrKey) -> str | None:
        raw = self.get(key)
        return None if raw is None else raw.decode("utf-8", "replace")


def parse(data: bytes) -> RadiusPacket:
    """Split a datagram into header and attributes; raise ``MalformedPacket``.

    Checks (RFC 2865 section 3): length field within 20..4096 and not past
    the datagram (extra octets are padding and ignored), every attribute
    length >= 2 and within the packet, VSAs well-formed when they use the
    RFC 2865 suggested format (kept raw under code 26 otherwise).
    """
    n = len(data)
    if n < HEADER_LEN:
        raise MalformedPacket(f"datagram of {n} octets is shorter than the 20-octet header")
    length = (data[2] << 8) | data[3]
    if length < HEADER_LEN or length > MAX_PACKET_LEN:
        raise MalformedPacket(f"length field {length} outside 20..4096")
    if length > n:
        raise MalformedPacket(f"length field {length} exceeds the {n} octets received")
    attrs: list[tuple[AttrKey, bytes]] = []
    ma_offset = -1
    pos = HEADER_LEN
    while pos < length:
        if pos + 2 > length:
            raise MalformedPacket(f"attribute header truncated at octet {pos}")
        atype = data[pos]
        alen = data[pos + 1]
        if alen < 2:
            raise MalformedPacket(f"attribute {atype} at octet {pos} has length {alen} < 2")
        end = pos + alen
        if end > length:
            raise MalformedPacket(f"attribute {atype} at octet {pos} (length {alen}) runs past the packet end {length}")
        value = data[pos + 2:end]
        if atype == VENDOR_SPECIFIC:
            attrs.extend(_split_vsa(value))
        else:
            if atype == MESSAGE_AUTHENTICATOR:
                if alen != 18:
                    raise MalformedPacket(f"Message-Authenticator has length {alen}, not 18")
                ma_offset = pos + 2
            attrs.append((atype, value))
        pos = end
    return RadiusPacket(data[0], data[1], data[4:20], attrs, data[:length], ma_offset)


def _split_vsa(value: bytes) -> list[tuple[AttrKey, bytes]]:
    """Sub-attributes of one Vendor-Specific attribute (RFC 2865 section 5.26 format).

    A VSA that does not follow the suggested one-octet type/length format is
    kept whole under key 26 rather than rejecting the packet: it is legal.
    """
    if len(value) < 4:
        raise MalformedPacket(f"Vendor-Specific attribute of {len(value)} octets has no vendor id")
    vendor = int.from_bytes(value[:4], "big")
    out: list[tuple[AttrKey, bytes]] = []
    pos, n = 4, len(value)
    while pos < n:
        if pos + 2 > n:
            return [(VENDOR_SPECIFIC, value)]
        vtype, vlen = value[pos], value[pos + 1]
        if vlen < 2 or pos + vlen > n:
            return [(VENDOR_SPECIFIC, value)]
        out.append(((vendor, vtype), value[pos + 2:pos + vlen]))
        pos += vlen
    return out or [(VENDOR_SPECIFIC, value)]


def encode_attributes(attrs: list[tuple[AttrKey, bytes]]) -> bytes:
    """Attributes to wire format; values longer than 253 octets are an error."""
    parts: list[bytes] = []
    for key, value in attrs:
        if isinstance(key, tuple):
            vendor, vtype = key
            if len(value) > 247:
                raise ValueError(f"value of vendor {vendor} attribute {vtype} is {len(value)} octets (> 247)")
            sub = bytes((vtype, len(value) + 2)) + value
            parts.append(bytes((VENDOR_SPECIFIC, len(sub) + 6)) + vendor.to_bytes(4, "big") + sub)
        else:
            if len(value) > 253:
                raise ValueError(f"value of attribute {key} is {len(value)} octets (> 253)")
            parts.append(bytes((key, len(value) + 2)) + value)
    return b"".join(parts)


# ---------------------------------------------------------------- authenticators

def request_authenticator_ok(pkt: RadiusPacket, secret: bytes) -> bool:
    """Accounting/CoA/Disconnect Request Authenticator (RFC 2866 section 3, RFC 5176 section 3.5)."""
    raw = pkt.raw
    expected = hashlib.md5(raw[:4] + ZERO16 + raw[20:] + secret).digest()
    return hmac.compare_digest(expected, pkt.authenticator)


def message_authenticator_ok(pkt: RadiusPacket, secret: bytes, request_authenticator: bytes | None = None) -> bool:
    """HMAC-MD5 Message-Authenticator (RFC 3579 section 3.2) over the packet as received.

    For Accounting/CoA/Disconnect requests the authenticator field counts as
    16 zero octets; for replies it is the request's authenticator.
    """
    if pkt.ma_offset < 0:
        return False
    raw = pkt.raw
    off = pkt.ma_offset
    if request_authenticator is not None:
        auth = request_authenticator
    elif pkt.code in (ACCOUNTING_REQUEST, DISCONNECT_REQUEST, COA_REQUEST):
        auth = ZERO16
    else:
        auth = pkt.authenticator
    mac = hmac.new(secret, raw[:4] + auth + raw[20:off] + ZERO16 + raw[off + 16:], "md5").digest()
    return hmac.compare_digest(mac, raw[off:off + 16])


def encode_reply(code: int, identifier: int, request_authenticator: bytes, attrs: list[tuple[AttrKey, bytes]],
                 secret: bytes, *, message_authenticator: bool = False) -> bytes:
    """A reply with its Response Authenticator (RFC 2865 section 3).

    With ``message_authenticator`` the Message-Authenticator is the first
    attribute (BlastRADIUS hardening: first, so a forged prefix cannot
    precede it) and is computed with the Request Authenticator.
    """
    body = encode_attributes(attrs)
    if message_authenticator:
        body = bytes((MESSAGE_AUTHENTICATOR, 18)) + ZERO16 + body
    length = HEADER_LEN + len(body)
    if length > MAX_PACKET_LEN:
        raise ValueError(f"reply of {length} octets exceeds 4096")
    header = struct.pack("!BBH", code, identifier, length)
    if message_authenticator:
        mac = hmac.new(secret, header + request_authenticator + body, "md5").digest()
        body = body[:2] + mac + body[18:]
    auth = hashlib.md5(header + request_authenticator + body + secret).digest()
    return header + auth + body


def empty_reply(code: int, identifier: int, request_authenticator: bytes, secret: bytes) -> bytes:
    """``encode_reply`` with no attributes and no Message-Authenticator, byte for byte: the
    usual Accounting-Response, built from its 4-octet header and one MD5."""
    header = bytes((code, identifier, 0, HEADER_LEN))
    return header + hashlib.md5(header + request_authenticator + secret).digest()


def encode_request(code: int, identifier: int, attrs: list[tuple[AttrKey, bytes]], secret: bytes,
                   *, message_authenticator: bool = False) -> bytes:
    """An Accounting/CoA/Disconnect request: authenticator = MD5 over zeroed header (RFC 5176 3.5)."""
    body = encode_attributes(attrs)
    if message_authenticator:
        body = bytes((MESSAGE_AUTHENTICATOR, 18)) + ZERO16 + body
    header = struct.pack("!BBH", code, identifier, HEADER_LEN + len(body))
    if message_authenticator:
        mac = hmac.new(secret, header + ZERO16 + body, "md5").digest()
        body = body[:2] + mac + body[18:]
    auth = hashlib.md5(header + ZERO16 + body + secret).digest()
    return header + auth + body


def response_authenticator_ok(reply: RadiusPacket, request_authenticator: bytes, secret: bytes) -> bool:
    """Check a reply we received (Disconnect/CoA ACK/NAK) against our request."""
    raw = reply.raw
    expected = hashlib.md5(raw[:4] + request_authenticator + raw[20:] + secret).digest()
    return hmac.compare_digest(expected, reply.authenticator)


# ---------------------------------------------------------------- user credentials

def decrypt_user_password(hidden: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """Recover a PAP User-Password (RFC 2865 section 5.2); trailing NULs removed."""
    if not hidden or len(hidden) % 16 or len(hidden) > 128:
        raise MalformedPacket(f"User-Password of {len(hidden)} octets is not a multiple of 16 up to 128")
    out = bytearray()
    last = authenticator
    for i in range(0, len(hidden), 16):
        block = hidden[i:i + 16]
        pad = hashlib.md5(secret + last).digest()
        out += bytes(a ^ b for a, b in zip(block, pad))
        last = block
    return bytes(out).rstrip(b"\x00")


def encrypt_user_password(password: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """Hide a PAP password (client side; used by tests and tools)."""
    padded = password + bytes(-len(password) % 16 or (16 if not password else 0))
    out = bytearray()
    last = authenticator
    for i in range(0, len(padded), 16):
        pad = hashlib.md5(secret + last).digest()
        block = bytes(a ^ b for a, b in zip(padded[i:i + 16], pad))
        out += block
        last = block
    return bytes(out)


def chap_ok(chap_password: bytes, password: bytes, challenge: bytes) -> bool:
    """CHAP-Password = CHAP id + MD5(id + password + challenge) (RFC 2865 section 5.3)."""
    if len(chap_password) != 17:
        return False
    expected = hashlib.md5(chap_password[:1] + password + challenge).digest()
    return hmac.compare_digest(expected, chap_password[1:])
