"""Sans-IO Diameter codec (RFC 6733 §3-4): bytes <-> ``Message``/``Avp``, dictionary-driven.

No sockets, no engine: the adapter feeds it framed bytes, tests feed it captures. Decoding
is strict about lengths (so a hostile peer cannot make us read past a buffer) and raises
``AvpError`` naming the offending AVP, carrying what the answer needs: the result code
(5014 bad length, 5004 bad value) and the raw AVP for Failed-AVP. Unknown AVPs are kept
raw and re-encoded byte for byte; padding content is not checked (real peers send junk).
"""

from __future__ import annotations

import ipaddress
import struct
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

from agents.diameter import constants as C
from agents.diameter.dictionary import BY_KEY, FIXED_SIZE, TEXT_TYPES, AvpDef, by_name
from engine.memo import remember

HEADER_LEN = 20
MAX_MESSAGE_LEN = 1 << 20          # refuse absurd frames before buffering them
NTP_OFFSET = 2208988800            # seconds from 1900-01-01 to 1970-01-01

_HDR = struct.Struct("!II")
_MSG_HDR = struct.Struct("!IIIII")
_U32 = struct.Struct("!I")
_I32 = struct.Struct("!i")
_U64 = struct.Struct("!Q")
_I64 = struct.Struct("!q")
_F32 = struct.Struct("!f")
_F64 = struct.Struct("!d")


class DiameterError(Exception):
    """A message we cannot accept; ``result_code`` is what the answer carries."""

    def __init__(self, result_code: int, reason: str, failed_avp: bytes | None = None) -> None:
        super().__init__(reason)
        self.result_code = result_code
        self.reason = reason
        self.failed_avp = failed_avp


class HeaderError(DiameterError):
    """The header itself is bad (version, length, bits): the stream may be unframable."""


class AvpError(DiameterError):
    """An AVP is malformed. ``name`` says which; ``failed_avp`` is the raw AVP (wrapped in
    its enclosing grouped AVP headers) to put in Failed-AVP."""

    def __init__(self, result_code: int, name: str, reason: str, failed_avp: bytes) -> None:
        super().__init__(result_code, f"{name}: {reason}", failed_avp)
        self.name = name


class Avp:
    """One AVP. ``value`` is typed for known AVPs (Grouped: list of Avp), bytes otherwise.

    Decoded AVPs may be shared between messages (see ``_SHARED``): treat them, and a
    grouped AVP's member list, as read-only; build a new AVP to change anything.
    ``wire`` is a decoded AVP's own bytes (zero-padded) when encoding it again gives
    exactly those bytes, so echoing it in an answer costs nothing; None otherwise.
    ``view`` is a grouped AVP's members as the template view's dict, made on first use
    (agents/diameter/view.py): shared like the AVP, and read-only like it."""

    __slots__ = ("code", "vendor", "flags", "value", "defn", "wire", "view")

    def __init__(self, code: int, vendor: int, flags: int, value: Any, defn: AvpDef | None,
                 wire: bytes | None = None) -> None:
        self.code = code
        self.vendor = vendor
        self.flags = flags
        self.value = value
        self.defn = defn
        self.wire = wire
        self.view: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.defn.name if self.defn else f"AVP-{self.code}" + (f"-{self.vendor}" if self.vendor else "")

    @property
    def mandatory(self) -> bool:
        return bool(self.flags & 0x40)

    def find(self, name: str) -> "Avp | None":
        """First member of a grouped AVP with this name."""
        if isinstance(self.value, list):
            for avp in self.value:
                if avp.defn is not None and avp.defn.name == name:
                    return avp
        return None

    def find_all(self, name: str) -> list["Avp"]:
        if not isinstance(self.value, list):
            return []
        return [a for a in self.value if a.defn is not None and a.defn.name == name]

    def get(self, name: str, default: Any = None) -> Any:
        value = self.value       # find() inline: read per unit for its Rating-Group and more
        if isinstance(value, list):
            for avp in value:
                defn = avp.defn
                if defn is not None and defn.name == name:
                    return avp.value
        return default

    def encode(self) -> bytes:
        return encode_avp(self)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Avp) and self.code == other.code and self.vendor == other.vendor
                and self.flags == other.flags and self.value == other.value)

    def __repr__(self) -> str:
        return f"Avp({self.name}={self.value!r})"


