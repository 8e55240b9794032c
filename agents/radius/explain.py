"""``chargeway template explain --agent radius --message FILE``: load a RADIUS request.

Accepted files:
- ``*.hex``: the packet as hex (tshark "Copy as hex stream", the captures in this repo);
  the shared secret (for User-Password) comes from a sidecar ``<name>.meta.json``
  (``shared_secret``) or the ``RADIUS_SECRET`` environment variable;
- ``*.json``: ``{"req": {...}, "vars": {...}}`` or a bare attribute mapping (``DictView``);
- anything else: radclient input, ``Attribute = value`` per line or comma separated
  (what you would pipe into ``radclient``).
The variables are those the agent passes: ``*radReqType`` from the packet code
(Acct-Status-Type present means accounting), ``OriginHost`` the NAS identity.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

from agents.radius import codec
from agents.radius.dictionary import RadiusDictionary
from agents.radius.handler import REQ_ACCT, REQ_AUTH, nas_identity
from agents.radius.view import RadiusMessageView
from engine.templating import DictView

_LINE = re.compile(r'\s*([A-Za-z0-9][\w.:-]*)\s*[:+]?=\s*("(?:[^"\\]|\\.)*"|[^,]*)\s*(?:,|$)')


def load_message(path: str | Path, dictionary: RadiusDictionary | None = None) -> tuple[Any, dict[str, Any]]:
    path = Path(path)
    text = path.read_text(errors="replace").strip()
    if path.suffix.lower() == ".json":
        data = json.loads(text)
        if isinstance(data, dict) and isinstance(data.get("req"), dict):
            return DictView(data["req"]), dict(data.get("vars") or {})
        return DictView(data), {"*radReqType": REQ_ACCT if "Acct-Status-Type" in data else REQ_AUTH}
    dictionary = dictionary or RadiusDictionary.load()
    if path.suffix.lower() == ".hex":
        packet = codec.parse(bytes.fromhex(re.sub(r"\s+", "", text)))
        secret = _secret_for(path)
    else:
        packet = _from_radclient_text(text, dictionary, path)
        secret = b""
        if packet.get(codec.USER_PASSWORD) is not None:
            secret = os.environ.get("RADIUS_SECRET", "explain").encode()
            clear = packet.get(codec.USER_PASSWORD) or b""
            hidden = codec.encrypt_user_password(clear, secret, packet.authenticator)
            packet = dataclasses.replace(packet, attributes=[(k, hidden if k == codec.USER_PASSWORD else v)
                                                             for k, v in packet.attributes])
    view = RadiusMessageView(packet, dictionary, secret)
    accounting = packet.code == codec.ACCOUNTING_REQUEST
    variables = {"*radReqType": REQ_ACCT if accounting else REQ_AUTH,
                 "RemoteHost": "127.0.0.1", "RemotePort": 0,
                 "OriginHost": nas_identity(packet, "127.0.0.1")}
    return view, variables


def _secret_for(path: Path) -> bytes:
    meta = path.with_suffix(".meta.json")
    if meta.exists():
        secret = json.loads(meta.read_text()).get("shared_secret")
        if secret:
            return str(secret).encode()
    return os.environ.get("RADIUS_SECRET", "").encode()


def _from_radclient_text(text: str, dictionary: RadiusDictionary, path: Path) -> codec.RadiusPacket:
    attrs: list[tuple[codec.AttrKey, bytes]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        for match in _LINE.finditer(line):
            name, value = match.group(1), match.group(2).strip()
            if value.startswith('"') and value.endswith('"'):
                value = value[1:-1]
            attr_name, _, tag = name.partition(":")
            try:
                definition = dictionary.definition(attr_name)
            except KeyError as err:
                raise ValueError(f"{path}:{lineno}: {err.args[0]}") from None
            if definition.type in ("integer", "date") and value.isdigit():
                parsed: Any = int(value)
            else:
                parsed = value
            try:
                raw = dictionary.encode(definition, parsed, int(tag) if tag else 0)
            except (ValueError, TypeError) as err:
                raise ValueError(f"{path}:{lineno}: {name}: {err}") from None
            attrs.append((definition.key, raw))
    if not attrs:
        raise ValueError(f"{path}: no 'Attribute = value' lines")
    status = dictionary.definition("Acct-Status-Type").key
    code = codec.ACCOUNTING_REQUEST if any(k == status for k, _ in attrs) else codec.ACCESS_REQUEST
    return codec.parse(codec.encode_request(code, 0, attrs, b"explain"))
