"""Sans-IO evapi framing: bytes in, decoded JSON objects (or frame errors) out.

Kamailio's evapi module frames each message as a netstring ``<len>:<payload>,``
by default (``netstring_format=1``); with ``netstring_format=0`` it writes the
bare JSON text with no delimiter, so consecutive objects must be split by
scanning braces. No sockets here: the asyncio adapter feeds bytes and writes
what ``encode`` returns, and tests feed captured bytes directly.

Error policy (why it differs per kind): a frame whose payload is not a JSON
object is reported and skipped, because its boundaries were known; a bad
netstring length header leaves no way to find the next frame, so the codec
reports a fatal ``FramingError`` and the adapter must drop the connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from agents.stream_buffer import take_pending

# A netstring length header longer than this many digits is garbage, not a length.
_MAX_LEN_DIGITS = 9
# Refuse frames larger than this (a dlg.list of many thousands of dialogs still fits).
DEFAULT_MAX_FRAME = 16 * 1024 * 1024


class FramingError(Exception):
    """The byte stream cannot be resynchronised: the connection must be closed."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded JSON object (``message``) and its raw payload bytes."""

    message: dict[str, Any]
    raw: bytes


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame whose boundaries were clear but whose payload is unusable."""

    raw: bytes
    reason: str


class EvapiCodec:
    """Incremental evapi decoder/encoder for one connection.

    ``feed(data)`` returns every complete item in order: ``Frame`` or
    ``BadFrame``. When the stream is corrupt beyond repair it still returns
    the good frames that came before the damage and sets ``error`` (a
    ``FramingError``); after that the codec ignores input and the adapter
    must close the connection.
    """

    def __init__(self, *, netstrings: bool = True, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.netstrings = netstrings
        self.max_frame = max_frame
        self._buf = bytearray()
        # Raw-JSON scanner state, kept between feeds so a long object is scanned once.
        self._scan_pos = 0
        self._depth = 0
        self._in_string = False
        self._escape = False
        self.error: FramingError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame | BadFrame]:
        if self.error is not None:
            return []
        out: list[Frame | BadFrame] = []
        try:
            if self.netstrings:
                self._drain_netstrings(data, out)
            else:
                self._buf += data
                self._drain_raw(out)
        except FramingError as exc:
            self.error = exc
            self._buf.clear()
        return out

    def encode(self, message: dict[str, Any]) -> bytes:
        """Serialise one outgoing message in this connection's framing."""
        payload = orjson.dumps(message)
        if self.netstrings:
            return b"%d:%s," % (len(payload), payload)
        return payload

    # -- netstrings -------------------------------------------------------

    def _drain_netstrings(self, data: bytes, out: list[Frame | BadFrame]) -> None:
        """Frames are cut from the bytes received (one copy per payload, none of the
        buffer) unless part of a frame is waiting from an earlier read; what is left over
        waits in ``_buf`` for the next one."""
        buf = take_pending(self._buf, data)
        n = len(buf)
        pos = 0
        while True:
            # Kamailio never sends whitespace between frames, but tolerate it.
            while pos < n and buf[pos] in b" \r\n\t":
                pos += 1
            colon = buf.find(b":", pos, pos + _MAX_LEN_DIGITS + 1)
            if colon < 0:
                header = buf[pos:pos + _MAX_LEN_DIGITS + 1]
                if len(header) > _MAX_LEN_DIGITS or (header and not header.isdigit()):
                    raise FramingError(f"bad netstring length header {header[:20]!r}")
                break
            header = buf[pos:colon]
            if not header.isdigit():
                raise FramingError(f"bad netstring length header {header[:20]!r}")
            length = int(header)
            if length > self.max_frame:
                raise FramingError(f"netstring length {length} exceeds limit {self.max_frame}")
            end = colon + 1 + length
            if n < end + 1:
                break
            if buf[end] != 0x2C:    # ','
                raise FramingError(f"netstring of length {length} not terminated by ','")
            out.append(_decode(buf[colon + 1:end]))
            pos = end + 1
        if pos < n:
            self._buf += memoryview(buf)[pos:]

    # -- raw JSON ---------------------------------------------------------

    def _drain_raw(self, out: list[Frame | BadFrame]) -> None:
        buf = self._buf
        while True:
            if self._depth == 0 and self._scan_pos == 0:
                start = buf.find(b"{")
                if start < 0:
                    junk = bytes(buf).strip()
                    if junk:
                        out.append(BadFrame(junk, "data outside a JSON object"))
                    buf.clear()
                    return
                if buf[:start].strip():
                    out.append(BadFrame(bytes(buf[:start]).strip(), "data outside a JSON object"))
                del buf[:start]
            end = self._scan_object_end()
            if end < 0:
                if len(buf) > self.max_frame:
                    raise FramingError(f"JSON object larger than {self.max_frame} bytes")
                return
            raw = bytes(buf[:end])
            del buf[:end]
            self._scan_pos = 0
            out.append(_decode(raw))

    def _scan_object_end(self) -> int:
        """Index just past the top-level object that starts the buffer, or -1."""
        buf = self._buf
        i = self._scan_pos
        depth, in_string, escape = self._depth, self._in_string, self._escape
        n = len(buf)
        while i < n:
            c = buf[i]
            if in_string:
                if escape:
                    escape = False
                elif c == 0x5C:  # backslash
                    escape = True
                elif c == 0x22:  # quote
                    in_string = False
            elif c == 0x22:
                in_string = True
            elif c == 0x7B or c == 0x5B:  # { [
                depth += 1
            elif c == 0x7D or c == 0x5D:  # } ]
                depth -= 1
                if depth == 0:
                    self._depth, self._in_string, self._escape = 0, False, False
                    return i + 1
            i += 1
        self._scan_pos, self._depth, self._in_string, self._escape = i, depth, in_string, escape
        return -1


def _decode(raw: bytes) -> Frame | BadFrame:
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return BadFrame(raw, f"invalid JSON: {exc}")
    if not isinstance(message, dict):
        return BadFrame(raw, f"JSON payload is a {type(message).__name__}, not an object")
    return Frame(message, raw)
