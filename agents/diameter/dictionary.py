"""Typed view of the generated AVP table: look AVPs up by name or by (code, vendor).

The codec never hard-codes AVP types: it asks this dictionary, so adding an AVP is a
generator change, not a codec change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.diameter.avp_table import AVP_ROWS

VENDOR_3GPP = 10415

# Types whose wire size is fixed: a different data length is DIAMETER_INVALID_AVP_LENGTH.
FIXED_SIZE = {
    "Integer32": 4, "Unsigned32": 4, "Enumerated": 4, "Time": 4, "Float32": 4,
    "Integer64": 8, "Unsigned64": 8, "Float64": 8,
}
INTEGER_TYPES = frozenset({"Integer32", "Integer64", "Unsigned32", "Unsigned64", "Enumerated"})
TEXT_TYPES = frozenset({"UTF8String", "DiameterIdentity", "DiameterURI"})


@dataclass(frozen=True, slots=True)
class AvpDef:
    """One AVP definition. ``mandatory`` is whether we set the M bit when sending."""

    name: str
    code: int
    vendor: int
    type: str
    mandatory: bool
    enums: dict[int, str] = field(default_factory=dict)
    members: tuple[str, ...] = ()

    @property
    def flags(self) -> int:
        return (0x80 if self.vendor else 0) | (0x40 if self.mandatory else 0)

    def enum_value(self, name_or_value: int | str) -> int:
        """Accept an enum's number or its name (``END_USER_E164``), as templates write either."""
        if isinstance(name_or_value, int):
            return name_or_value
        text = str(name_or_value).strip()
        if text.lstrip("-").isdigit():
            return int(text)
        for number, label in self.enums.items():
            if label == text:
                return number
        raise KeyError(f"{self.name}: unknown enumerated value {name_or_value!r}")


BY_NAME: dict[str, AvpDef] = {}
BY_KEY: dict[tuple[int, int], AvpDef] = {}
for _row in AVP_ROWS:
    _defn = AvpDef(*_row)
    BY_NAME.setdefault(_defn.name, _defn)
    BY_KEY.setdefault((_defn.code, _defn.vendor), _defn)


def by_name(name: str) -> AvpDef:
    """The definition for ``name``; KeyError names the AVP so template errors are readable."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown Diameter AVP {name!r}") from None


def lookup(code: int, vendor: int = 0) -> AvpDef | None:
    return BY_KEY.get((code, vendor))