class Message:
    """A Diameter message: header fields and top-level AVPs."""

    __slots__ = ("version", "flags", "command_code", "application_id", "hop_by_hop", "end_to_end", "avps",
                 "_index")

    def __init__(self, command_code: int, application_id: int, flags: int = 0, hop_by_hop: int = 0,
                 end_to_end: int = 0, avps: list[Avp] | None = None, version: int = 1) -> None:
        self.version = version
        self.flags = flags
        self.command_code = command_code
        self.application_id = application_id
        self.hop_by_hop = hop_by_hop
        self.end_to_end = end_to_end
        self.avps = avps if avps is not None else []
        self._index: dict[str, Avp] | None = None

    def freeze_index(self) -> None:
        """Index top-level AVPs by name (first instance) for a message that will only be
        read from now on (a decoded request: the credit-control path reads it dozens of times)."""
        # Walked backwards: the first instance of a repeated name is the one kept.
        self._index = {avp.defn.name: avp for avp in reversed(self.avps) if avp.defn is not None}

    def has_all(self, names: frozenset[str]) -> bool:
        """True when every name is among the top-level AVPs (one set test once indexed)."""
        index = self._index
        if index is None:
            return names <= {a.defn.name for a in self.avps if a.defn is not None}
        return names <= index.keys()

    @property
    def is_request(self) -> bool:
        return bool(self.flags & C.FLAG_REQUEST)

    @property
    def is_error(self) -> bool:
        return bool(self.flags & C.FLAG_ERROR)

    @property
    def is_retransmit(self) -> bool:
        return bool(self.flags & C.FLAG_RETRANSMIT)

    @property
    def name(self) -> str:
        base = C.COMMAND_NAMES.get(self.command_code, str(self.command_code))
        return base + ("-Request" if self.is_request else "-Answer")

    def find(self, name: str) -> Avp | None:
        if self._index is not None:
            return self._index.get(name)
        for avp in self.avps:
            if avp.defn is not None and avp.defn.name == name:
                return avp
        return None

    def find_all(self, name: str) -> list[Avp]:
        return [a for a in self.avps if a.defn is not None and a.defn.name == name]

    def get(self, name: str, default: Any = None) -> Any:
        index = self._index      # find() inline for an indexed (decoded) message
        avp = index.get(name) if index is not None else self.find(name)
        return default if avp is None else avp.value

    def add(self, name: str, value: Any) -> "Message":
        self.avps.append(make_avp(name, value))
        self._index = None
        return self

    def encode(self) -> bytes:
        return encode_message(self)

    def answer(self, result_code: int | None = None) -> "Message":
        """Answer header for this request: same command/app/ids, R cleared, P kept."""
        msg = Message(self.command_code, self.application_id, self.flags & C.FLAG_PROXIABLE,
                      self.hop_by_hop, self.end_to_end)
        if result_code is not None and result_code >= 3000 and result_code < 4000:
            msg.flags |= C.FLAG_ERROR
        return msg

    def __repr__(self) -> str:
        return (f"Message({self.name} app={self.application_id} hbh={self.hop_by_hop:#x} "
                f"e2e={self.end_to_end:#x} avps={self.avps!r})")


# --------------------------------------------------------------------------- building

def make_avp(name: str, value: Any, *, mandatory: bool | None = None) -> Avp:
    """Build an AVP from its dictionary name. Grouped values: list of Avp or of (name, value)."""
    defn = by_name(name)
    flags = defn.flags if mandatory is None else ((defn.flags & ~0x40) | (0x40 if mandatory else 0))
    if defn.type == "Grouped":
        members = []
        for item in value:
            members.append(item if isinstance(item, Avp) else make_avp(item[0], item[1]))
        value = members
    elif defn.type == "Enumerated" and isinstance(value, str):
        value = defn.enum_value(value)
    return Avp(defn.code, defn.vendor, flags, value, defn)


