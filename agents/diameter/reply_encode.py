"""Turn a template's reply tree into AVPs, coercing values to each AVP's Diameter type.

Templates produce Python values (Decimal seconds, int ns, bool, enum names); the wire
wants Unsigned32/64, Enumerated, UTF8String ... as the dictionary says. Granted units are
truncated, never rounded up: we must not grant more than the engine allowed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from agents.diameter.codec import Avp, make_avp
from agents.diameter.dictionary import INTEGER_TYPES, TEXT_TYPES, by_name


class ReplyEncodeError(ValueError):
    """A reply item the dictionary cannot express (unknown AVP name, wrong value)."""


def tree_to_avps(tree: list[tuple[str, Any]]) -> list[Avp]:
    out: list[Avp] = []
    for name, value in tree:
        out.append(item_to_avp(name, value))
    return out


def item_to_avp(name: str, value: Any) -> Avp:
    try:
        defn = by_name(name)
    except KeyError as err:
        raise ReplyEncodeError(str(err)) from None
    if defn.type == "Grouped":
        if name == "Unit-Value" and not isinstance(value, list):
            return make_avp(name, unit_value(value))
        if not isinstance(value, list):
            raise ReplyEncodeError(f"{name} is a grouped AVP, got {value!r}")
        return make_avp(name, tree_to_avps(value))
    return make_avp(name, coerce(defn.type, name, value, defn.enum_value))


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
