"""The agent end to end over loopback TCP: fake Kamailio <-> agent <-> kamailio.yaml <-> engine stub.

The engine here records what it was asked and answers a set Reply, so these
tests pin the mapping (both field-name generations, reserved keys, units) and
the bytes Kamailio gets back. Real-engine, real-Kamailio tests live in
tests/integration/kamailio.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from agents.kamailio.agent import ConnConfig, KamailioAgent
from agents.kamailio.client import Backoff
from engine.errors import ChargingError
from engine.reply import Reply
from engine.storage.deferral import writes_are_unacknowledged
from engine.templating import TemplateRunner, load_template
from engine.units import MILLISECOND, SECOND

from .fake_evapi import FakeEvapi

REPO = Path(__file__).resolve().parents[3]
CAPTURES = Path(__file__).parent / "captures"


class RecordingSessions:
    """Stands in for SessionManager: records every call, answers ``replies[method]``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict, dict, Any]] = []
        self.replies: dict[str, Reply | Exception] = {}
        self.links: list[Any] = []
        self.external: list[dict] = []  # what active_sessions() reports
        self.unacknowledged: list[tuple[str, bool]] = []  # may the engine defer this call's commit?

    def register_link(self, link: Any) -> None:
        self.links.append(link)

    def unregister_link(self, link: Any) -> None:
        self.links.remove(link)

    async def _answer(self, method: str, fields: dict, opts: dict | None, link: Any = None) -> Reply:
        self.calls.append((method, dict(fields), dict(opts or {}), link))
        self.unacknowledged.append((method, writes_are_unacknowledged()))
        answer = self.replies.get(method, Reply())
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def authorize(self, fields, opts=None):
        return await self._answer("authorize", fields, opts)

    async def initiate(self, fields, opts=None, link=None):
        return await self._answer("initiate", fields, opts, link)

    async def terminate(self, fields, opts=None):
        return await self._answer("terminate", fields, opts)

    async def process_message(self, fields, opts=None, *, debit=True):
        return await self._answer("process_message", fields, opts)

    async def process_cdr(self, fields, opts=None):
        return await self._answer("process_cdr", fields, opts)

    def active_sessions(self, filters=None) -> list[dict]:
        return [e for e in self.external if all(e.get(k) == v for k, v in (filters or {}).items())]

    def methods(self) -> list[str]:
        return [c[0] for c in self.calls]


