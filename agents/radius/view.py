"""The template view of a RADIUS request: ``~*req.<Attribute>`` values by name.

Values are decoded lazily through the dictionary (named integers come back
as their VALUE name, e.g. ``Acct-Status-Type`` = ``Start``, as CGRateS
filters expect). Repeated attributes give several values; a tagged attribute
can be asked for one tag with ``Name:tag``. User-Password is decrypted with
the client's secret only when asked for.
"""

from __future__ import annotations

from typing import Any

from agents.radius.codec import USER_PASSWORD, RadiusPacket, decrypt_user_password, MalformedPacket
from agents.radius.dictionary import RadiusDictionary


class RadiusMessageView:
    """``MessageView`` over one decoded request (see engine/templating)."""

    __slots__ = ("packet", "dictionary", "secret", "_cache")

    def __init__(self, packet: RadiusPacket, dictionary: RadiusDictionary, secret: bytes = b"") -> None:
        self.packet = packet
        self.dictionary = dictionary
        self.secret = secret
        self._cache: dict[str, list[Any]] = {}

    def values(self, path: tuple[str, ...]) -> list[Any]:
        """All values of the attribute named by ``path[0]`` (RADIUS has no nesting)."""
        if not path:
            return []
        name = path[0]
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        found = self._lookup(name)
        self._cache[name] = found
        return found

    def children(self, path: tuple[str, ...]) -> list["RadiusMessageView"]:
        """RADIUS attributes do not nest: no group instances to select from."""
        return []

    def first(self, name: str, default: Any = None) -> Any:
        found = self.values((name,))
        return found[0] if found else default

    def _lookup(self, name: str) -> list[Any]:
        attr_name, _, tag_text = name.partition(":")
        try:
            definition = self.dictionary.definition(attr_name)
        except KeyError:
            return self._unknown(attr_name)
        key = definition.key
        raws = [raw for k, raw in self.packet.attributes if k == key]
        if tag_text:
            want = int(tag_text)
            raws = [raw for raw in raws if raw and raw[0] == want]
        if key == USER_PASSWORD:
            out: list[Any] = []
            for raw in raws:
                try:
                    out.append(decrypt_user_password(raw, self.secret, self.packet.authenticator)
                               .decode("utf-8", "replace"))
                except MalformedPacket:
                    continue
            return out
        decode = self.dictionary.decode
        return [decode(definition, raw) for raw in raws]

    def _unknown(self, name: str) -> list[Any]:
        """``Attr-N`` / ``Vendor-V-Attr-N`` for attributes missing from the dictionaries (raw bytes)."""
        key: Any = None
        if name.startswith("Attr-") and name[5:].isdigit():
            key = int(name[5:])
        elif name.startswith("Vendor-") and "-Attr-" in name:
            vendor, _, code = name[7:].partition("-Attr-")
            if vendor.isdigit() and code.isdigit():
                key = (int(vendor), int(code))
        if key is None:
            return []
        return [raw for k, raw in self.packet.attributes if k == key]

    def as_dict(self) -> dict[str, Any]:
        """Every attribute by name (lists for repeated ones): for logs and ``template explain``."""
        out: dict[str, Any] = {}
        for key, _ in self.packet.attributes:
            name = self.dictionary.name_of(key)
            if name in out:
                continue
            values = self.values((name,))
            out[name] = values[0] if len(values) == 1 else values
        return out
