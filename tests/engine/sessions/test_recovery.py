"""Restart recovery: open sessions come back from storage, closing ones finish, nothing twice."""

from __future__ import annotations

from decimal import Decimal

from conftest import build_engine

from engine.units import SECOND


def call(origin="c1", **extra):
    return {"OriginID": origin, "OriginHost": "h1", "Account": "1001", "Destination": "1002",
            "AnswerTime": "2026-03-02T10:00:00Z", **extra}


async def shutdown(eng) -> None:
    await eng.sessions.stop()
    await eng.storage.close()


async def test_open_sessions_survive_a_restart_and_settle_exactly(tmp_path):
    eng = await build_engine(tmp_path)
    await eng.topup("1.00")
    await eng.sessions.initiate(call("loop"), link=eng.link)
    await eng.sessions.initiate(call("manual", Usage="30s"), {"*sessionsDebitInterval": 0}, link=eng.link)
    await eng.clock.advance(12 * SECOND, eng.sessions)
    assert eng.balance() == Decimal("0.50")             # loop: 20s reserved, manual: 30s
    await shutdown(eng)

    eng = await build_engine(tmp_path, clock=eng.clock)
    try:
        recovered = {e["OriginID"]: e for e in eng.sessions.active_sessions()}
        assert set(recovered) == {"loop", "manual"}
        assert recovered["loop"]["DurationIndex"] == 20 * SECOND
        assert eng.balance() == Decimal("0.50")
        await eng.clock.advance(3 * SECOND, eng.sessions)   # the loop resumes from the call's real start
        await eng.sessions.terminate(call("loop", Usage="15s"))
        await eng.sessions.terminate(call("manual", Usage="25s"), {"*sessionsDebitInterval": 0})
        assert eng.balance() == Decimal("0.60")
        cdrs = {c["OriginID"]: c["Cost"] for c in await eng.cdrs()}
        assert cdrs == {"loop": 0.15, "manual": 0.25}
        assert await eng.accounts.audit("cgrates.org", "1001") == []
        assert await eng.storage.load_sessions() == {}
    finally:
        await shutdown(eng)


async def test_recovered_session_is_closed_by_recovery_ttl_if_its_agent_forgot_it(tmp_path):
    eng = await build_engine(tmp_path)
    await eng.topup("1.00")
    await eng.sessions.initiate(call("manual", Usage="30s"), {"*sessionsDebitInterval": 0}, link=eng.link)
    await shutdown(eng)
    eng = await build_engine(tmp_path, clock=eng.clock, recovery_ttl="60s")
    try:
        assert len(eng.sessions.active_sessions()) == 1
        await eng.clock.advance(90 * SECOND, eng.sessions)   # 30s grant + 60s recovery TTL
        assert eng.sessions.active_sessions() == []
        [cdr] = await eng.cdrs()
        assert cdr["Usage"] == 30 * SECOND and cdr["ExtraFields"]["DisconnectCause"] == "SESSION_TIMEOUT"
        assert eng.balance() == Decimal("0.70")
    finally:
        await shutdown(eng)


async def test_crash_between_settle_and_cdr_finishes_the_close_once(tmp_path):
    eng = await build_engine(tmp_path)
    await eng.topup("1.00")
    await eng.sessions.initiate(call("x", Usage="30s"), {"*sessionsDebitInterval": 0}, link=eng.link)
    session = eng.sessions.sessions[next(iter(eng.sessions.sessions))]
    # What terminate does first: settle at 18s (refund 12s) ... then the process dies.
    await eng.sessions.billing.settle(session.cgrid, session.runs[0], session.started_wall, 18 * SECOND)
    assert eng.balance() == Decimal("0.82")
    await shutdown(eng)

    eng = await build_engine(tmp_path, clock=eng.clock)
    try:
        assert eng.sessions.active_sessions() == []          # finished during recovery
        [cdr] = await eng.cdrs()
        assert (cdr["Usage"], cdr["Cost"]) == (18 * SECOND, 0.18)
        await eng.sessions.terminate(call("x", Usage="18s"))  # the agent retries its terminate
        assert eng.balance() == Decimal("0.82") and len(await eng.cdrs()) == 1
        assert await eng.accounts.audit("cgrates.org", "1001") == []
    finally:
        await shutdown(eng)


async def test_grants_that_cost_nothing_survive_a_restart(tmp_path):
    """Past MaxCost *free a slice costs nothing, so its debit leaves no ledger row: the session
    snapshot must remember it, or the restarted session holds less usage than it was granted."""
    eng = await build_engine(tmp_path)
    await eng.topup("1.00")
    free = {"Destination": "1005"}
    await eng.sessions.initiate(call("loop", **free), link=eng.link)
    await eng.sessions.initiate(call("manual", Usage="60s", **free), {"*sessionsDebitInterval": 0}, link=eng.link)
    await eng.sessions.update(call("manual", Usage="60s", LastUsed="60s", **free), {"*sessionsDebitInterval": 0})
    await eng.clock.advance(25 * SECOND, eng.sessions)
    before = {e["OriginID"]: e["DurationIndex"] for e in eng.sessions.active_sessions()}
    assert before == {"loop": 30 * SECOND, "manual": 120 * SECOND}
    assert eng.balance() == Decimal("0.70")             # each call stopped paying at 0.15
    await shutdown(eng)

    eng = await build_engine(tmp_path, clock=eng.clock)
    try:
        after = {e["OriginID"]: e["DurationIndex"] for e in eng.sessions.active_sessions()}
        assert after == before
        await eng.sessions.terminate(call("loop", Usage="28s", **free))
        await eng.sessions.terminate(call("manual", Usage="110s", **free), {"*sessionsDebitInterval": 0})
        assert eng.balance() == Decimal("0.70")
        assert {c["OriginID"]: c["Cost"] for c in await eng.cdrs()} == {"loop": 0.15, "manual": 0.15}
        assert await eng.accounts.audit("cgrates.org", "1001") == []
    finally:
        await shutdown(eng)
