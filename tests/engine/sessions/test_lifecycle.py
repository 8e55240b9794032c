"""Manual mode (Diameter/RADIUS style), postpaid, pseudoprepaid, *rated, idempotency, CDRs."""

from __future__ import annotations

from decimal import Decimal

from helpers import SUPPLIER_CHARGERS

from engine.units import SECOND

MANUAL = {"*sessionsDebitInterval": 0}


def call(origin="c1", **extra):
    return {"OriginID": origin, "OriginHost": "h1", "Account": "1001", "Destination": "1002",
            "AnswerTime": "2026-03-02T10:00:00Z", **extra}


async def test_manual_mode_grants_requested_and_last_used_corrects(engine):
    await engine.topup("1.00")
    s = engine.sessions
    reply = await s.initiate(call(Usage="30s"), MANUAL)
    assert reply.max_usage == 30 * SECOND and engine.balance() == Decimal("0.70")
    reply = await s.update(call(Usage="30s", LastUsed="20s"), MANUAL)   # 10s of the grant unused
    assert reply.max_usage == 30 * SECOND
    assert engine.balance() == Decimal("0.50")                          # reserved up to 50s
    reply = await s.update(call(Usage="60s", LastUsed="30s"), MANUAL)   # used 50s; 50 left
    assert reply.max_usage == 50 * SECOND and reply.reason == "INSUFFICIENT_CREDIT" and reply.final_units
    assert engine.balance() == 0
    await s.terminate(call(LastUsed="12s"), MANUAL)                      # total 62s
    assert engine.balance() == Decimal("0.38")
    [cdr] = await engine.cdrs()
    assert (cdr["Usage"], cdr["Cost"]) == (62 * SECOND, 0.62)


async def test_total_usage_updates(engine):
    await engine.topup("1.00")
    s = engine.sessions
    await s.initiate(call(Usage="20s"), MANUAL)
    await s.update(call(Usage="20s", TotalUsage="15s"), MANUAL)        # reserve up to 35s
    assert engine.balance() == Decimal("0.65")
    await s.terminate(call(TotalUsage="31s"), MANUAL)
    assert engine.balance() == Decimal("0.69")


async def test_refused_initiate_keeps_nothing(engine):
    await engine.accounts.set_account("cgrates.org", "1001")
    reply = await engine.sessions.initiate(call(Usage="30s"), MANUAL)
    assert reply.max_usage == 0 and reply.reason == "INSUFFICIENT_CREDIT"
    assert engine.sessions.active_sessions() == []
    assert await engine.storage.load_sessions() == {}


async def test_postpaid_is_debited_at_the_end_even_into_negative(engine):
    await engine.topup("0.10")
    s = engine.sessions
    reply = await s.initiate(call(RequestType="*postpaid", Usage="3h"))
    assert reply.max_usage == 3 * 3600 * SECOND and engine.balance() == Decimal("0.10")
    await s.terminate(call(RequestType="*postpaid", Usage="42s"))
    assert engine.balance() == Decimal("-0.32")
    [cdr] = await engine.cdrs()
    assert cdr["RequestType"] == "*postpaid" and cdr["Cost"] == 0.42


async def test_pseudoprepaid_authorizes_only_and_charges_at_the_end(engine):
    await engine.topup("0.30")
    s = engine.sessions
    reply = await s.initiate(call(RequestType="*pseudoprepaid"))
    assert reply.max_usage == 30 * SECOND and engine.balance() == Decimal("0.30")
    await s.terminate(call(RequestType="*pseudoprepaid", Usage="25s"))
    assert engine.balance() == Decimal("0.05")


async def test_duplicate_terminate_and_cdr_do_not_debit_twice(engine):
    await engine.topup("1.00")
    s = engine.sessions
    await s.initiate(call(), link=engine.link)
    assert (await s.terminate(call(Usage="20s"))).ok
    assert (await s.terminate(call(Usage="20s"))).ok
    assert (await s.process_cdr(call(Usage="20s"))).ok
    assert engine.balance() == Decimal("0.80")
    assert len(await engine.cdrs()) == 1


async def test_concurrent_duplicate_terminates(engine):
    import asyncio

    await engine.topup("1.00")
    await engine.sessions.initiate(call(), link=engine.link)
    replies = await asyncio.gather(*(engine.sessions.terminate(call(Usage="7s")) for _ in range(5)))
    assert all(r.ok for r in replies)
    assert engine.balance() == Decimal("0.93") and len(await engine.cdrs()) == 1