def group(name: str, *members: Avp | tuple[str, Any]) -> Avp:
    return make_avp(name, list(members))


def placeholder_avp(path: tuple[str, ...]) -> Avp | None:
    """An example of a missing AVP for Failed-AVP (RFC 6733 §7.5: minimum length, zeros),
    nested in its groups; None when the leaf is not a known AVP."""
    names = [p for p in path if p]
    if not names:
        return None
    try:
        defn = by_name(names[-1])
    except KeyError:
        return None
    if defn.type == "Grouped":
        value: Any = []
    elif defn.type == "Address":
        value = "0.0.0.0"
    elif defn.type in TEXT_TYPES or defn.type == "OctetString":
        value = b"\x00"
    elif defn.type in ("Float32", "Float64"):
        value = 0.0
    else:
        value = 0
    avp = Avp(defn.code, defn.vendor, defn.flags, value, defn)
    for parent in reversed(names[:-1]):
        try:
            avp = make_avp(parent, [avp])
        except KeyError:
            break
    return avp


# --------------------------------------------------------------------------- encoding

def _encode_value(avp: Avp) -> bytes:
    value = avp.value
    defn = avp.defn
    if defn is None or isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    kind = defn.type
    if kind == "Grouped":
        return b"".join(encode_avp(member) for member in value)
    if kind in TEXT_TYPES:
        return value.encode("utf-8")
    if kind == "Unsigned32":
        return _U32.pack(int(value))
    if kind == "Enumerated" or kind == "Integer32":
        return _I32.pack(int(value))
    if kind == "Unsigned64":
        return _U64.pack(int(value))
    if kind == "Integer64":
        return _I64.pack(int(value))
    if kind == "OctetString":
        return value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if kind == "Address":
        return _encode_address(value)
    if kind == "Time":
        if isinstance(value, datetime):
            seconds = int(value.timestamp())
        else:
            seconds = int(value)
        return _U32.pack((seconds + NTP_OFFSET) & 0xFFFFFFFF)
    if kind == "Float32":
        return _F32.pack(float(value))
    if kind == "Float64":
        return _F64.pack(float(value))
    return bytes(value)


def _encode_address(value: Any) -> bytes:
    if isinstance(value, tuple):        # (family, raw) kept from decoding an unusual family
        return struct.pack("!H", value[0]) + value[1]
    ip = ipaddress.ip_address(str(value))
    return (b"\x00\x01" if ip.version == 4 else b"\x00\x02") + ip.packed


def encode_avp(avp: Avp) -> bytes:
    wire = avp.wire
    if wire is not None:
        return wire
    data = _encode_value(avp)
    if avp.vendor:
        length = 12 + len(data)
        head = _HDR.pack(avp.code, ((avp.flags | 0x80) << 24) | length) + _U32.pack(avp.vendor)
    else:
        length = 8 + len(data)
        head = _HDR.pack(avp.code, ((avp.flags & 0x7F) << 24) | length)
    pad = -length & 3
    return head + data + (b"\x00" * pad if pad else b"")


def encode_message(msg: Message) -> bytes:
    body = b"".join(encode_avp(a) for a in msg.avps)
    length = HEADER_LEN + len(body)
    return _MSG_HDR.pack((msg.version << 24) | length, (msg.flags << 24) | msg.command_code,
                         msg.application_id, msg.hop_by_hop, msg.end_to_end) + body


def encode_answer(request: Message, parts: list[bytes]) -> bytes:
    """An answer to ``request`` (same command, application and ids, P flag kept) from
    already encoded AVPs: ``Message.answer()`` + ``encode`` without building the objects."""
    body = b"".join(parts)
    return _MSG_HDR.pack((1 << 24) | (HEADER_LEN + len(body)),
                         ((request.flags & C.FLAG_PROXIABLE) << 24) | request.command_code,
                         request.application_id, request.hop_by_hop, request.end_to_end) + body


# --------------------------------------------------------------------------- decoding

