"""Sans-IO codec for CGRateS JSON-RPC: concatenated JSON values, no framing.

CGRateS (Go ``encoding/json`` streaming decoder) reads JSON values back to
back on one TCP stream; newlines are optional and a value may be split over
several reads or several values may arrive in one read. ``JsonStreamDecoder``
finds value boundaries without parsing (a small scanner that only tracks
nesting depth and string state), then decodes each complete value with
orjson. It never touches a socket: bytes in, decoded values out.

Messages are classified into ``Request`` (non-empty ``method``) and
``Response`` (everything else with an ``id``), the BiRPC rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from engine.units import decimal_to_json

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024

# Outside a string only these bytes change the scanner state.
_STRUCTURAL = re.compile(rb'[{}\[\]"]')
# Inside a string only a quote or a backslash matter.
_IN_STRING = re.compile(rb'["\\]')
_WHITESPACE = b" \t\r\n"


class ProtocolError(Exception):
    """The stream cannot continue (garbage between values, oversized message).

    The adapter answers once with this text as the error and closes the
    connection; other connections are unaffected.
    """


class MessageTooLarge(ProtocolError):
    """A single JSON value grew past the configured limit."""


@dataclass(slots=True)
class BadValue:
    """A complete, delimited value that is not valid JSON (reply an error, keep going)."""

    raw: bytes
    error: str


class JsonStreamDecoder:
    """Incremental splitter/decoder of concatenated JSON objects and arrays.

    ``feed(data)`` returns the values completed by ``data``: decoded Python
    objects, or ``BadValue`` for a delimited value that fails to parse. Raises
    ``ProtocolError`` when the stream is unrecoverable.
    """

    __slots__ = ("_buf", "_scan", "_depth", "_in_string", "_escape", "_start", "max_bytes")

    def __init__(self, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._buf = bytearray()
        self._reset_value()

    def _reset_value(self) -> None:
        self._scan = 0          # next byte of _buf to scan
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._start = -1        # offset of the current value's first byte, -1 = between values

    @property
    def buffered(self) -> int:
        """Bytes held for a value not yet complete."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Any]:
        if not data:
            return []
        # Fast path: nothing pending and the read is exactly one value
        # (the usual request/response pattern): let orjson do all the work.
        if not self._buf and len(data) <= self.max_bytes:
            stripped = data.strip(_WHITESPACE)
            if stripped[:1] in (b"{", b"[") and stripped[-1:] in (b"}", b"]"):
                try:
                    return [orjson.loads(stripped)]
                except orjson.JSONDecodeError:
                    pass  # several values, or a bad one: the scanner decides
        self._buf += data
        out: list[Any] = []
        while True:
            end = self._scan_value()
            if end < 0:
                break
            if end - self._start > self.max_bytes:
                raise MessageTooLarge(f"message larger than {self.max_bytes} bytes")
            raw = bytes(self._buf[self._start:end])
            del self._buf[:end]
            self._reset_value()
            try:
                out.append(orjson.loads(raw))
            except orjson.JSONDecodeError as exc:
                out.append(BadValue(raw, str(exc)))
        if self._start >= 0 and len(self._buf) - self._start > self.max_bytes:
            raise MessageTooLarge(f"message larger than {self.max_bytes} bytes")
        return out

    def _scan_value(self) -> int:
        """Advance the scanner; return the end offset of a completed value or -1."""
        buf = self._buf
        n = len(buf)
        pos = self._scan
        if self._start < 0:
            while pos < n and buf[pos] in _WHITESPACE:
                pos += 1
            if pos:
                del buf[:pos]  # only whitespace may sit between values
                n -= pos
                pos = 0
            if n == 0:
                self._scan = 0
                return -1
            first = buf[pos]
            if first not in b"{[":
                snippet = bytes(buf[pos:pos + 20])
                raise ProtocolError(f"invalid JSON-RPC stream: expected object, got {snippet!r}")
            self._start = pos
        while pos < n:
            if self._in_string:
                if self._escape:
                    self._escape = False
                    pos += 1
                    continue
                m = _IN_STRING.search(buf, pos)
                if m is None:
                    pos = n
                    break
                pos = m.end()
                if buf[m.start()] == 0x5C:  # backslash: skip the next byte
                    self._escape = True
                else:
                    self._in_string = False
                continue
            m = _STRUCTURAL.search(buf, pos)
            if m is None:
                pos = n
                break
            ch = buf[m.start()]
            pos = m.end()
            if ch == 0x22:  # "
                self._in_string = True
            elif ch in (0x7B, 0x5B):  # { [
                self._depth += 1
            else:  # } ]
                self._depth -= 1
                if self._depth == 0:
                    self._scan = pos
                    return pos
        self._scan = pos
        return -1


@dataclass(slots=True)
class Request:
    """A call: ``id`` None means a notification (no reply expected)."""

    method: str
    params: Any
    id: Any


@dataclass(slots=True)
class Response:
    id: Any
    result: Any
    error: str | None


def classify(value: Any) -> Request | Response | BadValue:
    """BiRPC rule: a non-empty ``method`` makes a request, anything else a response."""
    if isinstance(value, BadValue):
        return value
    if not isinstance(value, dict):
        return BadValue(b"", "JSON-RPC message must be an object")
    method = value.get("method")
    if method:
        if not isinstance(method, str):
            return BadValue(b"", "method must be a string")
        return Request(method, value.get("params"), value.get("id"))
    if "id" in value and ("result" in value or "error" in value):
        error = value.get("error")
        return Response(value.get("id"), value.get("result"), None if error is None else str(error))
    return BadValue(b"", "JSON-RPC message needs a method or a result")


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return decimal_to_json(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}")


_OPTS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    """orjson with Decimal money rendered as JSON numbers (CGRateS clients expect floats)."""
    return orjson.dumps(value, default=_default, option=_OPTS)


def encode_response(id_: Any, result: Any, error: str | None) -> bytes:
    """``{"id":..,"result":..,"error":..}`` plus the newline Go's encoder writes."""
    return dumps({"id": id_, "result": None if error else result, "error": error or None}) + b"\n"


def encode_request(method: str, param: Any, id_: Any) -> bytes:
    """A call with the one-element ``params`` array CGRateS uses."""
    return dumps({"method": method, "params": [param], "id": id_}) + b"\n"
