"""Credit-control rules independent of the engine: per-MSCC answers, merging, duplicates, Tcc.

The mapper here is a recording stand-in for the template runner so these rules are pinned
down on their own; the real runner and engine are exercised in test_diameter_server.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agents.diameter import constants as C
from agents.diameter.credit_control import CcConfig, CreditControlServer, PeerInfo, UnitOutcome
from engine.templating import MessageView
from tests.agents.diameter.diameter_helpers import ccr

PEER = PeerInfo("pgw.test", "test", "127.0.0.1:1")


class RecordingMapper:
    """Grants what is requested except for rating group 666 (no credit) and account 'ghost'."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, dict]] = []
        self.delay = 0.0

    async def map_unit(self, view: MessageView, variables: dict[str, Any]) -> UnitOutcome:
        if self.delay:
            await asyncio.sleep(self.delay)
        sid = view.values(("Session-Id",))[0]
        rg = variables.get("RatingGroup")
        used = view.values(("Multiple-Services-Credit-Control", "Used-Service-Unit", "CC-Total-Octets"))
        self.calls.append((sid, rg, {"used": used, "type": view.values(("CC-Request-Type",))[0]}))
        account = view.values(("Subscription-Id", "Subscription-Id-Data"))
        origin = f"{sid}_{rg}" if rg != "" else sid
        if account == ["ghost"]:
            return UnitOutcome([("Result-Code", C.DIAMETER_USER_UNKNOWN)], {"OriginID": origin})
        if rg == 666:
            return UnitOutcome([("Multiple-Services-Credit-Control", [("Result-Code", 4012)])], {"OriginID": origin})
        if not view.values(("Service-Context-Id",))[0].endswith("@3gpp.org"):
            return UnitOutcome(matched=False)
        requested = view.values(("Multiple-Services-Credit-Control", "Requested-Service-Unit", "CC-Total-Octets"))
        tree: list = [("Result-Code", 2001)]
        if requested:
            tree.append(("Multiple-Services-Credit-Control", [
                ("Granted-Service-Unit", [("CC-Total-Octets", requested[0])]), ("Validity-Time", 10)]))
        return UnitOutcome(tree, {"OriginID": origin})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def server(mapper: RecordingMapper, clock: Clock | None = None) -> CreditControlServer:
    return CreditControlServer(mapper, CcConfig("localhost", "test", validity_time=30), clock or Clock())


async def test_several_rating_groups_each_answered_in_their_own_mscc() -> None:
    mapper = RecordingMapper()
    cc = server(mapper)
    req = ccr("s;1", C.CC_INITIAL, 0, msccs=[{"rg": 10, "rsu": {"CC-Total-Octets": 1000}},
                                              {"rg": 20, "si": 7, "rsu": {"CC-Total-Octets": 2000}}])
    cca = await cc.handle(req, PEER)
    assert cca.get("Result-Code") == 2001 and cca.get("Session-Id") == "s;1"
    assert cca.get("Origin-Host") == "localhost" and cca.get("Auth-Application-Id") == 4
    assert (cca.get("CC-Request-Type"), cca.get("CC-Request-Number")) == (1, 0)
    msccs = cca.find_all("Multiple-Services-Credit-Control")
    assert [(m.get("Rating-Group"), m.find("Granted-Service-Unit").get("CC-Total-Octets"), m.get("Result-Code"))
            for m in msccs] == [(10, 1000, 2001), (20, 2000, 2001)]
    assert msccs[1].get("Service-Identifier") == 7
    assert sorted(cc.by_origin_id) == ["s;1_10", "s;1_20"]


async def test_one_rating_group_out_of_credit_keeps_the_others() -> None:
    cc = server(RecordingMapper())
    req = ccr("s;2", C.CC_INITIAL, 0, msccs=[{"rg": 10, "rsu": {"CC-Total-Octets": 1}}, {"rg": 666, "rsu": {}}])
    cca = await cc.handle(req, PEER)
    assert cca.get("Result-Code") == 2001
    assert [m.get("Result-Code") for m in cca.find_all("Multiple-Services-Credit-Control")] == [2001, 4012]
    assert set(cc.sessions["s;2"].units) == {10}           # Tcc would end only what was granted
    only_bad = ccr("s;3", C.CC_INITIAL, 0, msccs=[{"rg": 666, "rsu": {}}])
    assert (await cc.handle(only_bad, PEER)).get("Result-Code") == 4012
    assert "s;3" not in cc.sessions


