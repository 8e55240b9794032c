"""A later message's fields kept on the session: ``merge_event`` (what update uses, no
dicts built) must record exactly what the dict-based ``merge_sent`` does, in the
same order, since ``changes`` ends up in the snapshot and the CDR's fields."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.event import ChargingEvent
from engine.sessions.manager import _PROTECTED
from engine.sessions.session import RunState, Session

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
START = {"OriginID": "c1", "OriginHost": "h", "Account": "1001", "Destination": "1002",
         "AnswerTime": "2026-03-02T10:00:00Z", "Usage": "30s", "RatingGroup": "1", "Vendor": "x"}

# Fields a later message may carry, with values equal to or different from the start's.
_LATER = {
    "OriginID": st.just("c1"), "OriginHost": st.just("h"),
    "Account": st.sampled_from(["1001", "1002"]), "Subject": st.sampled_from(["1001", "S"]),
    "Destination": st.sampled_from(["1002", "1003"]), "Category": st.sampled_from(["call", "sms"]),
    "ToR": st.sampled_from(["*voice", "*data"]), "RequestType": st.sampled_from(["*prepaid", "*postpaid"]),
    "Tenant": st.sampled_from(["cgrates.org", "other"]), "Source": st.sampled_from(["", "kam"]),
    "SetupTime": st.sampled_from(["2026-03-02T10:00:00Z", "2026-03-02T09:59:58Z"]),
    "AnswerTime": st.sampled_from(["2026-03-02T10:00:00Z", "2026-03-02T10:00:01Z"]),
    "Usage": st.sampled_from(["30s", 10**9]), "LastUsed": st.just("10s"),
    "DisconnectCause": st.sampled_from(["", "NORMAL_CLEARING"]),
    "RatingGroup": st.sampled_from(["1", "2"]), "Vendor": st.sampled_from(["x", None]),
    "NewExtra": st.sampled_from(["a", "b"]),
}
later_messages = st.lists(
    st.dictionaries(st.sampled_from(sorted(_LATER)), st.none(), max_size=len(_LATER)).flatmap(
        lambda keys: st.fixed_dictionaries({k: _LATER[k] for k in keys})),
    min_size=1, max_size=3)


def _session() -> Session:
    event = ChargingEvent.from_fields(START)
    return Session(cgrid=event.cgrid, event=event, opts={}, runs=[RunState("*default", event)],
                   started_wall=T0, initiated_wall=T0, started_mono=0, debit_interval=0, ttl=0)


@settings(max_examples=300, deadline=None)
@given(later_messages)
def test_merge_event_records_what_merge_sent_does(messages: list[dict]) -> None:
    old, new = _session(), _session()
    for sent in messages:
        event = ChargingEvent.from_fields(sent)
        old.merge_sent(event.to_fields(), sent, _PROTECTED)
        new.merge_event(event, sent, _PROTECTED)
        assert list((old.changes or {}).items()) == list((new.changes or {}).items())
        assert list(old.start_fields.items()) == list(new.start_fields.items())


def test_a_changed_destination_is_kept_and_identity_is_not() -> None:
    session = _session()
    sent = {"OriginID": "c1", "OriginHost": "h", "Destination": "1003", "Usage": "45s", "Vendor": "y"}
    session.merge_event(ChargingEvent.from_fields(sent), sent, _PROTECTED)
    assert session.changes == {"Vendor": "y", "Destination": "1003"}
    fields = session.start_fields
    assert fields["Destination"] == "1003" and fields["Usage"] == 30 * 10**9 and fields["Vendor"] == "y"
