"""The Diameter agent end to end over loopback: our Gy client -> agent -> diameter.yaml -> real engine.

Accounts come from the sample tariff plan (config/tariffplan): every account starts with
10 units of money; data costs 0.01 per MB (1 MB increments); 1001 -> 1002 voice costs 0.4
connect + 0.2 for the first minute, then 0.1/min per second; an SMS costs 0.01.
"""

from __future__ import annotations

import asyncio
import ssl
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import trustme

from agents.diameter import constants as C
from agents.diameter.client import GyClient
from agents.diameter.codec import group, make_avp
from agents.diameter.server import sctp_available
from agents.diameter.service import DiameterConfigError

from tests.agents.diameter.engine_rig import Rig, start_rig, stop_rig

MB = 1048576
IMS_1002 = group("Service-Information", group("IMS-Information", ("Called-Party-Address", "tel:+1002")))


def mscc_of(cca, rg):
    return next(m for m in cca.find_all("Multiple-Services-Credit-Control") if m.get("Rating-Group") == rg)


async def test_data_session_with_two_rating_groups_charges_each_and_writes_cdrs(rig: Rig) -> None:
    gy = await rig.client()
    started = datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc)
    cca = await gy.request(gy.ccr("pgw;1;1", C.CC_INITIAL, 0, msccs=[
        {"rg": 10, "rsu": {"CC-Total-Octets": 10 * MB}}, {"rg": 20, "si": 7, "rsu": {"CC-Total-Octets": 10 * MB}}],
        extra=[make_avp("Event-Timestamp", started)]))
    assert cca.get("Result-Code") == 2001
    for rg in (10, 20):
        assert mscc_of(cca, rg).find("Granted-Service-Unit").get("CC-Total-Octets") == 10 * MB
        assert mscc_of(cca, rg).get("Validity-Time") == 30
    assert mscc_of(cca, 20).get("Service-Identifier") == 7
    assert rig.monetary("1001") == Decimal("9.80")          # both reservations taken
    cca = await gy.request(gy.ccr("pgw;1;1", C.CC_UPDATE, 1, msccs=[
        {"rg": 10, "usu": {"CC-Input-Octets": 2 * MB, "CC-Output-Octets": 3 * MB}, "rsu": {"CC-Total-Octets": 10 * MB}},
        {"rg": 20, "usu": {"CC-Total-Octets": 5 * MB}, "rsu": {"CC-Total-Octets": 10 * MB}}],
        extra=[make_avp("Event-Timestamp", started + timedelta(minutes=5))]))
    assert cca.get("Result-Code") == 2001 and cca.get("CC-Request-Number") == 1
    cca = await gy.request(gy.ccr("pgw;1;1", C.CC_TERMINATION, 2, msccs=[
        {"rg": 10, "usu": {"CC-Total-Octets": 3 * MB}}, {"rg": 20, "usu": {"CC-Total-Octets": 3 * MB}}]))
    assert cca.get("Result-Code") == 2001
    # 8 MB on each rating group at 0.01/MB; the unused reservations came back.
    assert rig.monetary("1001") == Decimal("9.84")
    rows = sorted(await rig.cdrs(accounts=["1001"]), key=lambda r: r.origin_id)
    assert [(r.origin_id, r.usage, r.cost, r.tor) for r in rows] == [
        ("pgw;1;1_10", 8 * MB, Decimal("0.08"), "*data"), ("pgw;1;1_20", 8 * MB, Decimal("0.08"), "*data")]
    assert rows[0].extra_fields["RatingGroup"] == 10
    assert rows[0].answer_time == started and rows[1].answer_time == started   # not moved by the update
    assert rig.service.cc.sessions == {}


