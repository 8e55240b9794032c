"""The session snapshot a restart rebuilds from: what it stores, and that it reads back."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import msgspec

from engine.accounts.debit import BalanceCharge
from engine.event import ChargingEvent
from engine.sessions.manager import _PROTECTED
from engine.sessions.session import RunState, Session, decode_session, encode_session

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
START = {"OriginID": "c1", "OriginHost": "h", "Account": "1001", "Destination": "1002",
         "AnswerTime": "2026-03-02T10:00:00Z", "Usage": "30s", "RatingGroup": "1"}


def _session(*, supplier: bool = False) -> Session:
    event = ChargingEvent.from_fields(START)
    runs = [RunState("*default", event, reserved=30 * 10**9, cost=Decimal("0.30"), debits=1,
                     charges=[BalanceCharge("u1", "main", "*monetary", Decimal("0.30"))])]
    if supplier:
        runs.append(RunState("supplier", ChargingEvent.from_fields({**START, "RequestType": "*rated",
                                                                    "Subject": "SUPPL"})))
    return Session(cgrid=event.cgrid, event=event, opts={"*sessionsDebitInterval": 0}, runs=runs,
                   started_wall=T0, initiated_wall=T0, started_mono=0, debit_interval=0, ttl=0,
                   used=20 * 10**9, last_grant=30 * 10**9)


def _restarted(blob: bytes) -> Session:
    return decode_session(blob, charge_type=BalanceCharge, now_mono=0, now_wall=T0)


def test_the_default_run_is_stored_once_and_charges_the_start_event_again() -> None:
    session = _session()
    blob = encode_session(session)
    assert msgspec.json.decode(blob)["runs"][0]["fields"] is None
    back = _restarted(blob)
    assert back.runs[0].event is back.event and back.start_fields == session.start_fields
    run = back.runs[0]
    assert (run.reserved, run.cost, run.debits, back.used, back.last_grant) == (
        30 * 10**9, Decimal("0.30"), 1, 20 * 10**9, 30 * 10**9)
    assert run.charges == session.runs[0].charges


def test_a_run_with_its_own_fields_keeps_them() -> None:
    session = _session(supplier=True)
    back = _restarted(encode_session(session))
    assert back.runs[1].event.subject == "SUPPL" and back.runs[1].event.request_type == "*rated"
    assert back.runs[0].event is back.event


def test_after_a_change_the_default_run_keeps_the_fields_it_charged() -> None:
    session = _session()
    sent = {"OriginID": "c1", "OriginHost": "h", "Destination": "1003"}
    session.merge_event(ChargingEvent.from_fields(sent), sent, _PROTECTED)
    back = _restarted(encode_session(session))
    assert back.event.destination == "1003" and back.runs[0].event.destination == "1002"


def test_a_snapshot_written_before_runs_were_stored_once_still_reads() -> None:
    """Snapshots of the previous format (the default run's fields written out in full)."""
    session = _session()
    stored = msgspec.json.decode(encode_session(session))
    stored["runs"][0]["fields"] = stored["start_fields"]
    back = _restarted(msgspec.json.encode(stored))
    assert back.runs[0].event == back.event and back.runs[0].event.to_fields() == session.start_fields
    assert back.runs[0].reserved == 30 * 10**9
