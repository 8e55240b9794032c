"""``chargeway template explain --agent diameter --message FILE``: load a captured CCR.

Accepts what one finds in traces and fixtures: a hex dump (``0100010880000110...``, spaces,
newlines and ``0x`` allowed, as in tests/agents/diameter/captures/*.hex) or the raw binary
message. The view is what the template sees for the CCR's first credit-control unit
(its first MSCC), with the variables the agent would pass.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agents.diameter.codec import DiameterError, decode_message
from agents.diameter.view import ccr_view, unit_avps
from engine.templating import DictView

_HEX = re.compile(rb"^(?:0x)?[0-9a-fA-F\s:]+$")


def load_message(path: str | Path) -> tuple[DictView, dict[str, Any]]:
    raw = Path(path).read_bytes()
    stripped = raw.strip()
    if stripped and _HEX.match(stripped):
        text = re.sub(rb"0x|[\s:]", b"", stripped)
        try:
            raw = bytes.fromhex(text.decode())
        except ValueError as err:
            raise ValueError(f"{path}: not a hex dump: {err}") from None
    try:
        msg = decode_message(raw)
    except DiameterError as err:
        raise ValueError(f"{path}: not a Diameter message: {err.reason}") from None
    unit = unit_avps(msg)[0]
    variables: dict[str, Any] = {
        "*cmd": "CCR" if msg.command_code == 272 and msg.is_request else msg.name,
        "*app": "Credit Control", "*appid": msg.application_id,
        "OriginHost": str(msg.get("Origin-Host", "")), "OriginRealm": str(msg.get("Origin-Realm", "")),
        "RemoteHost": "127.0.0.1:3868", "Tenant": "", "ValidityTime": 300, "ZeroRated": False,
        "RatingGroup": unit.get("Rating-Group", "") if unit is not None else "",
        "ServiceIdentifier": unit.get("Service-Identifier", "") if unit is not None else "",
    }
    return ccr_view(msg, unit), variables
