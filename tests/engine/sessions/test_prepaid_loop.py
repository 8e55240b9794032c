"""Prepaid debit loop driven by a manual clock: reservations, cut at the right second,
low-balance warning, refund on early hang-up, concurrent sessions sharing one balance."""

from __future__ import annotations

from decimal import Decimal

from engine.units import SECOND


def call(origin="c1", **extra):
    return {"OriginID": origin, "OriginHost": "h1", "Account": "1001", "Destination": "1002",
            "AnswerTime": "2026-03-02T10:00:00Z", **extra}


async def test_loop_reserves_each_interval_and_cuts_when_credit_ends(engine):
    await engine.topup("0.25")
    sessions, clock, link = engine.sessions, engine.clock, engine.link

    async def hang_up(event, reason):
        await sessions.terminate({**call(), "Usage": event["Usage"], "DisconnectCause": reason})

    link.on_disconnect = hang_up
    reply = await sessions.initiate(call(), link=link)
    assert reply.max_usage == 25 * SECOND and reply.reason == "INSUFFICIENT_CREDIT"
    assert engine.balance() == Decimal("0.15")       # first 10s reserved up front
    await clock.advance(10 * SECOND, sessions)
    assert engine.balance() == Decimal("0.05")       # second slice
    assert link.warnings == []
    await clock.advance(10 * SECOND - 1, sessions)
    assert link.warnings == []
    await clock.advance(1, sessions)
    # at 10s the look-ahead saw only 5s more: warn 5s (min_dur_low_balance) before the cut at 25s
    assert [(t - clock.at(0), r) for t, r in link.warnings] == [(20 * SECOND, 5 * SECOND)]
    assert engine.balance() == 0                     # last 5s reserved at 20s
    assert link.disconnects == []
    await clock.advance(5 * SECOND - 1, sessions)
    assert link.disconnects == []                    # not a nanosecond early
    await clock.advance(1, sessions)
    [(when, reason, event)] = link.disconnects
    assert when - clock.at(0) == 25 * SECOND and reason == "INSUFFICIENT_CREDIT"
    assert event["Usage"] == 25 * SECOND and event["OriginID"] == "c1"
    assert sessions.active_sessions() == []
    [cdr] = await engine.cdrs()
    assert cdr["Usage"] == 25 * SECOND and cdr["Cost"] == 0.25 and cdr["CostSource"] == "*sessions"
    assert cdr["ExtraFields"]["DisconnectCause"] == "INSUFFICIENT_CREDIT"
    assert engine.balance() == 0


async def test_early_hang_up_refunds_the_unused_reservation(engine):
    await engine.topup("1.00")
    sessions, clock = engine.sessions, engine.clock
    await sessions.initiate(call(), link=engine.link)
    await clock.advance(10 * SECOND, sessions)
    assert engine.balance() == Decimal("0.80")
    await clock.advance(3 * SECOND, sessions)
    assert (await sessions.terminate(call(Usage="13s"))).ok
    assert engine.balance() == Decimal("0.87")
    [cdr] = await engine.cdrs()
    assert cdr["Cost"] == 0.13 and cdr["Usage"] == 13 * SECOND
    assert cdr["CostDetails"]["Cost"] == 0.13
    assert engine.sessions.sessions == {}             # nothing left to supervise


async def test_concurrent_calls_share_the_pool_and_are_cut_at_their_own_second(engine):
    await engine.topup("0.25")
    sessions, clock, link = engine.sessions, engine.clock, engine.link
    ended: list[tuple[str, int]] = []

    async def hang_up(event, reason):
        ended.append((event["OriginID"], clock.monotonic() - clock.at(0)))
        await sessions.terminate({**call(event["OriginID"]), "Usage": event["Usage"]})

    link.on_disconnect = hang_up
    a = await sessions.initiate(call("A"), link=link)
    b = await sessions.initiate(call("B"), link=link)
    assert a.max_usage == 25 * SECOND and b.max_usage == 15 * SECOND  # B sees A's reservation
    assert engine.balance() == Decimal("0.05")
    await clock.advance(30 * SECOND, sessions)
    assert sorted(ended) == [("A", 15 * SECOND), ("B", 10 * SECOND)]
    cdrs = {c["OriginID"]: c for c in await engine.cdrs()}
    assert (cdrs["A"]["Cost"], cdrs["B"]["Cost"]) == (0.15, 0.10)
    assert engine.balance() == 0


async def test_disconnect_retries_then_ends_the_session_itself(engine):
    await engine.topup("0.05")
    sessions, clock, link = engine.sessions, engine.clock, engine.link
    link.fail_disconnects = 10                        # the switch never answers
    await sessions.initiate(call(), link=link)
    await clock.advance(5 * SECOND, sessions)
    assert link.disconnects == []
    assert sessions.active_sessions() == []
    [cdr] = await engine.cdrs()
    assert cdr["Usage"] == 5 * SECOND and cdr["Cost"] == 0.05
    assert cdr["ExtraFields"]["DisconnectCause"] == "INSUFFICIENT_CREDIT"
    assert link.fail_disconnects == 10 - 5            # terminate_attempts = 5