def message_length(head: bytes) -> int:
    """Length from the first 4 header bytes; HeaderError if the frame cannot be trusted."""
    if head[0] != 1:
        raise HeaderError(C.DIAMETER_UNSUPPORTED_VERSION, f"unsupported Diameter version {head[0]}")
    length = int.from_bytes(head[1:4], "big")
    if length < HEADER_LEN or length % 4 or length > MAX_MESSAGE_LEN:
        raise HeaderError(C.DIAMETER_INVALID_MESSAGE_LENGTH, f"invalid message length {length}")
    return length


def decode_header(data: bytes) -> Message:
    """Header only (no AVPs): enough to answer even when the AVPs are garbage."""
    if len(data) < HEADER_LEN:
        raise HeaderError(C.DIAMETER_INVALID_MESSAGE_LENGTH, f"message shorter than a header ({len(data)} bytes)")
    w0, w1, app, hbh, e2e = _MSG_HDR.unpack_from(data, 0)
    return Message(w1 & 0xFFFFFF, app, w1 >> 24, hbh, e2e, [], w0 >> 24)


def decode_message(data: bytes) -> Message:
    """Decode one whole message (exactly ``length`` bytes)."""
    length = message_length(data[:4]) if len(data) >= 4 else HEADER_LEN + 1
    if len(data) < HEADER_LEN or length != len(data):
        raise HeaderError(C.DIAMETER_INVALID_MESSAGE_LENGTH,
                          f"header length {length if len(data) >= 4 else '?'} != {len(data)} bytes received")
    msg = decode_header(data)
    if msg.flags & C.FLAG_REQUEST and msg.flags & C.FLAG_ERROR:
        raise HeaderError(C.DIAMETER_INVALID_HDR_BITS, "request with the E bit set")
    msg.avps = decode_avps(data, HEADER_LEN, len(data))
    return msg


# How each known AVP is decoded, found with one dict lookup per AVP: (definition, kind,
# fixed data size or -1). Vendor-less AVPs are keyed by code alone (no tuple to build).
_K_OTHER, _K_U32, _K_I32, _K_U64, _K_TEXT, _K_IDENTITY, _K_GROUPED = range(7)
_KIND_CODES = {"Unsigned32": _K_U32, "Integer32": _K_I32, "Enumerated": _K_I32, "Unsigned64": _K_U64,
               "UTF8String": _K_TEXT, "DiameterURI": _K_TEXT, "DiameterIdentity": _K_IDENTITY,
               "Grouped": _K_GROUPED}
_Plan = tuple[AvpDef, int, int]
_PLAN_BY_CODE: dict[int, _Plan] = {}
_PLAN_BY_KEY: dict[tuple[int, int], _Plan] = {}
for (_code, _vendor), _defn in BY_KEY.items():
    _plan = (_defn, _KIND_CODES.get(_defn.type, _K_OTHER), FIXED_SIZE.get(_defn.type, -1))
    if _vendor:
        _PLAN_BY_KEY[(_code, _vendor)] = _plan
    else:
        _PLAN_BY_CODE[_code] = _plan


# Decoded AVPs by their wire bytes. Most AVPs of a CCR repeat from one message to the
# next (Origin-Host/Realm, Service-Context-Id, CC-Request-Type, the session's Session-Id,
# the subscriber's Subscription-Id group ...): the same bytes decode to the same AVP, so
# it is decoded once and shared. Shared AVPs are never modified (nothing in the agent
# mutates a decoded AVP: answers and synthetic requests build new ones). Bounded: cleared
# when full; AVPs over _SHARED_LEN bytes are not kept.
_EXACT_KINDS = frozenset({_K_U32, _K_I32, _K_U64, _K_TEXT, _K_IDENTITY})
_PADDING = (b"", b"\x00\x00\x00", b"\x00\x00", b"\x00")     # by length % 4
_SHARED: dict[bytes, Avp] = {}
_SHARED_MAX = 8192
_SHARED_LEN = 512