async def test_quota_exhaustion_final_unit_indication_then_4012(rig: Rig) -> None:
    gy = await rig.client()
    cca = await gy.request(gy.ccr("pgw;2", C.CC_INITIAL, 0, subscriber="1003",
                                  msccs=[{"rg": 1, "rsu": {"CC-Total-Octets": 2000 * MB}}]))
    unit = mscc_of(cca, 1)
    assert unit.get("Result-Code") == 2001
    assert unit.find("Granted-Service-Unit").get("CC-Total-Octets") == 1000 * MB   # all 10.00 buys
    assert unit.find("Final-Unit-Indication").get("Final-Unit-Action") == C.FUA_TERMINATE
    cca = await gy.request(gy.ccr("pgw;2", C.CC_UPDATE, 1, subscriber="1003", msccs=[
        {"rg": 1, "usu": {"CC-Total-Octets": 1000 * MB}, "rsu": {"CC-Total-Octets": 10 * MB}}]))
    assert cca.get("Result-Code") == C.DIAMETER_CREDIT_LIMIT_REACHED
    assert mscc_of(cca, 1).get("Result-Code") == 4012 and mscc_of(cca, 1).find("Granted-Service-Unit") is None
    await gy.request(gy.ccr("pgw;2", C.CC_TERMINATION, 2, subscriber="1003",
                            msccs=[{"rg": 1, "usu": {"CC-Total-Octets": 0}}]))
    assert rig.monetary("1003") == Decimal(0)
    (row,) = await rig.cdrs(accounts=["1003"])
    assert (row.usage, row.cost) == (1000 * MB, Decimal("10"))


async def test_voice_session_destination_from_ims_called_party(rig: Rig) -> None:
    gy = await rig.client()
    cca = await gy.request(gy.ccr("scscf;7", C.CC_INITIAL, 0, context="ext.01.001.8.32260@3gpp.org",
                                  msccs=[{"rsu": {"CC-Time": 30}}], extra=[IMS_1002]))
    # 30 s asked, but the first minute is charged as a whole (60 s increment): all of it is granted.
    assert cca.find("Multiple-Services-Credit-Control").find("Granted-Service-Unit").get("CC-Time") == 60
    await gy.request(gy.ccr("scscf;7", C.CC_TERMINATION, 1, context="ext.01.001.8.32260@3gpp.org",
                            msccs=[{"usu": {"CC-Time": 90}}], extra=[IMS_1002]))
    (row,) = await rig.cdrs(origin_ids=["scscf;7"])
    assert (row.destination, row.usage, row.cost) == ("1002", 90 * 10**9, Decimal("0.65"))
    assert rig.monetary("1001") == Decimal("9.35")


async def test_sms_event_debit_refund_price_and_balance_check(rig: Rig) -> None:
    gy = await rig.client()
    cca = await gy.request(gy.ccr("smsc;1", C.CC_EVENT, 0, context="32274@3gpp.org",
                                  requested_action=C.ACTION_DIRECT_DEBITING,
                                  msccs=[{"rsu": {"CC-Service-Specific-Units": 1}}]))
    assert cca.get("Result-Code") == 2001
    assert cca.find("Multiple-Services-Credit-Control").find("Granted-Service-Unit").get("CC-Service-Specific-Units") == 1
    assert rig.monetary("1001") == Decimal("9.99")
    (row,) = await rig.cdrs(origin_ids=["smsc;1"])
    assert (row.tor, row.usage, row.cost) == ("*sms", 1, Decimal("0.01"))
    cca = await gy.request(gy.ccr("smsc;1", C.CC_EVENT, 1, context="32274@3gpp.org",
                                  requested_action=C.ACTION_REFUND_ACCOUNT))
    assert cca.get("Result-Code") == 2001 and rig.monetary("1001") == Decimal("10")
    # Price of a 2-minute call to 1002: 0.4 + 0.2 + 0.1, balance untouched.
    cca = await gy.request(gy.ccr("ask;1", C.CC_EVENT, 0, context="32260@3gpp.org",
                                  requested_action=C.ACTION_PRICE_ENQUIRY,
                                  msccs=[{"rsu": {"CC-Time": 120}}], extra=[IMS_1002]))
    cost = cca.find("Cost-Information")
    value = cost.find("Unit-Value")
    assert Decimal(value.get("Value-Digits")).scaleb(value.get("Exponent")) == Decimal("0.7")
    assert cost.get("Currency-Code") == 978
    cca = await gy.request(gy.ccr("ask;2", C.CC_EVENT, 0, context="32260@3gpp.org",
                                  requested_action=C.ACTION_CHECK_BALANCE,
                                  msccs=[{"rsu": {"CC-Time": 120}}], extra=[IMS_1002]))
    assert cca.get("Check-Balance-Result") == C.BALANCE_ENOUGH_CREDIT
    assert rig.monetary("1001") == Decimal("10")