async def test_terminate_of_unknown_session_is_charged_once(engine):
    await engine.topup("1.00")
    s = engine.sessions
    await s.terminate(call("lost", Usage="9s"))
    await s.terminate(call("lost", Usage="9s"))
    assert engine.balance() == Decimal("0.91")
    [cdr] = await engine.cdrs()
    assert cdr["OriginID"] == "lost" and cdr["Cost"] == 0.09


async def test_process_cdr_postpaid_debits_once(engine):
    await engine.topup("1.00")
    s = engine.sessions
    fields = call("cdr1", RequestType="*postpaid", Usage="60s", SetupTime="2026-03-02T09:59:58Z")
    assert (await s.process_cdr(fields)).cost == Decimal("0.60")
    await s.process_cdr(fields)
    assert engine.balance() == Decimal("0.40")
    [cdr] = await engine.cdrs()
    assert cdr["CostSource"] == "*cdrs" and cdr["SetupTime"] == "2026-03-02T09:59:58Z"


async def test_rated_cdr_is_recorded_with_its_cost_and_no_debit(engine):
    await engine.topup("1.00")
    await engine.sessions.process_cdr(call("r1", RequestType="*rated", Usage="60s", Cost=1.234))
    assert engine.balance() == Decimal("1.00")
    [cdr] = await engine.cdrs()
    assert cdr["Cost"] == 1.234 and cdr["PreRated"] is True


async def test_missed_calls_recorded_only_when_configured(make_engine):
    eng = await make_engine(store_missed_calls=True)
    await eng.topup("1.00")
    missed = {"OriginID": "m1", "OriginHost": "h1", "Account": "1001", "Destination": "1002",
              "SetupTime": "2026-03-02T10:00:00Z", "Usage": 0, "DisconnectCause": "NO_ANSWER"}
    await eng.sessions.process_cdr(missed)
    [cdr] = await eng.cdrs()
    assert cdr["Usage"] == 0 and cdr["Cost"] == 0 and cdr["AnswerTime"] == "0001-01-01T00:00:00Z"
    assert cdr["ExtraFields"]["DisconnectCause"] == "NO_ANSWER"


async def test_missed_calls_skipped_when_not_configured(make_engine):
    eng = await make_engine(store_missed_calls=False)
    await eng.sessions.process_cdr({"OriginID": "m1", "Account": "1001", "Destination": "1002",
                                    "SetupTime": "2026-03-02T10:00:00Z", "Usage": 0})
    assert await eng.cdrs() == []


async def test_supplier_run_from_chargers(make_engine):
    eng = await make_engine(chargers=SUPPLIER_CHARGERS)
    await eng.topup("1.00")
    reply = await eng.sessions.initiate(call(), link=eng.link)
    assert set(reply.run_max_usage) == {"*default", "supplier"}
    runs = {e["RunID"]: e for e in eng.sessions.active_sessions()}
    assert runs["supplier"]["Subject"] == "SUPPL" and runs["supplier"]["RequestType"] == "*rated"
    await eng.sessions.terminate(call(Usage="50s"))
    cdrs = {c["RunID"]: c for c in await eng.cdrs()}
    assert cdrs["*default"]["Cost"] == 0.5 and cdrs["supplier"]["Cost"] == 0.2
    assert cdrs["supplier"]["Account"] == "suppl1"
    assert eng.balance() == Decimal("0.50")          # only the customer run debits 1001
    # a destination the supplier filter does not match gets the default run only
    await eng.sessions.process_cdr(call("other", Destination="1003", RequestType="*postpaid", Usage="60s"))
    assert [c["RunID"] for c in await eng.cdrs(OriginIDs=["other"])] == ["*default"]


async def test_sms_message_debits_once_and_refund_gives_back(engine):
    await engine.topup("0.12")
    s = engine.sessions
    sms = {"OriginID": "sms1", "OriginHost": "h1", "Account": "1001", "Destination": "1002",
           "ToR": "*sms", "Category": "sms", "Usage": 2}
    reply = await s.process_message(sms)
    assert reply.max_usage == 2 and reply.cost == Decimal("0.10") and engine.balance() == Decimal("0.02")
    await s.process_message(sms)                       # retransmission
    assert engine.balance() == Decimal("0.02")
    refused = await s.process_message({**sms, "OriginID": "sms2"})
    assert refused.max_usage == 0 and refused.reason == "INSUFFICIENT_CREDIT"
    assert engine.balance() == Decimal("0.02")
    back = await s.refund({**sms, "Usage": 1})
    assert back.cost == Decimal("0.05") and engine.balance() == Decimal("0.07")
    await s.refund({**sms, "Usage": 1})                # the same refund again
    assert engine.balance() == Decimal("0.07")