async def test_unknown_user_5030_and_no_processor_5012() -> None:
    cc = server(RecordingMapper())
    cca = await cc.handle(ccr("s;4", C.CC_INITIAL, 0, subscriber="ghost", msccs=[{"rg": 1}]), PEER)
    assert cca.get("Result-Code") == C.DIAMETER_USER_UNKNOWN
    cca = await cc.handle(ccr("s;5", C.CC_INITIAL, 0, context="unknown.ctx"), PEER)
    assert cca.get("Result-Code") == C.DIAMETER_UNABLE_TO_COMPLY


async def test_invalid_enumerations_are_5004_with_failed_avp() -> None:
    cc = server(RecordingMapper())
    cca = await cc.handle(ccr("s;6", 9, 0), PEER)
    assert cca.get("Result-Code") == C.DIAMETER_INVALID_AVP_VALUE
    assert cca.find("Failed-AVP").get("CC-Request-Type") == 9
    cca = await cc.handle(ccr("s;7", C.CC_EVENT, 0, requested_action=17), PEER)
    assert cca.find("Failed-AVP").get("Requested-Action") == 17


async def test_retransmission_gets_the_original_answer_and_is_charged_once() -> None:
    mapper = RecordingMapper()
    cc = server(mapper)
    first = ccr("s;8", C.CC_UPDATE, 1, msccs=[{"rg": 1, "usu": {"CC-Total-Octets": 500}, "rsu": {"CC-Total-Octets": 9}}])
    answer = await cc.handle(first, PEER)
    again = ccr("s;8", C.CC_UPDATE, 1, msccs=[{"rg": 1, "usu": {"CC-Total-Octets": 500}, "rsu": {"CC-Total-Octets": 9}}])
    again.flags |= C.FLAG_RETRANSMIT
    repeat = await cc.handle(again, PEER)
    assert len(mapper.calls) == 1
    assert repeat.hop_by_hop == again.hop_by_hop and repeat.avps == answer.avps


async def test_concurrent_duplicate_waits_for_the_first() -> None:
    mapper = RecordingMapper()
    mapper.delay = 0.05
    cc = server(mapper)
    one = ccr("s;9", C.CC_INITIAL, 0, msccs=[{"rg": 1, "rsu": {"CC-Total-Octets": 3}}], e2e=77)
    two = ccr("s;9", C.CC_INITIAL, 0, msccs=[{"rg": 1, "rsu": {"CC-Total-Octets": 3}}], e2e=77)
    two.flags |= C.FLAG_RETRANSMIT
    a, b = await asyncio.gather(cc.handle(one, PEER), cc.handle(two, PEER))
    assert len(mapper.calls) == 1 and a.avps == b.avps


async def test_single_service_ccr_answers_at_top_level() -> None:
    cc = server(RecordingMapper())
    req = ccr("s;10", C.CC_INITIAL, 0)
    from agents.diameter.codec import group
    req.avps.append(group("Requested-Service-Unit", ("CC-Total-Octets", 42)))
    cca = await cc.handle(req, PEER)
    assert cca.find("Multiple-Services-Credit-Control") is None
    assert cca.find("Granted-Service-Unit").get("CC-Total-Octets") == 42
    assert cca.get("Validity-Time") == 10


async def test_silent_session_is_terminated_through_the_mapper_after_tcc() -> None:
    mapper = RecordingMapper()
    clock = Clock()
    cc = server(mapper, clock)
    await cc.handle(ccr("s;11", C.CC_INITIAL, 0, msccs=[{"rg": 5, "rsu": {"CC-Total-Octets": 100}}]), PEER)
    # Validity-Time 10 granted, multiplier 2: supervision at +20 s.
    assert cc.next_deadline() == 1020.0
    clock.now = 1015.0
    assert await cc.supervise(clock.now) == []
    await cc.handle(ccr("s;11", C.CC_UPDATE, 1, msccs=[{"rg": 5, "usu": {"CC-Total-Octets": 60},
                                                       "rsu": {"CC-Total-Octets": 100}}]), PEER)
    clock.now = 1036.0
    assert await cc.supervise(clock.now) == ["s;11"]
    sid, rg, seen = mapper.calls[-1]
    assert (sid, rg, seen["type"], seen["used"]) == ("s;11", 5, C.CC_TERMINATION, [0])
    assert cc.sessions == {} and cc.by_origin_id == {}


