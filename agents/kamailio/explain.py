"""``chargeway template explain --agent kamailio --message FILE``: load a captured evapi message.

Accepts what one finds in traces: a netstring frame (``188:{...},``), a bare
JSON object, or ``{"req": {...}, "vars": {...}}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from agents.kamailio.codec import BadFrame, EvapiCodec
from engine.templating import DictView


def load_message(path: str | Path) -> tuple[DictView, dict[str, Any]]:
    data = Path(path).read_bytes().strip()
    if data[:1].isdigit():
        codec = EvapiCodec(netstrings=True)
        items = codec.feed(data)
        if codec.error is not None:
            raise ValueError(f"{path}: {codec.error}")
        if not items:
            raise ValueError(f"{path}: incomplete netstring")
        first = items[0]
        if isinstance(first, BadFrame):
            raise ValueError(f"{path}: {first.reason}")
        message: dict[str, Any] = first.message
    else:
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON: {exc}") from None
        if not isinstance(message, dict):
            raise ValueError(f"{path}: expected a JSON object")
    extra_vars: dict[str, Any] = {}
    if "req" in message and isinstance(message["req"], dict):
        extra_vars = dict(message.get("vars") or {})
        message = message["req"]
    name = str(message.get("event", ""))
    variables = {"*event": name, "*cmd": name, "OriginHost": "127.0.0.1:8448",
                 "RemoteHost": "127.0.0.1:8448"}
    variables.update(extra_vars)
    return DictView(message), variables
