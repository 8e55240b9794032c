"""A cheap shallow copy of a ``ChargingEvent`` (each CDR needs the run's event with the
session's extra fields and disconnect cause).

``dataclasses.replace`` on the 19-field event costs ~2.7 µs (it rebuilds keyword arguments
and runs ``__init__``); a copy generated once from the class's own field list costs ~0.3 µs
and follows any field the event gains.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from engine.event import ChargingEvent


def _make_copier() -> Callable[[ChargingEvent], ChargingEvent]:
    names = [f.name for f in dataclasses.fields(ChargingEvent)]
    body = "".join(f"    new.{n} = event.{n}\n" for n in names)
    source = f"def copy_event(event):\n    new = __new(__cls)\n{body}    return new\n"
    env = {"__new": object.__new__, "__cls": ChargingEvent}
    exec(source, env)  # noqa: S102 - generated from the dataclass's own field names
    return env["copy_event"]


copy_event: Callable[[ChargingEvent], ChargingEvent] = _make_copier()
copy_event.__doc__ = "Shallow copy of ``event`` (same field objects), as ``copy.copy`` would give."