async def until(predicate, timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


@pytest.fixture
async def rig():
    fake = await FakeEvapi().start()
    sessions = RecordingSessions()
    template = load_template(REPO / "templates" / "kamailio.yaml", agent="kamailio")
    agent = KamailioAgent(sessions, TemplateRunner(template, sessions), [ConnConfig(fake.address)],
                          backoff=Backoff(0.05, 0.2))
    await agent.start()
    await fake.wait_connections(1)
    yield fake, sessions, agent
    await agent.stop()
    await fake.stop()


AUTH = {"event": "CGR_AUTH_REQUEST", "tr_index": "9986", "tr_label": "1985599590",
        "cgr_flags": "*accounts", "reply_route": "CGR_SESSIONAUTH_REPLY", "Tenant": "cgrates.org",
        "RequestType": "*prepaid", "OriginID": "1-5868@127.0.0.1", "Account": "1001",
        "Destination": "1002", "SetupTime": "1795364999.012808"}


async def test_auth_request_maps_fields_and_replies_integer_seconds(rig) -> None:
    fake, sessions, agent = rig
    sessions.replies["authorize"] = Reply(max_usage=90 * SECOND + 900 * MILLISECOND)
    fake.send(AUTH)
    reply = await fake.next()
    assert reply == {"Event": "CGR_SESSIONAUTH_REPLY", "TransactionIndex": "9986",
                     "TransactionLabel": "1985599590", "Attributes": "", "ResourceAllocation": "",
                     "MaxUsage": 90, "Routes": "", "Thresholds": "", "StatQueues": "", "Error": ""}
    [(method, fields, _, _)] = sessions.calls
    assert method == "authorize"
    assert fields["Account"] == "1001" and fields["Destination"] == "1002"
    assert fields["RequestType"] == "*prepaid" and fields["OriginID"] == "1-5868@127.0.0.1"
    assert fields["OriginHost"] == fake.address and fields["SetupTime"] == "1795364999.012808"
    # Reserved keys steer the agent; they never reach the engine event.
    assert not {"event", "tr_index", "tr_label", "cgr_flags", "reply_route"} & set(fields)


@pytest.mark.parametrize("reply, max_usage, error", [
    (Reply(max_usage=-1), -1, ""),
    (Reply(max_usage=0, reason="INSUFFICIENT_CREDIT"), 0, ""),
    (Reply(max_usage=999 * MILLISECOND), 0, ""),  # under a second is no second (CGRateS truncates)
    (ChargingError("ACCOUNT_NOT_FOUND"), 0, "ACCOUNT_NOT_FOUND"),
])
async def test_auth_reply_max_usage_and_error(rig, reply, max_usage, error) -> None:
    fake, sessions, _ = rig
    sessions.replies["authorize"] = reply
    fake.send(AUTH)
    got = await fake.next()
    assert (got["MaxUsage"], got["Error"]) == (max_usage, error)
    assert got["TransactionIndex"] == "9986"


async def test_attributes_go_out_as_key_colon_value_list(rig) -> None:
    fake, sessions, _ = rig
    sessions.replies["authorize"] = Reply(max_usage=-1, attributes={"Subject": "1001", "Pin": "42"})
    fake.send(AUTH)
    assert (await fake.next())["Attributes"] == "Subject:1001,Pin:42"


async def test_2015_capture_auth_uses_cgr_names_and_default_reply_event(rig) -> None:
    fake, sessions, _ = rig
    sessions.replies["authorize"] = Reply(max_usage=-1)
    fake.send_raw((CAPTURES / "evapi_cgr_auth_request.netstring").read_bytes())
    got = await fake.next()
    assert got["Event"] == "CGR_AUTH_REPLY" and got["TransactionIndex"] == "35215"
    assert got["TransactionLabel"] == "852281699"
    fields = sessions.calls[0][1]
    assert (fields["Account"], fields["Destination"], fields["RequestType"], fields["SetupTime"]) == \
        ("1001", "1002", "*postpaid", "1420142013")


async def test_request_type_defaults_to_rated(rig) -> None:
    fake, sessions, _ = rig
    fake.send({k: v for k, v in AUTH.items() if k != "RequestType"})
    await fake.next()
    assert sessions.calls[0][1]["RequestType"] == "*rated"


async def test_2015_call_start_and_end_initiate_then_terminate_with_seconds_usage(rig) -> None:
    fake, sessions, agent = rig
    fake.send_raw((CAPTURES / "evapi_cgr_call_start.netstring").read_bytes()
                  + (CAPTURES / "evapi_cgr_call_end.netstring").read_bytes())
    await until(lambda: len(sessions.calls) == 2)
    (m1, start, opts, link), (m2, end, _, _) = sessions.calls
    assert (m1, m2) == ("initiate", "terminate")  # terminate writes the CDR: no ProcessCDR after it
    assert link is agent.links[0] and sessions.links == agent.links
    assert start["h_entry"] == "2395" and start["h_id"] == "2711"
    assert start["OriginID"] == "fcab096696848e58191ed79fdd732751@0:0:0:0:0:0:0:0"
    assert start["AnswerTime"] == "1420142016" and opts["*sessionsDebitInterval"] == 5 * SECOND
    assert end["Usage"] == 6 * SECOND and end["RequestType"] == "*postpaid"
    assert end["OriginID"] == start["OriginID"] and end["OriginHost"] == fake.address
    assert not agent.links[0].calls  # tracked at start, released at end


async def test_only_events_kamailio_awaits_no_answer_for_may_defer_their_commit(rig) -> None:
    """CGR_CALL_START/END get no reply, so their writes may share a later commit; an
    authorization is answered and must never wait for company."""
    fake, sessions, agent = rig
    fake.send(AUTH)
    await fake.next()
    fake.send_raw((CAPTURES / "evapi_cgr_call_start.netstring").read_bytes()
                  + (CAPTURES / "evapi_cgr_call_end.netstring").read_bytes())
    await until(lambda: len(sessions.calls) == 3)
    assert sessions.unacknowledged == [("authorize", False), ("initiate", True), ("terminate", True)]


async def test_ms_usage_from_the_chargeway_cfg_is_exact(rig) -> None:
    fake, sessions, _ = rig
    fake.send({"event": "CGR_CALL_END", "OriginID": "c1", "Account": "1001", "Destination": "1002",
               "AnswerTime": "1795439929.414720", "Usage": "2504ms", "h_entry": "1", "h_id": "2"})
    await until(lambda: sessions.calls)
    assert sessions.calls[0][1]["Usage"] == 2504 * MILLISECOND


async def test_refused_call_start_is_disconnected_at_once(rig) -> None:
    fake, sessions, agent = rig
    sessions.replies["initiate"] = Reply(max_usage=0, reason="INSUFFICIENT_CREDIT")
    fake.send({"event": "CGR_CALL_START", "h_entry": "17", "h_id": "42", "OriginID": "c2",
               "Account": "1001", "Destination": "1002", "AnswerTime": "1795439929"})
    assert await fake.next() == {"Event": "CGR_SESSION_DISCONNECT", "HashEntry": "17", "HashId": "42",
                                 "Reason": "INSUFFICIENT_CREDIT"}
    assert not agent.links[0].calls


async def test_engine_disconnect_goes_to_the_connection_of_the_session(rig) -> None:
    fake, sessions, agent = rig
    fake.send({"event": "CGR_CALL_START", "h_entry": "5", "h_id": "6", "OriginID": "c3",
               "Account": "1001", "Destination": "1002", "AnswerTime": "1795439929"})
    await until(lambda: sessions.calls)
    link = sessions.calls[0][3]
    start_event = sessions.calls[0][1]
    await link.disconnect_session({**start_event, "Usage": 10 * SECOND}, "INSUFFICIENT_CREDIT")
    assert await fake.next() == {"Event": "CGR_SESSION_DISCONNECT", "HashEntry": "5", "HashId": "6",
                                 "Reason": "INSUFFICIENT_CREDIT"}


async def test_malformed_frames_are_skipped_nothing_charged_connection_kept(rig, caplog) -> None:
    fake, sessions, agent = rig
    fake.send_raw(b'12:{"event":"CG,')                      # bad JSON inside a good netstring
    fake.send_raw(b'9:[1,2,3,4],')                           # JSON but not an object
    fake.send({"event": "CGR_NONSENSE", "Account": "1001"})  # unknown event
    fake.send({"Account": "1001", "Usage": "60"})            # no event at all
    fake.send({"event": "CGR_CALL_START", "OriginID": "x", "Account": "1001"})  # no h_entry/h_id
    fake.send(AUTH)
    got = await fake.next()
    assert got["TransactionIndex"] == "9986"
    await asyncio.sleep(0.1)
    assert sessions.methods() == ["authorize"]  # only the good frame reached the engine
    assert fake.connections == 1 and fake.closed_connections == 0
    assert "invalid JSON" in caplog.text and "CGR_NONSENSE" in caplog.text
    assert agent.skipped == 2


async def test_bad_netstring_length_reconnects_and_charges_nothing(rig) -> None:
    fake, sessions, _ = rig
    fake.send_raw(b'99999999999999:{"event":"CGR_CALL_END","Usage":"60"},')
    await fake.wait_connections(2)
    fake.send(AUTH)
    assert (await fake.next())["TransactionIndex"] == "9986"
    assert sessions.methods() == ["authorize"]


async def test_reconnect_reconciles_calls_that_ended_meanwhile(rig) -> None:
    fake, sessions, agent = rig
    answered = time.time() - 3
    for origin, h_id in (("gone", "1"), ("alive", "2")):
        fake.send({"event": "CGR_CALL_START", "h_entry": "9", "h_id": h_id, "OriginID": origin,
                   "RequestType": "*prepaid", "Account": "1001", "Destination": "1002",
                   "AnswerTime": f"{answered:.6f}"})
    await until(lambda: len(agent.links[0].calls) == 2)
    port = fake.port
    await fake.stop()  # Kamailio restarts
    await until(lambda: agent.links[0].lost_at is not None)
    lost_at = agent.links[0].lost_at
    await fake.start(port)
    assert await fake.next() == {"Event": "CGR_DLG_LIST"}
    fake.send({"event": "CGR_DLG_LIST_REPLY", "jsonrpl_body": {"jsonrpc": "2.0", "id": 1, "result": [
        {"h_entry": 9, "h_id": 2, "call-id": "alive", "state": 4}]}})
    await until(lambda: "terminate" in sessions.methods())
    [(_, fields, _, _)] = [c for c in sessions.calls if c[0] == "terminate"]
    assert fields["OriginID"] == "gone" and fields["h_id"] == "1"
    assert abs(fields["Usage"] - (lost_at - answered) * SECOND) < 0.01 * SECOND
    assert set(agent.links[0].calls) == {"alive"}


async def test_process_message_with_transaction_gets_a_reply(rig) -> None:
    fake, sessions, _ = rig
    sessions.replies["process_message"] = Reply(max_usage=1)
    fake.send({"event": "CGR_PROCESS_MESSAGE", "tr_index": "1", "tr_label": "2", "OriginID": "m1",
               "Account": "1001", "Destination": "1002", "SetupTime": "1795439929"})
    got = await fake.next()
    assert got["Event"] == "CGR_PROCESS_MESSAGE" and got["TransactionIndex"] == "1"
    [(method, fields, _, _)] = sessions.calls
    assert method == "process_message" and fields["ToR"] == "*sms" and fields["Usage"] == 1


async def test_process_cdr(rig) -> None:
    fake, sessions, _ = rig
    fake.send({"event": "CGR_PROCESS_CDR", "OriginID": "c9", "Account": "1001", "Destination": "1002",
               "AnswerTime": "1795439929", "Usage": "61"})
    await until(lambda: sessions.calls)
    [(method, fields, _, _)] = sessions.calls
    assert method == "process_cdr" and fields["Usage"] == 61 * SECOND


@pytest.mark.parametrize("reported, billed", [("10011ms", 10 * SECOND), ("9500ms", 9500 * MILLISECOND),
                                               ("15000ms", 15 * SECOND)])
async def test_call_cut_for_credit_is_billed_up_to_the_cut(rig, reported, billed) -> None:
    fake, sessions, agent = rig
    start = {"event": "CGR_CALL_START", "h_entry": "5", "h_id": "6", "OriginID": "cut",
             "Account": "1001", "Destination": "1002", "AnswerTime": "1795439929"}
    fake.send(start)
    await until(lambda: sessions.calls)
    link, start_event = sessions.calls[0][3], sessions.calls[0][1]
    await link.disconnect_session({**start_event, "Usage": 10 * SECOND}, "INSUFFICIENT_CREDIT")
    await fake.next()
    fake.send({**start, "event": "CGR_CALL_END", "Usage": reported})
    await until(lambda: "terminate" in sessions.methods())
    [end] = [c[1] for c in sessions.calls if c[0] == "terminate"]
    assert end["Usage"] == billed
    assert not link.credit_cuts


async def test_sessions_restored_by_the_engine_are_reconciled_on_connect() -> None:
    """After a chargeway restart the engine holds sessions this agent never saw start."""
    fake = await FakeEvapi().start()
    sessions = RecordingSessions()
    sessions.external = [
        {"OriginID": "ended", "OriginHost": fake.address, "Tenant": "cgrates.org", "Account": "1001"},
        {"OriginID": "up", "OriginHost": fake.address, "Tenant": "cgrates.org", "Account": "1001"},
        {"OriginID": "other", "OriginHost": "10.0.0.9:8448", "Tenant": "cgrates.org", "Account": "1001"},
    ]
    template = load_template(REPO / "templates" / "kamailio.yaml", agent="kamailio")
    agent = KamailioAgent(sessions, TemplateRunner(template, sessions), [ConnConfig(fake.address)],
                          backoff=Backoff(0.05, 0.2))
    await agent.start()
    try:
        assert await fake.next() == {"Event": "CGR_DLG_LIST"}
        fake.send({"event": "CGR_DLG_LIST_REPLY", "jsonrpl_body": {"jsonrpc": "2.0", "id": 1, "result": [
            {"h_entry": 1, "h_id": 2, "call-id": "up"}]}})
        await until(lambda: "terminate" in sessions.methods())
        await asyncio.sleep(0.05)
        terminated = [c[1] for c in sessions.calls if c[0] == "terminate"]
        assert terminated == [{"OriginID": "ended", "OriginHost": fake.address, "Tenant": "cgrates.org",
                               "Account": "1001", "DisconnectCause": "DIALOG_LOST"}]
    finally:
        await agent.stop()
        await fake.stop()


async def test_no_dlg_list_on_connect_when_nothing_to_reconcile(rig) -> None:
    fake, sessions, _ = rig
    fake.send(AUTH)
    assert (await fake.next())["Event"] == "CGR_SESSIONAUTH_REPLY"  # not a CGR_DLG_LIST first


async def test_duplicate_call_start_does_not_cut_the_running_call(rig) -> None:
    fake, sessions, agent = rig
    sessions.replies["initiate"] = ChargingError("EXISTS")
    fake.send({"event": "CGR_CALL_START", "h_entry": "17", "h_id": "42", "OriginID": "dup",
               "Account": "1001", "Destination": "1002", "AnswerTime": "1795439929"})
    await until(lambda: sessions.calls)
    fake.send(AUTH)  # the next thing on the wire is this reply, not a CGR_SESSION_DISCONNECT
    assert (await fake.next())["Event"] == "CGR_SESSIONAUTH_REPLY"


async def test_authorization_that_waits_inside_the_engine_still_gets_its_reply(rig) -> None:
    """Auth runs eagerly in the read callback; an engine that awaits must resume correctly."""
    fake, sessions, _ = rig
    original = sessions.authorize

    async def slow_authorize(fields, opts=None):
        await asyncio.sleep(0)                 # a bare yield
        await asyncio.sleep(0.02)              # a real future
        return await original(fields, opts)

    sessions.authorize = slow_authorize
    sessions.replies["authorize"] = Reply(max_usage=30 * SECOND)
    for index in ("1", "2", "3"):
        fake.send({**AUTH, "tr_index": index})
    replies = sorted([(await fake.next())["TransactionIndex"] for _ in range(3)])
    assert replies == ["1", "2", "3"] and sessions.methods() == ["authorize"] * 3


async def test_two_kamailios_each_session_is_cut_through_its_own_connection() -> None:
    fake_a, fake_b = await FakeEvapi().start(), await FakeEvapi().start()
    sessions = RecordingSessions()
    template = load_template(REPO / "templates" / "kamailio.yaml", agent="kamailio")
    agent = KamailioAgent(sessions, TemplateRunner(template, sessions),
                          [ConnConfig(fake_a.address, alias="kamA"), ConnConfig(fake_b.address)],
                          backoff=Backoff(0.05, 0.2))
    await agent.start()
    try:
        await fake_a.wait_connections(1)
        await fake_b.wait_connections(1)
        for fake, h_id in ((fake_a, "1"), (fake_b, "2")):
            fake.send({"event": "CGR_CALL_START", "h_entry": "7", "h_id": h_id, "OriginID": "same-call-id",
                       "Account": "1001", "Destination": "1002", "AnswerTime": "1795439929"})
        await until(lambda: len(sessions.calls) == 2)
        by_host = {c[1]["OriginHost"]: c for c in sessions.calls}
        assert set(by_host) == {"kamA", fake_b.address}  # distinct sessions (CGRID uses OriginHost)
        _, event_b, _, link_b = by_host[fake_b.address]
        await link_b.disconnect_session(event_b, "INSUFFICIENT_CREDIT")
        assert (await fake_b.next())["HashId"] == "2"
        assert fake_a.received.empty()
        assert [link.name for link in sessions.links] == ["kamailio:kamA", f"kamailio:{fake_b.address}"]
    finally:
        await agent.stop()
        await fake_a.stop()
        await fake_b.stop()


async def test_unreserved_keys_reach_the_engine_event_as_cgrates_copies_them(rig) -> None:
    fake, sessions, _ = rig
    fake.send({**AUTH, "X-Carrier": "acme", "cgr_supplier": "s1", "Account": "1001"})
    await fake.next()
    fields = sessions.calls[0][1]
    assert fields["X-Carrier"] == "acme" and fields["cgr_supplier"] == "s1"
    assert fields["Account"] == "1001" and fields["SetupTime"] == "1795364999.012808"
    assert not {"event", "tr_index", "tr_label", "cgr_flags", "reply_route"} & set(fields)