async def test_supervision_keeps_one_entry_per_session_however_many_updates() -> None:
    """Updates move the Tcc deadline later without growing the supervision heap (it held
    one entry per CCR before: millions at a busy gateway); a shorter Validity-Time still
    brings the deadline forward at once."""
    mapper = RecordingMapper()
    clock = Clock()
    cc = server(mapper, clock)
    await cc.handle(ccr("s;14", C.CC_INITIAL, 0, msccs=[{"rg": 5, "rsu": {"CC-Total-Octets": 1}}]), PEER)
    await cc.handle(ccr("s;15", C.CC_INITIAL, 0, msccs=[{"rg": 5, "rsu": {"CC-Total-Octets": 1}}]), PEER)
    for n in range(1, 101):
        clock.now += 1
        await cc.handle(ccr("s;14", C.CC_UPDATE, n, msccs=[{"rg": 5, "rsu": {"CC-Total-Octets": 1}}]), PEER)
    assert len(cc._deadlines) == 2
    # s;15 was last heard at 1000 (Validity-Time 10 x 2): it expires first, s;14 later.
    assert cc.next_deadline() == 1020.0
    clock.now = 1021.0
    assert await cc.supervise(clock.now) == ["s;15"]
    assert cc.next_deadline() == 1120.0 and len(cc._deadlines) == 1
    assert await cc.supervise(1119.0) == [] and await cc.supervise(1121.0) == ["s;14"]


async def test_a_shorter_validity_time_brings_the_tcc_deadline_forward() -> None:
    clock = Clock()
    grant = FixedReply([("Multiple-Services-Credit-Control", [("Validity-Time", 100)])])
    cc = CreditControlServer(grant, CcConfig("localhost", "test"), clock)
    await cc.handle(ccr("s;16", C.CC_INITIAL, 0, msccs=[{"rg": 1}]), PEER)
    assert cc.next_deadline() == 1200.0
    clock.now = 1010.0
    grant.tree = [("Multiple-Services-Credit-Control", [("Validity-Time", 5)])]
    await cc.handle(ccr("s;16", C.CC_UPDATE, 1, msccs=[{"rg": 1}]), PEER)
    assert cc.next_deadline() == 1020.0
    assert await cc.supervise(1021.0) == ["s;16"] and cc.next_deadline() is None


async def test_termination_forgets_the_session() -> None:
    cc = server(RecordingMapper())
    await cc.handle(ccr("s;12", C.CC_INITIAL, 0, msccs=[{"rg": 1, "rsu": {"CC-Total-Octets": 1}}]), PEER)
    assert "s;12" in cc.sessions
    await cc.handle(ccr("s;12", C.CC_TERMINATION, 1, msccs=[{"rg": 1, "usu": {"CC-Total-Octets": 1}}]), PEER)
    assert cc.sessions == {}


async def test_explain_loads_a_capture_and_the_template_maps_it() -> None:
    from pathlib import Path

    from agents.diameter.explain import load_message
    from engine.templating import TemplateRunner, load_template

    here = Path(__file__).parent
    view, variables = load_message(here / "captures" / "ccr_t_gy_data_ggsn.hex")
    assert view.values(("CC-Request-Type",)) == [3] and variables["RatingGroup"] == 199
    template = load_template(here.parents[2] / "templates" / "diameter.yaml", agent="diameter")
    outcome = await TemplateRunner(template, None).run(view, {**variables, "Tenant": "cgrates.org"})
    assert outcome.processor_id == "DataTerminate"
    assert outcome.request["OriginID"] == "c0-172-25-37-3-ggsn971;1397107004;74_199"
    assert outcome.request["Account"] == "596696310364"           # E.164 wins over the IMSI
    assert outcome.request["LastUsed"] == 29223                    # CC-Input + CC-Output octets


async def test_a_failing_mapper_still_gets_the_client_an_answer() -> None:
    class Broken:
        async def map_unit(self, view: MessageView, variables: dict[str, Any]) -> UnitOutcome:
            raise RuntimeError("engine exploded")

    cc = CreditControlServer(Broken(), CcConfig("localhost", "test"), Clock())
    cca = await cc.handle(ccr("s;13", C.CC_INITIAL, 0, msccs=[{"rg": 1}]), PEER)
    assert cca.get("Result-Code") == C.DIAMETER_UNABLE_TO_COMPLY
    assert cc.sessions == {}