def decode_avps(data: bytes, start: int, end: int) -> list[Avp]:
    """The AVPs in ``data[start:end]``, strictly: AvpError names the first bad one.

    The common types are decoded inline (this loop runs for every AVP of every message);
    an error inside a grouped AVP is wrapped in the group's header on its way out. An AVP
    whose bytes were decoded before is the same (shared) object: only valid AVPs are kept,
    so the same bytes always give the same result, errors included."""
    out: list[Avp] = []
    append = out.append
    pos = start
    unpack = _HDR.unpack_from
    u32 = _U32.unpack_from
    by_code = _PLAN_BY_CODE
    shared = _SHARED
    while pos < end:
        if end - pos < 8:
            raise AvpError(C.DIAMETER_INVALID_AVP_LENGTH, "AVP", f"{end - pos} trailing bytes, too short for an AVP header",
                           _wrap(data[pos:end]))
        code, word = unpack(data, pos)
        length = word & 0xFFFFFF
        data_end = pos + length
        # Bytes decoded before: the shared AVP, before any other work (most AVPs of a CCR).
        # A stored AVP decoded validly from exactly these bytes, so no check can fail here.
        if length <= _SHARED_LEN and data_end <= end:
            raw = data[pos:data_end]
            avp = shared.get(raw)
            if avp is not None:
                append(avp)
                pos = data_end + (-length & 3)
                continue
        else:
            raw = b""
        flags = word >> 24
        if flags & 0x80:
            if end - pos < 12:
                raise AvpError(C.DIAMETER_INVALID_AVP_LENGTH, f"AVP {code}", "vendor AVP header truncated",
                               _wrap(data[pos:end]))
            vendor = u32(data, pos + 8)[0]
            head = 12
            plan = _PLAN_BY_KEY.get((code, vendor)) if vendor else by_code.get(code)
        else:
            vendor = 0
            head = 8
            plan = by_code.get(code)
        if length < head or data_end > end:
            name = plan[0].name if plan else f"AVP {code}/{vendor}"
            why = "length below its header" if length < head else f"length {length} runs past the end"
            raw = data[pos:min(end, pos + max(length, head))]
            raise AvpError(C.DIAMETER_INVALID_AVP_LENGTH, name, why, _wrap(raw))
        data_start = pos + head
        # Re-encoding gives these very bytes for raw and integer/text values under a
        # header whose V bit matches the vendor (a V bit with vendor 0 is re-encoded
        # without the vendor field): keep them as the AVP's wire form.
        same = raw and (vendor or head == 8)
        if plan is None:
            avp = Avp(code, vendor, flags, data[data_start:data_end], None,
                      (raw + _PADDING[length & 3]) if same else None)
        else:
            defn, kind, fixed = plan
            if fixed >= 0 and length - head != fixed:
                raise AvpError(C.DIAMETER_INVALID_AVP_LENGTH, defn.name,
                               f"{defn.type} needs {fixed} bytes, got {length - head}", _wrap(data[pos:data_end]))
            if kind == _K_U32:
                value: Any = u32(data, data_start)[0]
            elif kind == _K_GROUPED:
                value = _decode_group(defn, data, pos, data_start, data_end)
            elif kind == _K_TEXT or kind == _K_IDENTITY:
                try:
                    value = data[data_start:data_end].decode("utf-8")
                except UnicodeDecodeError:
                    if kind == _K_IDENTITY:
                        raise AvpError(C.DIAMETER_INVALID_AVP_VALUE, defn.name, "not valid UTF-8",
                                       _wrap(data[pos:data_end])) from None
                    # Real gateways put binary in some 3GPP "UTF8String" AVPs (3GPP-Session-
                    # Stop-Indicator is 0xff): keep the bytes rather than refuse the request.
                    value = data[data_start:data_end]
            elif kind == _K_I32:
                value = _I32.unpack_from(data, data_start)[0]
            elif kind == _K_U64:
                value = _U64.unpack_from(data, data_start)[0]
            else:
                value = _decode_value(defn, data, data_start, data_end, pos)
            avp = Avp(code, vendor, flags, value, defn,
                      (raw + _PADDING[length & 3]) if same and kind in _EXACT_KINDS else None)
        append(avp)
        if raw:
            remember(shared, _SHARED_MAX, raw, avp)
        pos = data_end + (-length & 3)
    return out


