"""What a sans-IO stream parser reads next, without copying a buffer it does not need."""

from __future__ import annotations


def take_pending(pending: bytearray, data: bytes | bytearray | memoryview) -> bytes:
    """The bytes to parse now: ``data`` itself when nothing waits from an earlier read (the
    usual case: whole frames per read), else what waited followed by ``data``; ``pending``
    is emptied either way and the parser puts back what is left of a partial frame.

    Why: appending every read to the buffer and slicing frames out of it copied each frame
    twice (evapi netstrings, Diameter messages)."""
    if pending:
        pending += data
        buf = bytes(pending)
        pending.clear()
        return buf
    return data if type(data) is bytes else bytes(data)
