"""The template view of a RADIUS request: ``~*req.<Attribute>`` values by name.

Values are decoded lazily through the dictionary (named integers come back
as their VALUE name, e.g. ``Acct-Status-Type`` = ``Start``, as CGRateS
filters expect). Repeated attributes give several values; a tagged attribute
can be asked for one tag with ``Name:tag``. User-Password is decrypted with
the client's secret only when asked for.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from agents.radius.codec import USER_PASSWORD, AttrKey, RadiusPacket, decrypt_user_password, MalformedPacket
from agents.radius.dictionary import AttrDef, RadiusDictionary
from engine.memo import remember
from engine.templating.view import DictView


_UNKNOWN_NAME = re.compile(r"(?:Vendor-([0-9]+)-)?Attr-([0-9]+)")
_MEMO_TYPES = ("integer", "date", "ipaddr", "byte", "short")
_MEMO_SIZE = 4096


# How ReadPlan.read turns one attribute's octets into its template value.
_RAW = 0        # no dictionary entry (Attr-N): the octets
_MEMO = 1       # small fixed-size types: remembered per raw octets
_UTF8 = 2       # untagged string: UTF-8 text, the octets if not UTF-8 (as RadiusDictionary.decode)
_DECODE = 3     # anything else: RadiusDictionary.decode


class ReadPlan:
    """Which attributes one template reads, split by how they are found (made once per template).

    ``by_key`` maps each attribute key a template reads by its dictionary name (or
    ``Attr-N``) to that name, how its value is decoded and, for the small fixed-size
    types (integers, dates, addresses), a memo of values per raw octets: the same
    Acct-Status-Type, NAS-Port or Event-Timestamp arrive again and again. A packet's other
    attributes cost one dict probe. Every other name (a tag suffix, another spelling,
    User-Password, which needs the secret) goes through ``RadiusMessageView._lookup``.
    """

    __slots__ = ("plain", "special", "by_key", "dictionary")

    def __init__(self, names: Iterable[str], dictionary: RadiusDictionary) -> None:
        self.dictionary = dictionary
        plain: set[str] = set()
        special: list[str] = []
        for name in names:
            definition = dictionary.by_name.get(name)
            if ":" in name or (definition is not None and (definition.name != name
                                                           or definition.key == USER_PASSWORD)):
                special.append(name)
            elif definition is None and dictionary.by_name.get(name.lower()) is not None:
                special.append(name)
            else:
                plain.add(name)
        self.plain = frozenset(plain)
        self.special = tuple(sorted(special))
        # A key decodes under the name its by_key definition gives (name_of), as in _index.
        self.by_key: dict[AttrKey, tuple[str, int, AttrDef | None, dict[bytes, Any] | None]] = {
            key: (definition.name, *_decoding(definition)) for key, definition in dictionary.by_key.items()
            if definition.name in plain}
        for name in plain:
            unknown = _UNKNOWN_NAME.fullmatch(name)
            if unknown is None:
                continue
            vendor, code = unknown.groups()
            key: AttrKey = (int(vendor), int(code)) if vendor else int(code)
            if key not in dictionary.by_key:
                self.by_key[key] = (name, _RAW, None, None)

    def read(self, packet: RadiusPacket, secret: bytes = b"", view: "RadiusMessageView | None" = None) -> DictView:
        """A ``DictView`` of just the attributes this plan reads, decoded now, in one pass.

        The template's generated code reads a ``DictView``'s dict inline, where a
        ``RadiusMessageView`` costs a method call, a cache probe and a converter call per
        read. Values are what ``RadiusMessageView.values`` gives (one value, or a list for
        a repeated attribute); attributes the template never reads are not decoded. The
        full view (``view``, made here if not given) is needed only for ``special`` names.
        """
        data: dict[str, Any] = {}
        by_key = self.by_key
        if by_key:
            decode = self.dictionary.decode
            repeated: list[str] = []
            for key, raw in packet.attributes:
                wanted = by_key.get(key)
                if wanted is None:
                    continue
                name, kind, definition, memo = wanted
                if kind == _MEMO:
                    value = memo.get(raw, memo)         # type: ignore[union-attr]
                    if value is memo:
                        value = remember(memo, _MEMO_SIZE, raw, decode(definition, raw))  # type: ignore[arg-type]
                elif kind == _UTF8:
                    try:
                        value = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        value = raw
                elif kind == _RAW:
                    value = raw
                else:
                    value = decode(definition, raw)
                if name in data:
                    if name not in repeated:
                        repeated.append(name)
                        data[name] = [data[name]]
                    data[name].append(value)
                else:
                    data[name] = value
        if self.special:
            if view is None:
                view = RadiusMessageView(packet, self.dictionary, secret)
            for name in self.special:
                found = view.values((name,))
                if found:
                    data[name] = found[0] if len(found) == 1 else list(found)
        return DictView(data)


def _decoding(definition: AttrDef) -> tuple[int, AttrDef, dict[bytes, Any] | None]:
    """(kind, definition, memo) for ``ReadPlan.by_key``."""
    if definition.type in _MEMO_TYPES:
        return _MEMO, definition, {}
    if definition.type == "string" and not definition.has_tag:
        return _UTF8, definition, None
    return _DECODE, definition, None


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

    def template_view(self, plan: ReadPlan) -> DictView:
        """A ``DictView`` of just the attributes ``plan`` reads (see ``ReadPlan.read``)."""
        return plan.read(self.packet, self.secret, self)

    def as_dict(self) -> dict[str, Any]:
        """Every attribute by name (lists for repeated ones): for logs and ``template explain``."""
        out: dict[str, Any] = {}
        for name in (self._raw if self._raw is not None else self._index()):
            values = self.values((name,))
            out[name] = values[0] if len(values) == 1 else values
        return out
