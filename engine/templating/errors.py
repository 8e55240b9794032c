"""Errors of the template language: load-time (file, line) and run-time (processor, field).

Load-time errors stop start-up with ``file:line: reason`` so an operator fixes the
template before any traffic; run-time field errors carry enough for an agent to give
its protocol's answer (Diameter 5005 naming the AVP, RADIUS reject, evapi Error).
"""

from __future__ import annotations


class TemplateError(Exception):
    """A template that cannot be loaded: ``file:line: reason``."""

    def __init__(self, file: str, line: int | None, reason: str) -> None:
        self.file = file
        self.line = line
        self.reason = reason
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {reason}")


class TemplateFieldError(Exception):
    """A mandatory field found nothing (or nothing convertible) in the message.

    ``path`` is the field's source as written (``*req.Session-Id``); ``missing`` is the
    message path tuple (``("Session-Id",)``) so a Diameter agent can name the AVP.
    """

    def __init__(self, processor_id: str | None, tag: str, path: str,
                 missing: tuple[str, ...] = (), reason: str = "missing") -> None:
        self.processor_id = processor_id
        self.tag = tag
        self.path = path
        self.missing = missing
        self.reason = reason
        super().__init__(
            f"processor {processor_id!r} field {tag!r}: {reason} value at {path or '(constant)'}")


class ConversionError(Exception):
    """A converter or field type could not handle a value (internal; becomes a skip or
    a TemplateFieldError for mandatory fields)."""
