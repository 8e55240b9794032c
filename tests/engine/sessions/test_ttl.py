"""Sessions that stop hearing from their agent are closed and charged for what was used."""

from __future__ import annotations

from decimal import Decimal

from engine.units import SECOND


def call(origin="c1", **extra):
    return {"OriginID": origin, "OriginHost": "h1", "Account": "1001", "Destination": "1002",
            "AnswerTime": "2026-03-02T10:00:00Z", **extra}


async def test_silent_manual_session_is_closed_after_its_grant_plus_ttl(engine):
    await engine.topup("1.00")
    s, clock, link = engine.sessions, engine.clock, engine.link
    opts = {"*sessionsDebitInterval": 0, "*sessionsTTL": "5s"}
    await s.initiate(call(Usage="30s"), opts, link=link)
    await clock.advance(20 * SECOND, s)
    await s.update(call(Usage="30s", LastUsed="20s"), opts)           # re-arms: 20 + 30 + 5
    await clock.advance(55 * SECOND - 1 - 20 * SECOND, s)
    assert len(s.active_sessions()) == 1
    await clock.advance(1, s)
    assert s.active_sessions() == []
    [(when, reason, event)] = link.disconnects
    assert reason == "SESSION_TIMEOUT" and when - clock.at(0) == 55 * SECOND
    [cdr] = await engine.cdrs()
    assert cdr["Usage"] == 50 * SECOND and cdr["Cost"] == 0.5         # used 20s + the last grant
    assert cdr["ExtraFields"]["DisconnectCause"] == "SESSION_TIMEOUT"
    assert engine.balance() == Decimal("0.50")
    # the agent's late terminate changes nothing
    await s.terminate(call(Usage="50s"), opts)
    assert engine.balance() == Decimal("0.50") and len(await engine.cdrs()) == 1


async def test_debit_loop_session_without_updates_is_checked_with_its_agent(make_engine):
    eng = await make_engine(session_ttl_debit_loop="60s")
    await eng.topup("5.00")
    s, clock, link = eng.sessions, eng.clock, eng.link
    link.alive = [("h1", "c1")]
    await s.initiate(call(), link=link)
    await clock.advance(60 * SECOND, s)
    assert len(s.active_sessions()) == 1                                # the switch still has it
    link.alive = []
    await clock.advance(60 * SECOND, s)
    assert s.active_sessions() == []
    assert [r for _, r, _ in link.disconnects] == ["SESSION_TIMEOUT"]
    [cdr] = await eng.cdrs()
    assert cdr["Usage"] == 120 * SECOND and eng.balance() == Decimal("3.80")


async def test_session_of_a_vanished_agent_is_closed_by_ttl(make_engine):
    eng = await make_engine(session_ttl_debit_loop="30s")
    await eng.topup("5.00")
    s, clock = eng.sessions, eng.clock
    await s.initiate(call(), link=eng.link)
    s.unregister_link(eng.link)                                         # agent connection lost
    await clock.advance(30 * SECOND, s)                                 # first check: nobody can tell
    assert len(s.active_sessions()) == 1
    await clock.advance(30 * SECOND, s)                                 # still silent a full TTL later
    assert s.active_sessions() == []
    [cdr] = await eng.cdrs()
    assert cdr["Usage"] == 60 * SECOND and cdr["Cost"] == 0.6


async def test_session_ttl_does_not_cut_debit_loop_calls_that_send_no_updates(make_engine):
    eng = await make_engine(session_ttl="20s", session_ttl_debit_loop="1h")
    await eng.topup("50.00")
    s, clock = eng.sessions, eng.clock
    await s.initiate(call(), link=eng.link)                                      # loop call
    await s.initiate(call("m", Usage="10s"), {"*sessionsDebitInterval": 0}, link=eng.link)  # manual call
    await clock.advance(31 * SECOND, s)
    assert [e["OriginID"] for e in s.active_sessions()] == ["c1"]                # manual one timed out
    await clock.advance(1800 * SECOND, s)
    assert [e["OriginID"] for e in s.active_sessions()] == ["c1"]


async def test_sessions_of_an_agent_that_went_away_are_checked_after_recovery_ttl(make_engine):
    eng = await make_engine(session_ttl_debit_loop="1h", recovery_ttl="20s")
    await eng.topup("50.00")
    s, clock, link = eng.sessions, eng.clock, eng.link
    await s.initiate(call("kept"), link=link)
    await s.initiate(call("lost"), link=link)
    await clock.advance(5 * SECOND, s)
    s.unregister_link(link)                           # connection to the switch lost
    await clock.advance(10 * SECOND, s)
    link.alive = [("h1", "kept")]
    s.register_link(link)                             # it reconnects, but only one call survived
    await clock.advance(10 * SECOND, s)
    assert [e["OriginID"] for e in s.active_sessions()] == ["kept"]
    [cdr] = await eng.cdrs()
    assert cdr["OriginID"] == "lost" and cdr["Usage"] == 25 * SECOND
    assert cdr["ExtraFields"]["DisconnectCause"] == "SESSION_TIMEOUT"
    await clock.advance(1800 * SECOND, s)              # the surviving call is on its normal TTL again
    assert [e["OriginID"] for e in s.active_sessions()] == ["kept"]


async def test_loop_calls_of_an_agent_that_stays_away_fall_back_to_the_loop_ttl(make_engine):
    eng = await make_engine(session_ttl_debit_loop="1h", recovery_ttl="20s")
    await eng.topup("50.00")
    s, clock = eng.sessions, eng.clock
    await s.initiate(call(), link=eng.link)
    s.unregister_link(eng.link)
    await clock.advance(30 * SECOND, s)
    assert len(s.active_sessions()) == 1          # nobody can say the call ended: keep billing it
    await s.terminate(call(Usage="95s"))           # its terminate arrives later: billed exactly
    [cdr] = await eng.cdrs()
    assert cdr["Cost"] == 0.95