async def test_get_cost_rates_without_touching_balance(engine):
    await engine.topup("1.00")
    reply = await engine.sessions.get_cost({"Account": "1001", "Destination": "1003", "Usage": "90s",
                                            "AnswerTime": "2026-03-02T10:00:00Z"})
    assert reply.cost == Decimal("1.00") and engine.balance() == Decimal("1.00")
    assert reply.attributes["EventCost"]["Usage"] == 90 * SECOND


async def test_account_removed_mid_call_still_closes_with_a_cdr(engine):
    await engine.topup("1.00")
    await engine.sessions.initiate(call(), link=engine.link)
    await engine.accounts.remove_account("cgrates.org", "1001")
    assert (await engine.sessions.terminate(call(Usage="5s"))).ok
    [cdr] = await engine.cdrs()
    assert cdr["Cost"] == 0.1 and cdr["ExtraInfo"] == "ACCOUNT_NOT_FOUND"   # the 10s reserved
    assert engine.sessions.active_sessions() == []


async def test_long_call_keeps_one_charge_per_balance(engine):
    await engine.topup("100")
    await engine.sessions.initiate(call(), link=engine.link)
    await engine.clock.advance(3600 * 10**9, engine.sessions)
    [session] = engine.sessions.sessions.values()
    assert len(session.runs[0].charges) == 1 and session.runs[0].debits == 361
    await engine.sessions.terminate(call(Usage="3605s"))
    assert engine.balance() == Decimal("63.95")


async def test_session_cdrs_reach_the_configured_exporters(tmp_path):
    import json

    from conftest import build_engine

    from engine.sessions.config import SessionsConfig
    from engine.sessions.manager import SessionManager

    eng = await build_engine(tmp_path)
    out = tmp_path / "cdrs.jsonl"
    sessions = SessionManager(eng.accounts, eng.sessions.rater, eng.storage, SessionsConfig(),
                              cdr_config={"exporters": [{"type": "jsonl", "path": str(out)}]}, clock=eng.clock)
    await sessions.start()
    try:
        await eng.topup("1.00")
        await sessions.initiate(call(), {"*sessionsDebitInterval": 0})
        await sessions.terminate(call(Usage="30s"))
        await sessions.cdrs.drain_exports()
        [line] = out.read_text().splitlines()
        exported = json.loads(line)
        assert exported["OriginID"] == "c1" and exported["Cost"] == 0.3 and exported["Usage"] == 30 * SECOND
    finally:
        await sessions.stop()
        await eng.sessions.stop()
        await eng.storage.close()


async def test_bad_input_is_a_clear_error_and_harms_nothing(engine):
    import pytest

    from engine.errors import ChargingError

    await engine.topup("1.00")
    s = engine.sessions
    for bad in ({**call(), "Usage": "ten seconds"}, {**call(), "AnswerTime": "yesterday"}, ["not", "a", "map"]):
        with pytest.raises(ChargingError) as err:
            await s.initiate(bad)
        assert err.value.code == "INVALID_ARGUMENT"
    with pytest.raises(ChargingError):
        await s.initiate(call(), opts=["*sessionsTTL"])
    with pytest.raises(ChargingError) as err:
        await s.initiate({"Account": "1001", "Destination": "1002"})
    assert str(err.value) == "MANDATORY_IE_MISSING: [OriginID]"
    with pytest.raises(ChargingError) as err:
        await s.initiate(call())
        await s.initiate(call())
    assert err.value.code == "EXISTS"
    assert len(s.active_sessions()) == 1 and engine.balance() == Decimal("0.90")


