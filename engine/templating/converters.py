"""Value converters: ``~*cgrep.MaxUsage{*duration_seconds&*round:0}``.

Each converter is built once at load from its name and ``:``-separated arguments
(bad arguments are load errors) and is then a plain ``value -> value`` function.
"""

from __future__ import annotations

import ipaddress
import re
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any, Callable

import orjson

from engine.templating.coerce import duration, number, text, time_of, whole
from engine.templating.errors import ConversionError
from engine.units import MICROSECOND, MILLISECOND, MINUTE, SECOND

Converter = Callable[[Any], Any]


class ConverterSpecError(ValueError):
    """A converter name or argument that cannot work (reported at load)."""


def _no_args(name: str, args: list[str]) -> None:
    if args:
        raise ConverterSpecError(f"converter {name} takes no argument")


def _duration_seconds(value: Any) -> int | Decimal:
    ns = duration(value)
    if ns % SECOND == 0:
        return ns // SECOND
    return whole(Decimal(ns) / SECOND)


def _duration_minutes(value: Any) -> int | Decimal:
    return whole(Decimal(duration(value)) / MINUTE)


def _from_unit(unit: int) -> Converter:
    def convert(value: Any) -> int:
        if type(value) is int:
            return value * unit
        return int(number(value) * unit)
    return convert


_ROUNDING = {"*middle": ROUND_HALF_UP, "*up": ROUND_CEILING, "*down": ROUND_FLOOR}


def _round(args: list[str]) -> Converter:
    if not args or len(args) > 2:
        raise ConverterSpecError("*round needs decimals and an optional method: *round:2[:*up]")
    try:
        places = int(args[0])
    except ValueError:
        raise ConverterSpecError(f"*round: decimals must be an integer, not {args[0]!r}") from None
    if places < 0 or places > 18:
        raise ConverterSpecError("*round: decimals must be 0..18")
    method = args[1] if len(args) > 1 else "*middle"
    if method not in _ROUNDING:
        raise ConverterSpecError(f"*round: method must be one of {sorted(_ROUNDING)}")
    mode = _ROUNDING[method]
    quantum = Decimal(1).scaleb(-places)

    def convert(value: Any) -> int | Decimal:
        if type(value) is int:
            return value
        rounded = number(value).quantize(quantum, rounding=mode)
        return int(rounded) if places == 0 else rounded
    return convert


def _arith(name: str, args: list[str]) -> Converter:
    if len(args) != 1:
        raise ConverterSpecError(f"{name} needs one number: {name}:60")
    try:
        factor = Decimal(args[0])
    except ArithmeticError:
        raise ConverterSpecError(f"{name}: {args[0]!r} is not a number") from None
    if not factor.is_finite():
        raise ConverterSpecError(f"{name}: {args[0]!r} is not a finite number")
    if name == "*divide":
        if factor == 0:
            raise ConverterSpecError("*divide by zero")
        return lambda value: whole(number(value) / factor)
    return lambda value: whole(number(value) * factor)


def _gigawords(value: Any) -> int:
    return int(number(value)) << 32


_SIP_URI = re.compile(r"sips?:(?:(?P<user>[^@;>]*)@)?(?P<host>\[[^\]]*\]|[^:;>?]*)")


def _sip_part(part: str) -> Converter:
    def convert(value: Any) -> str:
        raw = text(value)
        match = _SIP_URI.search(raw)
        if match is None:
            raise ConversionError(f"not a SIP URI: {raw!r}")
        return match.group(part) or ""
    return convert


def _len(value: Any) -> int:
    if isinstance(value, (list, tuple, dict, bytes, bytearray)):
        return len(value)
    return len(text(value))


def _to_int(value: Any) -> int:
    return int(number(value))


def _to_decimal(value: Any) -> Decimal:
    return number(value)


def _unixtime(value: Any) -> int:
    return int(time_of(value).timestamp())


def _ip2hex(value: Any) -> str:
    raw = text(value).strip()
    try:
        addr = ipaddress.ip_address(raw)
    except ValueError:
        raise ConversionError(f"not an IP address: {raw!r}") from None
    return "0x" + addr.packed.hex()


def _json(value: Any) -> str:
    return orjson.dumps(value, default=text).decode()