async def test_unknown_user_5030_and_missing_subscription_5005(rig: Rig) -> None:
    gy = await rig.client()
    cca = await gy.request(gy.ccr("pgw;3", C.CC_INITIAL, 0, subscriber="nobody",
                                  msccs=[{"rg": 1, "rsu": {"CC-Total-Octets": MB}}]))
    assert cca.get("Result-Code") == C.DIAMETER_USER_UNKNOWN
    cca = await gy.request(gy.ccr("pgw;4", C.CC_INITIAL, 0, subscriber="",
                                  msccs=[{"rg": 1, "rsu": {"CC-Total-Octets": MB}}]))
    assert cca.get("Result-Code") == C.DIAMETER_MISSING_AVP
    assert [a.name for a in cca.find("Failed-AVP").value] == ["Subscription-Id"]


async def test_imsi_used_when_no_e164(rig: Rig) -> None:
    gy = await rig.client()
    cca = await gy.request(gy.ccr("pgw;5", C.CC_EVENT, 0, context="32274@3gpp.org", subscriber="1004",
                                  subscriber_type=C.SUB_IMSI, msccs=[{"rsu": {"CC-Service-Specific-Units": 1}}]))
    assert cca.get("Result-Code") == 2001
    assert rig.monetary("1004") == Decimal("9.99")


async def test_retransmitted_ccr_gets_the_original_answer_and_is_charged_once(rig: Rig) -> None:
    gy = await rig.client()
    first = gy.ccr("pgw;6", C.CC_INITIAL, 0, msccs=[{"rg": 1, "rsu": {"CC-Total-Octets": 10 * MB}}])
    cca = await gy.request(first)
    again = gy.ccr("pgw;6", C.CC_INITIAL, 0, msccs=[{"rg": 1, "rsu": {"CC-Total-Octets": 10 * MB}}])
    again.flags |= C.FLAG_RETRANSMIT
    again.end_to_end = first.end_to_end
    repeat = await gy.request(again, keep_ids=False)
    assert repeat.avps == cca.avps
    assert rig.monetary("1001") == Decimal("9.90")           # reserved once, not twice
    event = gy.ccr("smsc;9", C.CC_EVENT, 0, context="32274@3gpp.org", msccs=[{"rsu": {"CC-Service-Specific-Units": 1}}])
    await gy.request(event)
    event.flags |= C.FLAG_RETRANSMIT
    await gy.request(event)
    assert rig.monetary("1001") == Decimal("9.89")
    assert len(await rig.cdrs(origin_ids=["smsc;9"])) == 1


async def test_engine_disconnect_sends_asr_to_the_owning_peer_and_rar_reaches_it(rig: Rig) -> None:
    bystander = await rig.client("other.pgw")
    gy = await rig.client()
    await gy.request(gy.ccr("pgw;7", C.CC_INITIAL, 0, msccs=[{"rg": 3, "rsu": {"CC-Total-Octets": 10 * MB}}]))
    assert await rig.service.link.reauth("pgw;7", rating_group=3) == 2001
    rar = await gy.wait_request(C.CMD_RE_AUTH)
    assert rar.get("Session-Id") == "pgw;7" and rar.get("Destination-Host") == "pgw.test"
    assert rar.get("Re-Auth-Request-Type") == 0 and rar.get("Rating-Group") == 3
    assert await rig.service.link.active_session_ids() == [("pgw.test", "pgw;7_3")]
    count = await rig.engine.sessions.force_disconnect({"OriginID": "pgw;7_3"})
    assert count == 1
    asr = await gy.wait_request(C.CMD_ABORT_SESSION)
    assert asr.get("Session-Id") == "pgw;7" and asr.get("Auth-Application-Id") == 4
    assert asr.get("Origin-Host") == "localhost" and asr.get("Destination-Realm") == "test"
    assert bystander.received_requests == []              # only the owner is asked
    # ForceDisconnect closes the engine session itself, at the usage granted so far (manual
    # mode: the 10 MB reservation); the client's CCR-T after the ASA is answered and changes
    # nothing: one CDR, charged once.
    cca = await gy.request(gy.ccr("pgw;7", C.CC_TERMINATION, 1, msccs=[{"rg": 3, "usu": {"CC-Total-Octets": 4 * MB}}]))
    assert cca.get("Result-Code") == 2001
    (row,) = await rig.cdrs(origin_ids=["pgw;7_3"])
    assert (row.usage, row.cost) == (10 * MB, Decimal("0.10"))
    assert rig.monetary("1001") == Decimal("9.90")


