"""Turn a template's reply tree into AVP bytes, coercing values to each AVP's Diameter type.

Templates produce Python values (Decimal seconds, int ns, bool, enum names); the wire
wants Unsigned32/64, Enumerated, UTF8String ... as the dictionary says. Granted units are
truncated, never rounded up: we must not grant more than the engine allowed.

Reply items go straight to bytes (no ``Avp`` objects in between): every CCA carries them,
so each AVP name gets an encoder built once from the dictionary (its header is a
constant for the fixed-size types), and the credit-control layer assembles the CCA from
the encoded pieces.
"""

from __future__ import annotations

import struct
from decimal import Decimal
from typing import Any, Callable

from agents.diameter.codec import Avp, encode_avp
from agents.diameter.dictionary import FIXED_SIZE, INTEGER_TYPES, TEXT_TYPES, AvpDef, by_name
from engine.memo import remember

_HDR = struct.Struct("!II")
_U32 = struct.Struct("!I")
_PACKERS: dict[str, Callable[[int], bytes]] = {
    "Unsigned32": struct.Struct("!I").pack, "Integer32": struct.Struct("!i").pack,
    "Enumerated": struct.Struct("!i").pack, "Unsigned64": struct.Struct("!Q").pack,
    "Integer64": struct.Struct("!q").pack,
}


# Values each integer type holds (an int in range needs no coercion).
_RANGES = {"Unsigned32": (0, 2**32 - 1), "Integer32": (-2**31, 2**31 - 1), "Enumerated": (-2**31, 2**31 - 1),
           "Unsigned64": (0, 2**64 - 1), "Integer64": (-2**63, 2**63 - 1)}


class ReplyEncodeError(ValueError):
    """A reply item the dictionary cannot express (unknown AVP name, wrong value)."""


class Encoded:
    """One encoded reply item: its name, its bytes and, for a scalar, the coerced value
    (the credit-control layer reads Result-Code and Validity-Time from it)."""

    __slots__ = ("name", "wire", "value")

    def __init__(self, name: str, wire: bytes, value: Any) -> None:
        self.name = name
        self.wire = wire
        self.value = value

    def __repr__(self) -> str:
        return f"Encoded({self.name}={self.value!r})"


class AvpEncoder:
    """Encodes one AVP (by dictionary name) from a template value."""

    __slots__ = ("defn", "name", "grouped", "_flag_word", "_vendor", "_head", "_pack", "_text", "_low", "_high")

    def __init__(self, defn: AvpDef) -> None:
        self.defn = defn
        self.name = defn.name
        self.grouped = defn.type == "Grouped"
        flags = defn.flags
        self._flag_word = ((flags | 0x80) << 24) if defn.vendor else ((flags & 0x7F) << 24)
        self._vendor = _U32.pack(defn.vendor) if defn.vendor else b""
        self._pack = _PACKERS.get(defn.type)
        self._text = defn.type in TEXT_TYPES
        size = FIXED_SIZE.get(defn.type)
        # Fixed-size integer types: the whole header is a constant.
        self._head = self.frame_head(size) if size is not None and self._pack is not None else None
        self._low, self._high = _RANGES.get(defn.type, (0, -1))

    def frame_head(self, data_len: int) -> bytes:
        length = (12 if self._vendor else 8) + data_len
        return _HDR.pack(self.defn.code, self._flag_word | length) + self._vendor

    def frame(self, data: bytes) -> bytes:
        """Header + data + padding to 4 bytes."""
        pad = -len(data) & 3
        return self.frame_head(len(data)) + data + (b"\x00" * pad if pad else b"")

    def scalar(self, value: Any) -> tuple[bytes, Any]:
        """(bytes, coerced value) for a non-grouped AVP."""
        if type(value) is int and self._head is not None and self._low <= value <= self._high:
            return self._head + self._pack(value), value      # the usual case: an int that fits
        defn = self.defn
        coerced = coerce(defn.type, self.name, value, defn.enum_value)
        pack = self._pack
        if pack is not None:
            try:
                data = pack(coerced)
            except struct.error as err:
                raise ReplyEncodeError(f"{self.name}: {value!r} does not fit {defn.type}: {err}") from None
            head = self._head
            return (head + data if head is not None else self.frame(data)), coerced
        if self._text:
            return self.frame(coerced.encode("utf-8")), coerced
        # OctetString, Address, Time, Float: the codec's general value encoding.
        return encode_avp(Avp(defn.code, defn.vendor, defn.flags, coerced, defn)), coerced