def _strip(args: list[str]) -> Converter:
    if len(args) != 2 or args[0] not in ("*left", "*right", "*both"):
        raise ConverterSpecError("*strip needs a side and a count or text: *strip:*left:2")
    side, what = args
    if what.isdigit():
        count = int(what)

        def by_count(value: Any) -> str:
            raw = text(value)
            if side in ("*left", "*both"):
                raw = raw[count:]
            if side in ("*right", "*both") and count:
                raw = raw[:-count] if count <= len(raw) else ""
            return raw
        return by_count
    if not what:
        raise ConverterSpecError("*strip: text to strip is empty")

    def by_text(value: Any) -> str:
        raw = text(value)
        if side in ("*left", "*both"):
            while raw.startswith(what):
                raw = raw[len(what):]
        if side in ("*right", "*both"):
            while raw.endswith(what):
                raw = raw[: -len(what)]
        return raw
    return by_text


def _bcd_plmn(data: bytes) -> str:
    """MCC+MNC from 3 BCD octets (3GPP TS 24.008 10.5.1.3)."""
    d = [data[0] & 0x0F, data[0] >> 4, data[1] & 0x0F, data[1] >> 4, data[2] & 0x0F, data[2] >> 4]
    mcc = f"{d[0]}{d[1]}{d[2]}"
    mnc = f"{d[4]}{d[5]}" + ("" if d[3] == 0x0F else f"{d[3]}")
    return mcc + mnc


def _uli(value: Any) -> str:
    """3GPP-User-Location-Info (TS 29.061): TAI and/or ECGI as ``TAI:plmn-tac ECGI:plmn-eci``."""
    if isinstance(value, str):
        raw = bytes.fromhex(value[2:] if value.startswith("0x") else value)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
    else:
        raise ConversionError(f"not a User-Location-Info: {value!r}")
    if not raw:
        raise ConversionError("empty User-Location-Info")
    kind, body = raw[0], raw[1:]
    parts: list[str] = []
    if kind in (128, 130) and len(body) >= 5:
        parts.append(f"TAI:{_bcd_plmn(body[:3])}-{int.from_bytes(body[3:5], 'big')}")
        body = body[5:]
    if kind in (129, 130) and len(body) >= 7:
        eci = int.from_bytes(body[3:7], "big") & 0x0FFFFFFF
        parts.append(f"ECGI:{_bcd_plmn(body[:3])}-{eci}")
    if kind in (0, 1, 2) and len(body) >= 7:
        parts.append(f"CGI:{_bcd_plmn(body[:3])}-{int.from_bytes(body[3:5], 'big')}"
                     f"-{int.from_bytes(body[5:7], 'big')}")
    if not parts:
        raise ConversionError(f"unsupported User-Location-Info type {kind}")
    return " ".join(parts)


_SIMPLE: dict[str, Converter] = {
    "*duration": duration,
    "*duration_nanoseconds": duration,
    "*duration_seconds": _duration_seconds,
    "*duration_minutes": _duration_minutes,
    "*from_seconds": _from_unit(SECOND),
    "*from_milliseconds": _from_unit(MILLISECOND),
    "*from_microseconds": _from_unit(MICROSECOND),
    "*gigawords": _gigawords,
    "*sipuri_user": _sip_part("user"),
    "*sipuri_host": _sip_part("host"),
    "*len": _len,
    "*string": text,
    "*int": _to_int,
    "*decimal": _to_decimal,
    "*unixtime": _unixtime,
    "*ip2hex": _ip2hex,
    "*json": _json,
    "*3gpp_uli": _uli,
}
_WITH_ARGS: dict[str, Callable[[list[str]], Converter]] = {
    "*round": _round,
    "*multiply": lambda args: _arith("*multiply", args),
    "*divide": lambda args: _arith("*divide", args),
    "*strip": _strip,
}
KNOWN = sorted([*_SIMPLE, *_WITH_ARGS])


def build_converter(spec: str) -> Converter:
    """``*round:2`` -> a function; ``ConverterSpecError`` names what is wrong."""
    name, *args = spec.strip().split(":")
    if name in _SIMPLE:
        _no_args(name, args)
        return _SIMPLE[name]
    if name in _WITH_ARGS:
        return _WITH_ARGS[name](args)
    raise ConverterSpecError(f"unknown converter {name!r} (known: {', '.join(KNOWN)})")