async def test_agent_that_never_terminates_is_closed_after_grace(engine):
    await engine.topup("0.05")
    sessions, clock, link = engine.sessions, engine.clock, engine.link
    await sessions.initiate(call(), link=link)
    await clock.advance(5 * SECOND, sessions)
    assert [r for _, r, _ in link.disconnects] == ["INSUFFICIENT_CREDIT"]
    assert len(sessions.active_sessions()) == 1       # waiting for the agent's terminate
    await clock.advance(10 * SECOND, sessions)        # terminate_grace
    assert sessions.active_sessions() == []
    [cdr] = await engine.cdrs()
    assert cdr["Usage"] == 5 * SECOND and cdr["Cost"] == 0.05


async def test_active_sessions_shape_and_filters(engine):
    await engine.topup("1.00")
    await engine.topup("1.00", account="1002")
    await engine.sessions.initiate(call("A"), link=engine.link)
    await engine.sessions.initiate(call("B", Account="1002"), link=engine.link)
    await engine.clock.advance(4 * SECOND, engine.sessions)
    everything = engine.sessions.active_sessions()
    assert len(everything) == 2
    [one] = engine.sessions.active_sessions(["*string:~*req.Account:1002"])
    assert one["OriginID"] == "B" and one["RunID"] == "*default" and one["Usage"] == 4 * SECOND
    assert one["DebitInterval"] == 10 * SECOND and one["DurationIndex"] == 10 * SECOND
    assert engine.sessions.active_sessions({"Account": "1001"})[0]["OriginID"] == "A"
    assert engine.sessions.active_sessions(["*prefix:~*req.Destination:99"]) == []
    assert await engine.sessions.force_disconnect(["*string:~*req.OriginID:A"]) == 1
    assert [c["OriginID"] for c in await engine.cdrs()] == ["A"]
    assert engine.link.disconnects[0][1] == "FORCED_DISCONNECT"
    assert engine.balance() == Decimal("0.96")        # charged 4s, reservation refunded


async def test_slice_shorter_than_the_rate_increment_is_not_paid_twice(engine):
    """30 s slices of a minute billed in one 60 s increment: the first slice pays the whole
    minute, so the call runs the minute it paid for (cut at 120 s with 0.70, not earlier)."""
    await engine.topup("0.70")
    sessions, clock, link = engine.sessions, engine.clock, engine.link
    link.on_disconnect = lambda event, reason: sessions.terminate(
        {**call(), "Destination": "1004", "Usage": event["Usage"]})
    reply = await sessions.initiate(call(Destination="1004"), {"*sessionsDebitInterval": "30s"}, link=link)
    assert reply.max_usage == 120 * SECOND
    assert engine.balance() == Decimal("0.10")                       # connect fee + first minute
    assert engine.sessions.active_sessions()[0]["DurationIndex"] == 60 * SECOND
    await clock.advance(120 * SECOND, sessions)
    [(when, reason, _)] = link.disconnects
    assert when - clock.at(0) == 120 * SECOND and reason == "INSUFFICIENT_CREDIT"
    [cdr] = await engine.cdrs()
    assert cdr["Usage"] == 120 * SECOND and cdr["Cost"] == 0.7 and engine.balance() == 0


async def test_lookup_by_origin_is_direct(engine):
    await engine.topup("1.00")
    for origin in ("A", "B", "C"):
        await engine.sessions.initiate(call(origin), link=engine.link)
    [found] = engine.sessions.active_sessions({"OriginID": "B", "OriginHost": "h1"})
    assert found["OriginID"] == "B"
    assert engine.sessions.active_sessions({"OriginID": "B", "OriginHost": "other"}) == []
    assert engine.sessions.active_sessions({"CGRID": found["CGRID"], "Account": "1002"}) == []


async def test_grant_never_exceeds_the_request(engine):
    await engine.topup("5.00")
    reply = await engine.sessions.initiate(call(Destination="1004", Usage="20s"), {"*sessionsDebitInterval": "10s"},
                                           link=engine.link)
    assert reply.max_usage == 20 * SECOND                                  # the slice paid a whole minute
    assert engine.sessions.active_sessions()[0]["DurationIndex"] == 60 * SECOND


async def test_timers_of_ended_calls_do_not_pile_up_and_a_live_call_is_still_cut(engine, monkeypatch):
    """Each loop call leaves a TTL deadline 3 h ahead; ended calls' deadlines must not stay queued
    for those 3 h (memory, GC), while a call still running keeps its cut at the right second."""
    import engine.sessions.supervisor as supervisor_module

    monkeypatch.setattr(supervisor_module, "_COMPACT_MIN", 16)
    await engine.topup("0.25")
    sessions, clock, link = engine.sessions, engine.clock, engine.link
    sessions.supervisor._compact_at = 16

    async def hang_up(event, reason):
        await sessions.terminate({**call("live"), "Usage": event["Usage"], "DisconnectCause": reason})

    link.on_disconnect = hang_up
    await sessions.initiate(call("live"), link=link)             # 25 s of credit: cut at 25 s
    for i in range(200):                                        # calls that end unanswered at once
        await sessions.initiate(call(f"short-{i}"), link=link)
        assert (await sessions.terminate(call(f"short-{i}", Usage="0s"))).ok
    assert engine.balance() == Decimal("0.15")                  # only the live call's first slice
    heap = sessions.supervisor._heap
    assert len(heap) <= 2 * 16 + 4                              # ~400 without compaction
    await clock.advance(25 * SECOND, sessions)
    assert [(when - clock.at(0), reason) for when, reason, _ in link.disconnects] \
        == [(25 * SECOND, "INSUFFICIENT_CREDIT")]
