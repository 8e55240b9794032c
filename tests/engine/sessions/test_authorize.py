"""Authorize: max usage from balance and rates, capped at the request, with a reason."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.errors import ChargingError
from engine.units import HOUR, SECOND


def call(**extra):
    return {"OriginID": "c1", "OriginHost": "h1", "Account": "1001", "Destination": "1002",
            "AnswerTime": "2026-03-02T10:00:00Z", **extra}


async def test_credit_limits_max_usage_with_reason(engine):
    await engine.topup("1.00")
    reply = await engine.sessions.authorize(call())
    assert reply.max_usage == 100 * SECOND          # 1.00 at 0.01/s
    assert reply.reason == "INSUFFICIENT_CREDIT"
    assert engine.balance() == 1                     # authorize never debits


async def test_requested_usage_caps_the_answer(engine):
    await engine.topup("1.00")
    reply = await engine.sessions.authorize(call(Usage="60s"))
    assert (reply.max_usage, reply.reason) == (60 * SECOND, "")


async def test_default_usage_is_three_hours_for_voice(engine):
    await engine.accounts.set_account("cgrates.org", "1001", allow_negative=True)
    reply = await engine.sessions.authorize(call())
    assert reply.max_usage == 3 * HOUR


async def test_no_credit_is_zero_not_an_error(engine):
    await engine.accounts.set_account("cgrates.org", "1001")
    reply = await engine.sessions.authorize(call())
    assert reply.ok and reply.max_usage == 0 and reply.reason == "INSUFFICIENT_CREDIT"


async def test_connect_fee_unaffordable_is_zero(engine):
    await engine.topup("0.05")
    reply = await engine.sessions.authorize(call(Destination="1003"))
    assert reply.max_usage == 0 and reply.reason == "INSUFFICIENT_CREDIT"


async def test_unknown_destination_refused_with_reason(engine):
    await engine.topup("1.00")
    reply = await engine.sessions.authorize(call(Destination="999"))
    assert reply.max_usage == 0 and reply.reason == "UNAUTHORIZED_DESTINATION"


async def test_postpaid_echoes_requested_usage(engine):
    reply = await engine.sessions.authorize(call(RequestType="*postpaid", Usage="120s"))
    assert reply.max_usage == 120 * SECOND


async def test_unknown_account_and_missing_account_are_errors(engine):
    with pytest.raises(ChargingError) as err:
        await engine.sessions.authorize(call(Account="9999"))
    assert err.value.code == "ACCOUNT_NOT_FOUND"
    fields = call()
    del fields["Account"]
    with pytest.raises(ChargingError) as err:
        await engine.sessions.authorize(fields)
    assert str(err.value) == "MANDATORY_IE_MISSING: [Account]"


async def test_disabled_account_is_refused(engine):
    await engine.topup("1.00")
    await engine.accounts.set_account("cgrates.org", "1001", disabled=True)
    with pytest.raises(ChargingError) as err:
        await engine.sessions.authorize(call())
    assert err.value.code == "ACCOUNT_DISABLED"


async def test_reply_reports_the_money_left(engine):
    await engine.topup("1.00")
    reply = await engine.sessions.initiate(call(Usage="30s"), {"*sessionsDebitInterval": 0})
    assert reply.balance == Decimal("0.70")


BALANCE_TEMPLATE = """
agent: test
processors:
  - id: Init
    flags: [*initiate, *accounts]
    request_fields:
      - {tag: OriginID, path: '*cgreq.OriginID', value: '~*req.Session-Id'}
      - {tag: Account, path: '*cgreq.Account', type: '*constant', value: '1001'}
      - {tag: Destination, path: '*cgreq.Destination', type: '*constant', value: '1002'}
      - {tag: Usage, path: '*cgreq.Usage', type: '*constant', value: 30s}
      - {tag: DI, path: '*opts.*sessionsDebitInterval', type: '*constant', value: 0}
    reply_fields:
      - {tag: Granted, path: '*rep.Granted', value: '~*cgrep.MaxUsage'}
"""


async def test_a_template_reading_the_balance_gets_it_as_the_engine_answered(engine):
    from engine.templating import DictView, TemplateRunner, parse_template

    await engine.topup("1.00")
    text = BALANCE_TEMPLATE + "      - {tag: Left, path: '*rep.Left', value: '~*cgrep.Balance'}\n"
    template = parse_template(text)
    assert template.reads_reply_field("Balance") and not template.reads_reply_field("Bal")
    first = await TemplateRunner(template, engine.sessions).run(DictView({"Session-Id": "s1"}))
    assert dict(first.reply)[("Left",)] == Decimal("0.70")
    second = await TemplateRunner(template, engine.sessions).run(DictView({"Session-Id": "s2"}))
    assert dict(second.reply)[("Left",)] == Decimal("0.40")


async def test_a_template_not_reading_the_balance_still_finds_it_on_the_reply(engine):
    from engine.templating import DictView, TemplateRunner, parse_template

    await engine.topup("1.00")
    template = parse_template(BALANCE_TEMPLATE)
    assert not template.reads_reply_field("Balance")
    outcome = await TemplateRunner(template, engine.sessions).run(DictView({"Session-Id": "s1"}))
    assert dict(outcome.reply) == {("Granted",): 30 * 10**9} and "Balance" not in outcome.cgrep
    assert outcome.engine_reply.balance == Decimal("0.70")