async def test_silent_session_is_ended_after_tcc_with_cdr_and_refund(tmp_path: Path) -> None:
    rig = await start_rig(tmp_path, validity_time=1, tcc_multiplier=1)
    try:
        gy = await rig.client()
        await gy.request(gy.ccr("pgw;8", C.CC_INITIAL, 0, msccs=[{"rg": 1, "rsu": {"CC-Total-Octets": 100 * MB}}]))
        assert rig.monetary("1001") == Decimal("9")
        await gy.request(gy.ccr("pgw;8", C.CC_UPDATE, 1, msccs=[
            {"rg": 1, "usu": {"CC-Total-Octets": 20 * MB}, "rsu": {"CC-Total-Octets": 100 * MB}}]))
        for _ in range(60):                   # Validity-Time 1 s x 1: ended within ~1 s
            if not rig.service.cc.sessions:
                break
            await asyncio.sleep(0.05)
        assert rig.service.cc.sessions == {}
        (row,) = await rig.cdrs(origin_ids=["pgw;8_1"])
        assert (row.usage, row.cost) == (20 * MB, Decimal("0.2"))
        assert rig.monetary("1001") == Decimal("9.8")
    finally:
        await stop_rig(rig)


async def test_tls_listener(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file = tmp_path / "srv.pem", tmp_path / "srv.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    rig = await start_rig(tmp_path, listeners=[{"address": "127.0.0.1:0", "transport": "tls"}],
                          tls={"cert": str(cert_file), "key": str(key_file)})
    try:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        gy = GyClient()
        cea = await gy.connect(rig.host, rig.port, ssl_context=context, server_hostname="localhost")
        rig.clients.append(gy)
        assert cea.get("Result-Code") == 2001 and cea.get("Origin-Host") == "localhost"
        cca = await gy.request(gy.ccr("tls;1", C.CC_EVENT, 0, context="32274@3gpp.org",
                                      msccs=[{"rsu": {"CC-Service-Specific-Units": 1}}]))
        assert cca.get("Result-Code") == 2001
    finally:
        await stop_rig(rig)


async def test_sctp_listener_or_a_clear_error(tmp_path: Path, caplog) -> None:
    listeners = [{"address": "127.0.0.1:0", "transport": "sctp"}]
    if sctp_available():
        rig = await start_rig(tmp_path, listeners=listeners)
        assert rig.service.addresses[0][2] == "sctp"
        await stop_rig(rig)
        return
    with pytest.raises(DiameterConfigError, match="no listener"):
        await start_rig(tmp_path, listeners=listeners)
    assert "SCTP listener 127.0.0.1:0 not started: this kernel has no SCTP support" in caplog.text
    # With a TCP listener beside it, the agent starts and says why SCTP is missing.
    rig = await start_rig(tmp_path / "b", listeners=[*listeners, {"address": "127.0.0.1:0", "transport": "tcp"}])
    assert [a[2] for a in rig.service.addresses] == ["tcp"]
    await stop_rig(rig)


