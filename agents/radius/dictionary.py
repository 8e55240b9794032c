"""RADIUS dictionaries: FreeRADIUS-format files read by pyrad, indexed for speed.

pyrad parses the files (``$INCLUDE``, ``VENDOR``/``BEGIN-VENDOR``, ``VALUE``,
``has_tag``, ``encrypt=``) and converts values; this module flattens its
tables into one dict keyed the way :mod:`agents.radius.codec` keys attributes
(code, or ``(vendor id, code)``) so a lookup on the hot path is one dict get.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable

from pyrad import tools
from pyrad.dictionary import Dictionary, ParseError

from agents.radius.codec import AttrKey

DEFAULT_DICTIONARY = Path(__file__).resolve().parents[2] / "config" / "radius" / "dictionary"


class DictionaryError(ValueError):
    """A dictionary file could not be read; message names the file and line."""


@dataclass(frozen=True, slots=True)
class AttrDef:
    """One attribute definition, ready for decoding and encoding."""

    name: str
    key: AttrKey
    type: str
    has_tag: bool = False
    encrypt: int = 0
    names_by_value: dict[int, str] = field(default_factory=dict)
    values_by_name: dict[str, int] = field(default_factory=dict)


class RadiusDictionary:
    """Curated dictionary plus user vendor files; name and key lookups."""

    def __init__(self, pyrad_dict: Dictionary) -> None:
        self.pyrad = pyrad_dict
        self.by_key: dict[AttrKey, AttrDef] = {}
        self.by_name: dict[str, AttrDef] = {}
        for name, attr in pyrad_dict.attributes.items():
            if attr.is_sub_attribute or attr.type == "tlv":
                continue
            vendor_id = pyrad_dict.vendors.GetForward(attr.vendor) if attr.vendor else 0
            key: AttrKey = (vendor_id, attr.code) if vendor_id else attr.code
            names: dict[int, str] = {}
            values: dict[str, int] = {}
            if attr.type == "integer":
                for vname, raw in attr.values.forward.items():
                    number = int.from_bytes(raw, "big")
                    names.setdefault(number, vname)
                    values[vname] = number
            definition = AttrDef(name, key, attr.type, attr.has_tag, attr.encrypt, names, values)
            self.by_name[name] = definition
            self.by_name.setdefault(name.lower(), definition)
            # A later file redefining a code wins on decode (radcli Sip-* over Error-Cause).
            if pyrad_dict.attrindex.HasBackward(key) and pyrad_dict.attrindex.GetBackward(key) == name:
                self.by_key[key] = definition
            else:
                self.by_key.setdefault(key, definition)

    @classmethod
    def load(cls, paths: Iterable[str | Path] = ()) -> "RadiusDictionary":
        """The curated dictionary, then each user file in order."""
        files = [DEFAULT_DICTIONARY, *[Path(p) for p in paths]]
        pyrad_dict = Dictionary()
        for path in files:
            if not Path(path).is_file():
                raise DictionaryError(f"{path}: dictionary file not found")
            try:
                pyrad_dict.ReadDictionary(str(path))
            except (ParseError, ValueError, OSError) as err:
                raise DictionaryError(f"{path}: {err}") from err
        return cls(pyrad_dict)

    def definition(self, name: str) -> AttrDef:
        """By name (case-insensitive fallback); KeyError says which name."""
        found = self.by_name.get(name) or self.by_name.get(name.lower())
        if found is None:
            raise KeyError(f"RADIUS attribute {name!r} is not in the loaded dictionaries")
        return found

    def name_of(self, key: AttrKey) -> str:
        """Dictionary name, or FreeRADIUS-style ``Attr-N`` / ``Vendor-V-Attr-N``."""
        definition = self.by_key.get(key)
        if definition is not None:
            return definition.name
        if isinstance(key, tuple):
            return f"Vendor-{key[0]}-Attr-{key[1]}"
        return f"Attr-{key}"

    # ---------------------------------------------------------------- values

    def decode(self, definition: AttrDef | None, raw: bytes) -> Any:
        """Raw octets to a Python value; a named integer becomes its name.

        Tagged attributes drop their tag octet. Undecodable values (wrong
        length for the type) come back as the raw bytes rather than failing
        the whole request.
        """
        if definition is None:
            return raw
        if definition.has_tag and raw:
            if definition.type == "integer":
                raw = b"\x00" + raw[1:]
            elif raw[0] <= 0x1F:
                raw = raw[1:]
        kind = definition.type
        try:
            if kind == "integer":
                if len(raw) != 4:
                    return raw
                number = int.from_bytes(raw, "big")
                return definition.names_by_value.get(number, number)
            if kind == "string":
                return raw.decode("utf-8")
            if kind == "date":
                if len(raw) != 4:
                    return raw
                return datetime.fromtimestamp(int.from_bytes(raw, "big"), timezone.utc)
            return tools.DecodeAttr(kind, raw)
        except (ValueError, UnicodeDecodeError, OSError, TypeError):
            return raw

    def encode(self, definition: AttrDef, value: Any, tag: int = 0) -> bytes:
        """A template value to raw octets (names accepted for enumerated integers)."""
        kind = definition.type
        if kind == "integer":
            if isinstance(value, str) and value in definition.values_by_name:
                number = definition.values_by_name[value]
            else:
                number = _to_int(value)
            if not 0 <= number <= 0xFFFFFFFF:
                raise ValueError(f"{definition.name}: {number} does not fit 32 bits")
            raw = number.to_bytes(4, "big")
            return bytes((tag,)) + raw[1:] if definition.has_tag else raw
        if kind == "date":
            if isinstance(value, str) and not value.strip().isdigit():
                value = _parse_date(value)
            if isinstance(value, datetime):
                value = int(value.timestamp())
            raw = _to_int(value).to_bytes(4, "big")
        elif kind == "string":
            raw = value if isinstance(value, bytes) else str(value).encode()
        elif kind == "octets":
            raw = value if isinstance(value, bytes) else str(value).encode()
        else:
            raw = tools.EncodeAttr(kind, value)
        if definition.has_tag and (tag or (raw and raw[0] <= 0x1F)):
            raw = bytes((tag,)) + raw
        return raw


def _to_int(value: Any) -> int:
    """int from int/Decimal/str ("30", "30.0"); bool refused."""
    if isinstance(value, bool):
        raise ValueError(f"boolean {value} is not an integer value")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        return int(Decimal(str(value).strip()))


def _parse_date(text: str) -> datetime:
    """RFC 3339 or radclient's ``"Nov 22 2026 16:40:00 UTC"``."""
    text = text.strip()
    try:
        return datetime.strptime(text.replace(" UTC", ""), "%b %d %Y %H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        pass
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
