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
    """``MessageView`` over one decoded request (see engine/templating).

    The attribute list is indexed by name in one pass on first use and each
    name is decoded once; templates ask for a dozen names per request, many of
    them absent (filters), so both hits and misses must be dict lookups.
    """

    __slots__ = ("packet", "dictionary", "secret", "_cache", "_raw")

    def __init__(self, packet: RadiusPacket, dictionary: RadiusDictionary, secret: bytes = b"") -> None:
        self.packet = packet
        self.dictionary = dictionary
        self.secret = secret
        self._cache: dict[str, list[Any]] = {}
        self._raw: dict[str, list[bytes]] | None = None

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

    def _index(self) -> dict[str, list[bytes]]:
        index: dict[str, list[bytes]] = {}
        by_key = self.dictionary.by_key
        for key, raw in self.packet.attributes:
            definition = by_key.get(key)
            name = definition.name if definition is not None else self.dictionary.name_of(key)
            bucket = index.get(name)
            if bucket is None:
                index[name] = [raw]
            else:
                bucket.append(raw)
        self._raw = index
        return index

    def _lookup(self, name: str) -> list[Any]:
        index = self._raw if self._raw is not None else self._index()
        attr_name, _, tag_text = name.partition(":")
        raws = index.get(attr_name)
        definition = self.dictionary.by_name.get(attr_name)
        if raws is None:
            if definition is None:
                definition = self.dictionary.by_name.get(attr_name.lower())
            if definition is None or definition.name == attr_name:
                return []
            raws = index.get(definition.name)       # case-insensitive spelling in the template
            if raws is None:
                return []
        if definition is None:
            return list(raws)                       # Attr-N / Vendor-V-Attr-N: raw octets
        if tag_text:
            want = int(tag_text)
            raws = [raw for raw in raws if raw and raw[0] == want]
        if definition.key == USER_PASSWORD:
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

    def as_dict(self) -> dict[str, Any]:
        """Every attribute by name (lists for repeated ones): for logs and ``template explain``."""
        out: dict[str, Any] = {}
        for name in (self._raw if self._raw is not None else self._index()):
            values = self.values((name,))
            out[name] = values[0] if len(values) == 1 else values
        return out
