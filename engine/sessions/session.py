"""An active session, its charging runs, and the persisted form used for crash recovery.

One ``Session`` per CGRID; one ``RunState`` per charging run (``*default``, a
supplier run...). Usage is int ns (voice) / bytes (data) / units (sms), money
Decimal. Timers are not persisted: ``started_wall`` lets a recovered session
rebuild its monotonic origin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from engine.event import ABSENT, FIELD_GETTERS, PREPAID, ChargingEvent
from engine.sessions.gate import Gate
from engine.storage.base import PutSession
from engine.units import format_time, parse_time

ACTIVE = "active"
DISCONNECTING = "disconnecting"
CLOSED = "closed"

PREPAID_TYPES = frozenset({PREPAID, "*dynaprepaid"})


@dataclass(slots=True)
class RunState:
    """One charging run of a session: what was debited so far and how."""

    run_id: str
    event: ChargingEvent
    reserved: int = 0                 # usage already debited (granted), from the call start
    cost: Decimal = Decimal(0)        # money debited so far
    charges: list[Any] = field(default_factory=list)  # accounts' BalanceCharge records, for settle
    debits: int = 0                   # debits made (ledger ref sequence)

    @property
    def prepaid(self) -> bool:
        return self.event.request_type in PREPAID_TYPES


@dataclass(slots=True)
class Session:
    """A live session. ``start_fields`` is CGRateS's EventStart (agent extras kept), built on
    demand from the start event plus what later messages changed (memory: 100k live sessions)."""

    cgrid: str
    event: ChargingEvent              # the start event (the default run charges this same object)
    opts: dict[str, Any]
    runs: list[RunState]
    started_wall: datetime            # rating start: AnswerTime, else SetupTime, else initiate time
    initiated_wall: datetime          # when we opened it (wall clock, survives a restart)
    started_mono: int                 # monotonic ns at initiate (timer origin for the debit loop)
    debit_interval: int               # 0: manual mode (grants driven by the agent's updates)
    ttl: int                          # 0: no TTL
    link_name: str = ""
    tor: str = "*voice"
    chargeable: bool = True
    used: int = 0                     # usage the agent confirmed (manual mode)
    last_grant: int = 0               # the last grant given to the agent
    last_seen: int = 0                # monotonic ns of the last message from the agent
    cut_at: int | None = None         # usage from start at which credit ends (known after a short grant)
    state: str = ACTIVE
    warned: bool = False
    predicted_cut: int | None = None  # usage at which credit is expected to end (for the warning)
    end_reason: str = ""              # why we are ending it (disconnect cause)
    unconfirmed: bool = False         # recovered after a crash, or its agent went away: check soon
    # Timer deadlines (monotonic ns; None = not armed), kept by the Supervisor's single timer heap.
    at_cut: int | None = None
    at_tick: int | None = None
    at_warn: int | None = None
    at_ttl: int | None = None
    at_grace: int | None = None
    changes: dict[str, Any] | None = None  # fields later messages changed or added
    lock: Gate = field(default_factory=Gate)  # one operation at a time per session
    @property
    def start_fields(self) -> dict[str, Any]:
        """CGRateS-named EventStart: the start event with later changes applied.

        Built on demand, not kept: a cached copy would cost ~400 B per live session
        (100k sessions must stay near 2 KB each) to save ~1 µs per read.
        """
        fields = self.event.to_fields()
        if self.changes:
            fields.update(self.changes)
        return fields

    def merge(self, fields: dict[str, Any], protected: frozenset[str],
              current: dict[str, Any] | None = None) -> dict[str, Any]:
        """Keep what a later message changed (not the session identity or usage fields).

        Returns ``start_fields`` as they are after the merge (``current``, if given, is that
        dict from before and is updated in place), so a terminate builds them once for the
        merge and its CDRs instead of once each."""
        return self.merge_sent(fields, fields, protected, current)

    def merge_sent(self, normalized: dict[str, Any], sent: Any, protected: frozenset[str],
                   current: dict[str, Any] | None = None) -> dict[str, Any]:
        """``merge`` of the fields of ``normalized`` (a later event's ``to_fields()``) that the
        message itself carried (names in ``sent``), in ``normalized``'s order, without first
        building that filtered dict."""
        if current is None:
            current = self.start_fields
        for name, value in normalized.items():
            if name in sent and name not in protected and current.get(name) != value:
                self._change(name, value)
                current[name] = value
        return current

    def merge_event(self, event: ChargingEvent, sent: Any, protected: frozenset[str]) -> None:
        """``merge_sent(event.to_fields(), sent, protected)`` without building the event's
        dict nor ``start_fields`` (an update needs neither): each field the message carried
        is compared with the session's own value, in ``to_fields`` order (its extras, then
        the standard names), so ``changes`` comes out the same."""
        for name, value in event.extra.items():
            if name in sent and name not in protected:
                changes = self.changes
                old = changes[name] if changes is not None and name in changes else self.event.extra.get(name)
                if old != value:
                    self._change(name, value)
        for name, getter in FIELD_GETTERS:
            if name in sent and name not in protected:
                value = getter(event)
                if value is ABSENT:
                    continue
                changes = self.changes
                if changes is not None and name in changes:
                    old = changes[name]
                else:
                    old = getter(self.event)
                    if old is ABSENT:
                        old = None
                if old != value:
                    self._change(name, value)

    def _change(self, name: str, value: Any) -> None:
        if self.changes is None:
            self.changes = {}
        self.changes[name] = value

    @property
    def loop(self) -> bool:
        """Driven by our debit loop (some run is prepaid and an interval is set).

        Asked ~5 times per call (first grant, arming its timers): a plain loop, not
        ``any()`` over a generator."""
        if self.debit_interval <= 0:
            return False
        for run in self.runs:
            if run.prepaid:
                return True
        return False

    @property
    def origin(self) -> tuple[str, str]:
        return (self.event.origin_host, self.event.origin_id)

    def granted(self) -> int:
        """Usage covered by every prepaid run (the call may go on until here).

        Asked several times per slice of a loop call: a plain loop, no list and min()."""
        low: int | None = None
        for run in self.runs:
            if run.prepaid and (low is None or run.reserved < low):
                low = run.reserved
        return 0 if low is None else low

    def elapsed(self, now_mono: int) -> int:
        return max(0, now_mono - self.started_mono)

    def cancel_timers(self) -> None:
        self.at_cut = self.at_tick = self.at_warn = self.at_ttl = self.at_grace = None

    def snapshot_ops(self) -> list[Any]:
        """The storage op that persists the session as it is now (for crash recovery)."""
        return [PutSession(self.cgrid, encode_session(self))]


class _StoredRun(msgspec.Struct):
    run_id: str
    fields: dict[str, Any] | None    # None: the run charges the start event itself (start_fields)
    reserved: int
    cost: str
    charges: list[Any]
    debits: int


class _StoredSession(msgspec.Struct):
    cgrid: str
    start_fields: dict[str, Any]
    opts: dict[str, Any]
    runs: list[_StoredRun]
    started_wall: str
    initiated_wall: str
    debit_interval: int
    ttl: int
    link_name: str
    tor: str
    chargeable: bool
    used: int
    last_grant: int
    cut_at: int | None


# Values go to the encoder as they are: it writes Decimals as strings, dataclasses (the
# BalanceCharges) as objects, and anything it does not know through ``str`` -- the same bytes
# a ``msgspec.to_builtins`` pass first would give, without building the copies.
_ENC = msgspec.json.Encoder(decimal_format="string", enc_hook=str)


def encode_session(session: Session) -> bytes:
    """The blob storage keeps for an active session (JSON, readable with sqlite3)."""
    start_fields = session.start_fields
    stored = _StoredSession(
        cgrid=session.cgrid,
        start_fields=start_fields,
        opts=session.opts,
        # the default run charges the start event itself: while no later message changed a
        # field, its fields ARE start_fields, stored once (null here), not twice per snapshot
        runs=[_StoredRun(r.run_id, None if r.event is session.event and not session.changes
                         else r.event.to_fields(), r.reserved, str(r.cost), r.charges, r.debits)
              for r in session.runs],
        started_wall=format_time(session.started_wall),
        initiated_wall=format_time(session.initiated_wall),
        debit_interval=session.debit_interval,
        ttl=session.ttl,
        link_name=session.link_name,
        tor=session.tor,
        chargeable=session.chargeable,
        used=session.used,
        last_grant=session.last_grant,
        cut_at=session.cut_at,
    )
    return _ENC.encode(stored)


def decode_session(blob: bytes, *, charge_type: Any, now_mono: int, now_wall: datetime) -> Session:
    """Inverse of ``encode_session``; ``charge_type`` is accounts' BalanceCharge class.

    The monotonic origin is rebuilt from the wall-clock time the session was opened,
    so a recovered debit-loop session keeps counting from its real start."""
    stored = msgspec.json.decode(blob, type=_StoredSession)
    start_event = ChargingEvent.from_fields(stored.start_fields)
    runs = [
        RunState(
            run_id=r.run_id,
            # no fields: the run charged the start event itself (and does so again)
            event=start_event if r.fields is None else ChargingEvent.from_fields(r.fields),
            reserved=r.reserved,
            cost=Decimal(r.cost),
            charges=[msgspec.convert(c, charge_type, strict=False) for c in r.charges],
            debits=r.debits,
        )
        for r in stored.runs
    ]
    started = parse_time(stored.started_wall)
    initiated = parse_time(stored.initiated_wall)
    if started is None or initiated is None:
        raise ValueError(f"session {stored.cgrid}: stored without start time")
    age = int((now_wall - initiated).total_seconds() * 1_000_000_000)
    return Session(
        cgrid=stored.cgrid, event=start_event, opts=stored.opts, runs=runs,
        started_wall=started, initiated_wall=initiated, started_mono=now_mono - max(0, age), debit_interval=stored.debit_interval,
        ttl=stored.ttl, link_name=stored.link_name, tor=stored.tor, chargeable=stored.chargeable,
        used=stored.used, last_grant=stored.last_grant, cut_at=stored.cut_at, unconfirmed=True,
    )
