"""Per-message evaluation state shared by filters, values and fields."""

from __future__ import annotations

from datetime import timezone, tzinfo
from typing import Any

from engine.templating.replybuilder import ReplyBuilder
from engine.templating.view import MessageView

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING", "__bool__": lambda self: False})()


class Ctx:
    """Everything a path can read or write while one message is processed."""

    __slots__ = ("req", "vars", "cgreq", "opts", "cgrep", "rep", "tmp", "processor_id", "tz")

    def __init__(self, req: MessageView | None, vars: dict[str, Any],
                 rep: ReplyBuilder | None = None) -> None:
        self.req = req
        self.vars = vars
        self.cgreq: dict[str, Any] = {}
        self.opts: dict[str, Any] = {}
        self.cgrep: dict[str, Any] = {}
        self.rep = rep if rep is not None else ReplyBuilder()
        self.tmp: dict[str, Any] = {}
        self.processor_id: str | None = None
        self.tz: tzinfo = timezone.utc