async def test_zero_rated_rating_group_is_4011_and_not_charged(tmp_path: Path) -> None:
    rig = await start_rig(tmp_path, zero_rated_rating_groups=[99])
    try:
        gy = await rig.client()
        cca = await gy.request(gy.ccr("pgw;9", C.CC_INITIAL, 0, msccs=[
            {"rg": 99, "rsu": {"CC-Total-Octets": 100 * MB}}, {"rg": 1, "rsu": {"CC-Total-Octets": 10 * MB}}]))
        assert cca.get("Result-Code") == 2001
        assert mscc_of(cca, 99).get("Result-Code") == C.DIAMETER_CREDIT_CONTROL_NOT_APPLICABLE
        assert mscc_of(cca, 99).find("Granted-Service-Unit") is None
        assert mscc_of(cca, 1).get("Result-Code") == 2001
        assert rig.monetary("1001") == Decimal("9.90")       # only rating group 1 reserved
    finally:
        await stop_rig(rig)


async def test_tenant_comes_from_config(tmp_path: Path) -> None:
    rig = await start_rig(tmp_path, tenant="other.org")
    try:
        gy = await rig.client()
        cca = await gy.request(gy.ccr("pgw;10", C.CC_EVENT, 0, context="32274@3gpp.org",
                                      msccs=[{"rsu": {"CC-Service-Specific-Units": 1}}]))
        # 1001 exists only in cgrates.org: in other.org the subscriber is unknown.
        assert cca.get("Result-Code") == C.DIAMETER_USER_UNKNOWN
        assert rig.monetary("1001") == Decimal(10)
    finally:
        await stop_rig(rig)


async def test_tls_with_client_certificates_required(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_cert = ca.issue_cert("localhost")
    server_cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "srv.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    rig = await start_rig(tmp_path, listeners=[{"address": "127.0.0.1:0", "transport": "tls"}],
                          tls={"cert": str(tmp_path / "srv.pem"), "key": str(tmp_path / "srv.pem"),
                               "ca": str(tmp_path / "ca.pem")})
    try:
        anonymous = ssl.create_default_context()
        ca.configure_trust(anonymous)
        stranger = GyClient("stranger.pgw")
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.TimeoutError, OSError)):
            await asyncio.wait_for(stranger.connect(rig.host, rig.port, ssl_context=anonymous,
                                                    server_hostname="localhost"), 5)
        await stranger.close()
        known = ssl.create_default_context()
        ca.configure_trust(known)
        ca.issue_cert("pgw.test").configure_cert(known)
        gy = GyClient()
        cea = await gy.connect(rig.host, rig.port, ssl_context=known, server_hostname="localhost")
        rig.clients.append(gy)
        assert cea.get("Result-Code") == 2001
    finally:
        await stop_rig(rig)


async def test_alter_session_sends_rar_for_that_rating_group(rig: Rig) -> None:
    gy = await rig.client()
    await gy.request(gy.ccr("pgw;11", C.CC_INITIAL, 0, msccs=[{"rg": 4, "rsu": {"CC-Total-Octets": MB}},
                                                           {"rg": 5, "rsu": {"CC-Total-Octets": MB}}]))
    await rig.service.link.alter_session({"OriginID": "pgw;11_5"})
    rar = await gy.wait_request(C.CMD_RE_AUTH)
    assert rar.get("Session-Id") == "pgw;11" and rar.get("Rating-Group") == 5
    gy.request_result_code = C.DIAMETER_UNKNOWN_SESSION_ID
    with pytest.raises(Exception, match="RAA Result-Code 5002"):
        await rig.service.link.alter_session({"OriginID": "pgw;11_4"})


async def test_topup_sends_rar_so_the_client_asks_again(rig: Rig) -> None:
    """A subscriber on their last units tops up: the PGW gets a RAR for that rating group."""
    gy = await rig.client()
    cca = await gy.request(gy.ccr("pgw;12", C.CC_INITIAL, 0, subscriber="1003",
                                  msccs=[{"rg": 1, "rsu": {"CC-Total-Octets": 2000 * MB}}]))
    assert mscc_of(cca, 1).find("Final-Unit-Indication") is not None
    await rig.engine.accounts.add_balance("cgrates.org", "1003", "*monetary", "5", {"ID": "topup"})
    rar = await asyncio.wait_for(gy.wait_request(C.CMD_RE_AUTH), 5)
    assert rar.get("Session-Id") == "pgw;12" and rar.get("Rating-Group") == 1