def _decode_group(defn: AvpDef, data: bytes, avp_pos: int, start: int, end: int) -> Any:
    try:
        return decode_avps(data, start, end)
    except AvpError as err:
        if defn.code == 279:
            # Failed-AVP carries an AVP that was malformed by definition: keep it raw.
            return data[start:end]
        # RFC 6733 §7.5: for a grouped AVP, Failed-AVP is the group holding only the
        # offending member, so each enclosing group adds its header on the way out.
        err.failed_avp = _enclose(data[avp_pos:start], err.failed_avp or b"")
        raise


def _decode_value(defn: AvpDef, data: bytes, start: int, end: int, avp_pos: int) -> Any:
    """The less common types (the loop above decodes the rest); sizes already checked."""
    kind = defn.type
    if kind == "Integer64":
        return _I64.unpack_from(data, start)[0]
    if kind == "Time":
        seconds = _U32.unpack_from(data, start)[0]
        # RFC 5905 era rule (RFC 6733 §4.3.1): values with the top bit clear are after 2036.
        unix = seconds - NTP_OFFSET if seconds & 0x80000000 else seconds + (1 << 32) - NTP_OFFSET
        return datetime.fromtimestamp(unix, timezone.utc)
    if kind == "Address":
        return _decode_address(defn, data, start, end, avp_pos)
    if kind == "Float32":
        return _F32.unpack_from(data, start)[0]
    if kind == "Float64":
        return _F64.unpack_from(data, start)[0]
    return data[start:end]


def _decode_address(defn: AvpDef, data: bytes, start: int, end: int, avp_pos: int) -> Any:
    size = end - start
    if size < 2:
        raise AvpError(C.DIAMETER_INVALID_AVP_LENGTH, defn.name, "Address shorter than its family",
                       _wrap(data[avp_pos:end]))
    family = int.from_bytes(data[start:start + 2], "big")
    raw = data[start + 2:end]
    if family == 1:
        if len(raw) != 4:
            raise AvpError(C.DIAMETER_INVALID_AVP_LENGTH, defn.name, f"IPv4 address of {len(raw)} bytes",
                           _wrap(data[avp_pos:end]))
        return str(ipaddress.IPv4Address(raw))
    if family == 2:
        if len(raw) != 16:
            raise AvpError(C.DIAMETER_INVALID_AVP_LENGTH, defn.name, f"IPv6 address of {len(raw)} bytes",
                           _wrap(data[avp_pos:end]))
        return str(ipaddress.IPv6Address(raw))
    return (family, bytes(raw))


def _wrap(raw: bytes) -> bytes:
    """Failed-AVP content for the offending AVP itself (its enclosing groups add their
    headers in ``_decode_group``): its length field fixed to what we carry, padded."""
    inner = bytes(raw)
    if len(inner) >= 8:
        # Keep the AVP self-consistent: its length field says how much we carry.
        flags = inner[4]
        declared = int.from_bytes(inner[5:8], "big")
        head = 12 if flags & 0x80 else 8
        if declared != len(inner) and len(inner) >= head:
            inner = inner[:4] + bytes([flags]) + len(inner).to_bytes(3, "big") + inner[8:]
    return inner + b"\x00" * (-len(inner) & 3)


def _enclose(header: bytes, inner: bytes) -> bytes:
    """``inner`` inside a copy of a grouped AVP's header, its length adjusted."""
    length = len(header) + len(inner)
    return header[:5] + length.to_bytes(3, "big") + header[8:] + inner


def iter_avps(avps: Iterable[Avp], path: tuple[str, ...]) -> Iterator[Avp]:
    """All AVPs at a dotted name path (repeated AVPs and groups fan out)."""
    if not path:
        return
    head, rest = path[0], path[1:]
    for avp in avps:
        if avp.defn is not None and avp.defn.name == head:
            if not rest:
                yield avp
            elif isinstance(avp.value, list):
                yield from iter_avps(avp.value, rest)