async def test_real_kamailio_ccr_is_accepted_and_mapped(caplog) -> None:
    """Kamailio ims_charging's own CCR-I (see captures/kamailio_ro_ccr_i.meta.json for its quirks)."""
    from pathlib import Path

    from agents.diameter.mapping import TemplateMapper
    from agents.diameter.peer import PeerConfig, PeerConnection, RequestReceived
    from engine.templating import load_template
    from tests.agents.diameter.diameter_helpers import cer

    here = Path(__file__).parent
    frame = bytes.fromhex((here / "captures" / "kamailio_ro_ccr_i.hex").read_text().strip())
    conn = PeerConnection(PeerConfig(origin_host="localhost", origin_realm="test"), 0.0)
    conn.receive_data(cer("kamailio.test").encode(), 0.0)
    conn.data_to_send()
    (event,) = conn.receive_data(frame, 1.0)
    assert isinstance(event, RequestReceived)                       # accepted despite the quirks
    assert "without Auth-Application-Id (accepted)" in caplog.text

    captured: dict[str, Any] = {}

    class Recording(TemplateMapper):
        async def map_unit(self, view, variables):
            outcome = await super().map_unit(view, variables)
            captured.update(outcome.request)
            return outcome

    template = load_template(here.parents[2] / "templates" / "diameter.yaml", agent="diameter")
    cc = CreditControlServer(Recording(template, None), CcConfig("localhost", "test", validity_time=30), Clock())
    cca = await cc.handle(event.message, PeerInfo("kamailio.test", "test"))
    assert cca.get("Result-Code") == 2001
    unit = cca.find("Multiple-Services-Credit-Control")
    assert unit.get("Rating-Group") == 100 and unit.find("Granted-Service-Unit").get("CC-Time") == 10
    assert (captured["Account"], captured["Destination"], captured["ToR"]) == ("1007", "1002", "*voice")
    assert captured["OriginID"] == event.message.get("Session-Id") + "_100"


class FixedReply:
    """A mapper answering every unit with the same reply tree."""

    def __init__(self, tree: list) -> None:
        self.tree = tree

    async def map_unit(self, view: MessageView, variables: dict[str, Any]) -> UnitOutcome:
        return UnitOutcome(self.tree, {"OriginID": "x"})


async def test_a_reply_the_dictionary_cannot_express_is_5012_naming_it() -> None:
    for tree, reason in (
        ([("No-Such-AVP", 1)], "reply: \"unknown Diameter AVP 'No-Such-AVP'\""),
        ([("Multiple-Services-Credit-Control", [("Validity-Time", "soon")])], "reply: Validity-Time: cannot encode"),
        ([("Multiple-Services-Credit-Control", [("Validity-Time", 2**40)])], "reply: Validity-Time: 1099511627776 does not fit"),
        ([("Multiple-Services-Credit-Control", 5)], "reply: Multiple-Services-Credit-Control is a grouped AVP"),
    ):
        cca = await CreditControlServer(FixedReply(tree), CcConfig("localhost", "test"), Clock()).handle(
            ccr("s;20", C.CC_INITIAL, 0, msccs=[{"rg": 1}]), PEER)
        assert cca.get("Result-Code") == C.DIAMETER_UNABLE_TO_COMPLY
        assert cca.get("Error-Message").startswith(reason), cca.get("Error-Message")
        assert (cca.get("Session-Id"), cca.get("CC-Request-Type")) == ("s;20", C.CC_INITIAL)


async def test_cca_bytes_of_a_data_update_are_pinned() -> None:
    """The whole CCA of a CCR-U through templates/diameter.yaml (dry-run grant), byte for
    byte: Session-Id, Result-Code, Origin-Host/Realm, Auth-Application-Id, the echoed
    CC-Request-Type/Number, then the MSCC {Rating-Group, GSU {CC-Total-Octets},
    Validity-Time, Result-Code}."""
    from pathlib import Path

    from agents.diameter.mapping import TemplateMapper
    from engine.templating import load_template

    template = load_template(Path(__file__).parents[3] / "templates" / "diameter.yaml", agent="diameter")
    cc = CreditControlServer(TemplateMapper(template, None), CcConfig("ocs", "test", validity_time=300), Clock())
    req = ccr("pgw;1;7", C.CC_UPDATE, 3, msccs=[{"rg": 10, "rsu": {"CC-Total-Octets": 1048576},
                                                  "usu": {"CC-Total-Octets": 4096}}], e2e=0x2A)
    req.hop_by_hop = 0x1234
    wire = await cc.handle_wire(req, PEER)
    assert wire.hex() == (
        "010000b0" "40000110" "00000004" "00001234" "0000002a"
        "00000107" "4000000f" "7067773b313b3700"                       # Session-Id
        "0000010c" "4000000c" "000007d1"                               # Result-Code 2001
        "00000108" "4000000b" "6f637300"                               # Origin-Host ocs
        "00000128" "4000000c" "74657374"                               # Origin-Realm test
        "00000102" "4000000c" "00000004"                               # Auth-Application-Id 4
        "000001a0" "4000000c" "00000002"                               # CC-Request-Type UPDATE
        "0000019f" "4000000c" "00000003"                               # CC-Request-Number 3
        "000001c8" "40000044"                                          # MSCC
        "000001b0" "4000000c" "0000000a"                               # Rating-Group 10
        "000001af" "40000018" "000001a5" "40000010" "0000000000100000" # GSU {CC-Total-Octets}
        "000001c0" "4000000c" "0000012c"                               # Validity-Time 300
        "0000010c" "4000000c" "000007d1")                              # Result-Code 2001