_ENCODERS: dict[str, AvpEncoder] = {}


def encoder(name: str) -> AvpEncoder:
    """The encoder for an AVP name (built on first use); ReplyEncodeError if unknown."""
    enc = _ENCODERS.get(name)
    if enc is None:
        try:
            defn = by_name(name)
        except KeyError as err:
            raise ReplyEncodeError(str(err)) from None
        enc = _ENCODERS[name] = AvpEncoder(defn)
    return enc


# Encoded scalar items by (name, value) for int and str values (every CCA repeats its
# Result-Code, Validity-Time and most granted amounts). Only those two types: they never
# compare equal to each other, whereas True == 1 == Decimal(1) encode differently as text.
# ``Encoded`` items are never modified, so one can serve every answer. Bounded (engine.memo).
_SCALARS: dict[tuple[str, Any], Encoded] = {}
_SCALARS_MAX = 4096


def encode_item(name: str, value: Any) -> Encoded:
    """One reply item as bytes. A grouped AVP's value is a list of ``(name, value)``
    pairs (``ReplyBuilder.tree()``) or of ``[name, value]`` entries (``entries()``)."""
    kind = type(value)
    if kind is int or kind is str:
        item = _SCALARS.get((name, value))
        if item is not None:
            return item
    enc = _ENCODERS.get(name) or encoder(name)
    if enc.grouped:
        return Encoded(name, enc.frame(b"".join([item.wire for item in encode_members(name, value)])), None)
    wire, coerced = enc.scalar(value)
    item = Encoded(name, wire, coerced)
    if kind is int or kind is str:
        remember(_SCALARS, _SCALARS_MAX, (name, value), item)
    return item


def encode_members(name: str, value: Any) -> list[Encoded]:
    """The members of grouped item ``name``, each encoded."""
    if not isinstance(value, list):
        if name == "Unit-Value":
            value = unit_value(value)
        else:
            raise ReplyEncodeError(f"{name} is a grouped AVP, got {value!r}")
    return [encode_item(member, member_value) for member, member_value in value]


def coerce(kind: str, name: str, value: Any, enum_value: Any = None) -> Any:
    try:
        if kind == "Enumerated":
            if isinstance(value, bool):
                return int(value)
            if isinstance(value, str) and enum_value is not None:
                return enum_value(value)
            return _to_int(value)
        if kind in INTEGER_TYPES:
            number = _to_int(value)
            if kind.startswith("Unsigned") and number < 0:
                raise ReplyEncodeError(f"{name}: negative value {value!r} for {kind}")
            return number
        if kind in TEXT_TYPES:
            return value if isinstance(value, str) else str(value)
        if kind in ("Float32", "Float64"):
            return float(value)
        return value
    except (ValueError, ArithmeticError, KeyError) as err:
        raise ReplyEncodeError(f"{name}: cannot encode {value!r} as {kind}: {err}") from None


def _to_int(value: Any) -> int:
    if type(value) is int:
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return int(value)          # truncates toward zero
    if isinstance(value, float):
        return int(value)
    return int(Decimal(str(value).strip()))


def unit_value(amount: Any) -> list[tuple[str, int]]:
    """RFC 4006 §8.8 Unit-Value: the exact decimal as Value-Digits x 10^Exponent."""
    try:
        number = Decimal(str(amount)).normalize()
    except ArithmeticError:
        raise ReplyEncodeError(f"Unit-Value: {amount!r} is not a number") from None
    sign, digits, exponent = number.as_tuple()
    if not isinstance(exponent, int):
        raise ReplyEncodeError(f"Unit-Value: {amount!r} is not finite")
    value = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    if exponent > 0:
        value *= 10 ** exponent
        exponent = 0
    return [("Value-Digits", value), ("Exponent", exponent)]