async def test_failed_close_write_keeps_the_session_and_a_retry_charges_once(engine, monkeypatch):
    """Settle, CDR, snapshot delete and idempotency key share one transaction: when it fails
    nothing of the close happened, and the agent's retry closes it exactly once."""
    import pytest

    from engine.errors import ChargingError
    from engine.storage.base import DeleteSession

    await engine.topup("1.00")
    s = engine.sessions
    await s.initiate(call(Usage="30s"), {"*sessionsDebitInterval": 0})
    real_write = engine.storage.write
    failures = []

    async def flaky_write(ops):
        if any(isinstance(op, DeleteSession) for op in ops) and not failures:
            failures.append(ops)
            raise OSError("disk full")
        return await real_write(ops)

    monkeypatch.setattr(engine.storage, "write", flaky_write)
    with pytest.raises(ChargingError) as err:
        await s.terminate(call(Usage="12s"))
    assert err.value.code == "SERVER_ERROR"
    assert len(s.active_sessions()) == 1 and await engine.cdrs() == []
    assert engine.balance() == Decimal("0.70")          # the 30s reservation still held
    assert (await s.terminate(call(Usage="12s"))).ok     # the agent retries
    assert engine.balance() == Decimal("0.88")
    [cdr] = await engine.cdrs()
    assert cdr["Cost"] == 0.12
    assert await engine.accounts.audit("cgrates.org", "1001") == []


async def test_terminate_is_one_transaction(engine):
    await engine.topup("1.00")
    await engine.sessions.initiate(call(Usage="30s"), {"*sessionsDebitInterval": 0})
    before = engine.storage.stats.writes
    await engine.sessions.terminate(call(Usage="12s"))
    assert engine.storage.stats.writes - before == 1


async def test_data_session_is_granted_in_bytes_never_by_the_clock(engine):
    """A *data session is manual even with a debit interval configured: its usage is bytes."""
    await engine.accounts.add_balance("cgrates.org", "1001", "*data", 3_000_000, {"ID": "data"})
    s = engine.sessions
    data = {"OriginID": "d1", "OriginHost": "ggsn", "Account": "1001", "Destination": "internet",
            "ToR": "*data", "Category": "data"}
    reply = await s.initiate({**data, "Usage": 1_000_000})
    assert reply.max_usage == 1_000_000
    await engine.clock.advance(60 * SECOND, s)                          # no clock-driven debits
    [session] = s.active_sessions()
    assert session["DebitInterval"] == 0 and session["DurationIndex"] == 1_000_000
    reply = await s.update({**data, "Usage": 1_500_000, "LastUsed": 1_000_000})
    assert reply.max_usage == 1_500_000
    reply = await s.update({**data, "Usage": 1_500_000, "LastUsed": 1_500_000})
    assert reply.max_usage == 500_000 and reply.final_units
    await s.terminate({**data, "LastUsed": 200_000})
    acc = engine.accounts.get("cgrates.org", "1001")
    assert [b.value for b in acc.balances["*data"]] == [3_000_000 - 2_700_000]
    [cdr] = await engine.cdrs()
    assert cdr["Usage"] == 2_700_000 and cdr["ToR"] == "*data"


async def test_unit_balance_first_then_money_and_preview_matches_settle(engine, caplog):
    await engine.topup("1.00")
    await engine.accounts.add_balance("cgrates.org", "1001", "*voice", 20 * SECOND, {"ID": "free", "Weight": 20})
    s = engine.sessions
    await s.initiate(call(), link=engine.link)                   # 10s slice from the free seconds
    await engine.clock.advance(40 * SECOND, s)
    await s.terminate(call(Usage="45s"))
    voice = engine.accounts.get("cgrates.org", "1001").balances["*voice"][0].value
    assert voice == 0 and engine.balance() == Decimal("0.75")    # 20s free + 25s at 0.01
    [cdr] = await engine.cdrs()
    assert cdr["Cost"] == 0.25
    assert "previewed" not in caplog.text



async def test_cdr_of_a_session_without_times_carries_the_rating_start(engine):
    """A NAS that sends no Event-Timestamp still gets a CDR with the time the call was rated from."""
    await engine.topup("1.00")
    fields = {"OriginID": "no-times", "OriginHost": "nas", "Account": "1001", "Destination": "1002"}
    await engine.sessions.initiate({**fields, "Usage": "30s"}, MANUAL)
    await engine.sessions.terminate({**fields, "Usage": "20s"}, MANUAL)
    [cdr] = await engine.cdrs()
    assert cdr["AnswerTime"] != "0001-01-01T00:00:00Z"
    assert cdr["AnswerTime"] == cdr["CostDetails"]["StartTime"]
