"""Credit-control server logic (RFC 4006/8506): CCR in, CCA out, sessions supervised.

Multiple-Services-Credit-Control: **each MSCC is its own engine session**. The template
runs once per MSCC with a view showing only that MSCC, and writes OriginID as
``<Session-Id>_<Rating-Group>`` when a rating group is present. Why not one engine
session with per-RG runs: rating groups are charged at different rates and reported at
different times (one RG can exhaust its quota and get Final-Unit-Indication while the
others keep going), and each needs its own reservation, debit and CDR. Separate sessions
give exactly that with the engine's normal semantics, and a CCR-T closes all of them.

The engine is reached only through a ``UnitMapper`` (the template runner in production),
so this module holds the Diameter rules: merging per-unit answers into one CCA, the
duplicate cache (a retransmission gets the original answer and is never charged twice)
and Tcc supervision (a session silent past ``tcc_multiplier`` x Validity-Time is ended
through the engine, returning its unused reservation and writing its CDR).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol

from agents.diameter import constants as C
from agents.diameter.codec import (Avp, Message, decode_message, encode_answer, encode_avp, make_avp,
                                   placeholder_avp)
from agents.diameter.reply_encode import Encoded, ReplyEncodeError, encode_item, encode_members, encoder
from agents.diameter.view import MSCC, ccr_view, split_ccr
from engine.templating import MessageView

log = logging.getLogger("chargeway.diameter.cc")

_VALID_REQUEST_TYPES = {C.CC_INITIAL, C.CC_UPDATE, C.CC_TERMINATION, C.CC_EVENT}
_VALID_ACTIONS = {C.ACTION_DIRECT_DEBITING, C.ACTION_REFUND_ACCOUNT, C.ACTION_CHECK_BALANCE,
                  C.ACTION_PRICE_ENQUIRY}
# AVPs the agent itself puts at the top of every CCA (templates cannot duplicate them).
_CCA_FIXED = {"Session-Id", "Result-Code", "Origin-Host", "Origin-Realm", "Auth-Application-Id",
              "CC-Request-Type", "CC-Request-Number"}
# MSCC members a single-service (no MSCC) answer carries at the top level.
_IDS = struct.Struct("!II")     # hop-by-hop and end-to-end ids, header bytes 12-20
_UNIT_REPLY = {"Granted-Service-Unit", "Validity-Time", "Final-Unit-Indication", "Cost-Information"}
_MSCC_ENCODER = encoder(MSCC)
_NONE: Any = object()


@dataclass
class UnitOutcome:
    """What mapping one credit-control unit produced."""

    reply_tree: list[Any] = field(default_factory=list)    # (name, value) pairs or [name, value] entries
    request: dict[str, Any] = field(default_factory=dict)
    matched: bool = True
    missing: tuple[str, ...] | None = None     # a mandatory source path was absent (5005)
    error: str = ""


class UnitMapper(Protocol):
    """Maps one unit; ``variables`` is that unit's own dict (the mapper may add to it)."""

    async def map_unit(self, view: MessageView, variables: dict[str, Any]) -> UnitOutcome: ...


@dataclass
class PeerInfo:
    """Where a request came from: the CER identity and the transport address."""

    origin_host: str
    origin_realm: str
    remote: str = ""
    # (the CcConfig, ~*vars for this peer under it): built once, copied per unit.
    vars_base: tuple[Any, dict[str, Any]] | None = field(default=None, compare=False, repr=False)


@dataclass
class CcSession:
    """A credit-control session we granted units to (for Tcc, ASR/RAR routing)."""

    session_id: str
    peer_host: str
    peer_realm: str
    last_request: Message
    last_number: int
    last_seen: float
    validity: float
    origin_ids: set[str] = field(default_factory=set)
    units: dict[Any, Avp] = field(default_factory=dict)    # RG (or None) -> a zero USU for Tcc
    scheduled: float | None = None   # the Tcc deadline of its entry in the supervision heap


@dataclass
class CcConfig:
    origin_host: str
    origin_realm: str
    validity_time: int = 0            # seconds; 0 = none sent unless the template sets one
    tcc_multiplier: float = 2.0
    default_tcc: float = 600.0        # supervision when no Validity-Time was granted
    tenant: str = ""
    zero_rated: frozenset[int] = frozenset()   # Rating-Groups answered 4011 (not charged)
    duplicate_ttl: float = 300.0
    duplicate_max: int = 100_000


class InFlight:
    """A request being answered. A retransmission arriving meanwhile waits for the answer;
    the future is only made then (most requests never see a duplicate)."""

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: asyncio.Future[bytes] | None = None

    async def wait(self) -> bytes:
        if self.future is None:
            self.future = asyncio.get_running_loop().create_future()
        return await asyncio.shield(self.future)

    def done(self, wire: bytes) -> None:
        if self.future is not None and not self.future.done():
            self.future.set_result(wire)

    def failed(self, err: BaseException) -> None:
        if self.future is not None and not self.future.done():
            self.future.set_exception(err)
            self.future.exception()    # retrieved: the waiters may be gone


class DuplicateCache:
    """Answers by (Origin-Host, End-to-End-Id, Session-Id) and by (Session-Id,
    CC-Request-Number, CC-Request-Type).

    While the original is being answered the entry is an ``InFlight`` (a retransmission
    waits for it); afterwards it is the encoded answer: one bytes object per entry, which
    the garbage collector never has to walk (100k cached Message trees made gen-2 pauses
    long). Callers compute a message's ``keys`` once and pass them to every method.
    """

    def __init__(self, ttl: float, max_entries: int) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        # key -> [stamp, InFlight | bytes]: a message's keys share one entry, so completing
        # it is one assignment whichever key a retransmission finds it by.
        self._answers: OrderedDict[tuple, list[Any]] = OrderedDict()

    @staticmethod
    def keys(msg: Message) -> list[tuple]:
        # Origin-Host + End-to-End-Id identify a retransmission (RFC 6733 §6.1.3); the
        # Session-Id guards against a client that reuses End-to-End ids after a restart.
        sid = msg.get("Session-Id")
        keys: list[tuple] = [("e2e", msg.get("Origin-Host"), msg.end_to_end, sid)]
        number = msg.get("CC-Request-Number")
        if sid is not None and number is not None:
            keys.append(("ccr", sid, number, msg.get("CC-Request-Type")))
        return keys

    def lookup(self, keys: list[tuple], now: float) -> InFlight | bytes | None:
        answers = self._answers
        if answers and now - answers[next(iter(answers))][0] >= self.ttl:
            self._expire(now)
        for key in keys:
            entry = answers.get(key)
            if entry is not None:
                return entry[1]
        return None

    def reserve(self, keys: list[tuple], now: float) -> InFlight:
        pending = InFlight()
        entry = [now, pending]
        answers = self._answers
        for key in keys:
            answers[key] = entry
        while len(answers) > self.max_entries:
            answers.popitem(last=False)
        return pending

    def complete(self, keys: list[tuple], encoded: bytes) -> None:
        get = self._answers.get
        for key in keys:
            entry = get(key)
            if entry is not None and entry[1] is not encoded:
                entry[1] = encoded      # the stamp stays; a second key sharing it is done too

    def forget(self, keys: list[tuple]) -> None:
        for key in keys:
            self._answers.pop(key, None)

    def _expire(self, now: float) -> None:
        answers = self._answers
        while answers:
            stamp = answers[next(iter(answers))][0]
            if now - stamp < self.ttl:
                break
            answers.popitem(last=False)


class CreditControlServer:
    """Answers CCRs through a ``UnitMapper`` and supervises the sessions it granted."""

    def __init__(self, mapper: UnitMapper, config: CcConfig, clock: Callable[[], float]) -> None:
        self.mapper = mapper
        self.config = config
        self.clock = clock
        self.sessions: dict[str, CcSession] = {}
        self.by_origin_id: dict[str, str] = {}
        self.duplicates = DuplicateCache(config.duplicate_ttl, config.duplicate_max)
        # Our identity, the same in every answer: built once.
        self._identity = b"".join(encode_avp(a) for a in (
            make_avp("Origin-Host", config.origin_host), make_avp("Origin-Realm", config.origin_realm),
            make_avp("Auth-Application-Id", C.APP_CREDIT_CONTROL)))
        self._result_codes: dict[int, bytes] = {}
        self._deadlines: list[tuple[float, str]] = []
        self._earliest: float | None = None
        # Called when a session's Tcc deadline is earlier than any before (re-arm the timer).
        self.on_earlier_deadline: Callable[[], None] | None = None

    # ------------------------------------------------------------------ CCR

    async def handle(self, msg: Message, peer: PeerInfo, extra_vars: dict[str, Any] | None = None) -> Message:
        """The answer as a ``Message`` (tests, tools): the bytes ``handle_wire`` sends, decoded."""
        return decode_message(await self.handle_wire(msg, peer, extra_vars))

    async def handle_wire(self, msg: Message, peer: PeerInfo, extra_vars: dict[str, Any] | None = None) -> bytes:
        """The encoded answer. It is encoded once: the same bytes go to the duplicate cache
        and to the transport (a retransmission gets them back with its own ids)."""
        now = self.clock()
        duplicates = self.duplicates
        keys = duplicates.keys(msg)
        pending = duplicates.lookup(keys, now)
        if pending is not None:
            if not msg.is_retransmit:
                log.warning("diameter: duplicate CCR %s #%s from %s without the T flag",
                            msg.get("Session-Id"), msg.get("CC-Request-Number"), peer.origin_host)
            if not isinstance(pending, bytes):
                pending = await pending.wait()
            return _readdress(pending, msg)
        in_flight = duplicates.reserve(keys, now)
        try:
            wire = await self._answer(msg, peer, extra_vars)
        except BaseException as err:
            duplicates.forget(keys)
            in_flight.failed(err)
            raise
        in_flight.done(wire)
        duplicates.complete(keys, wire)
        return wire

    async def _answer(self, msg: Message, peer: PeerInfo, extra_vars: dict[str, Any] | None) -> bytes:
        request_type = msg.get("CC-Request-Type")
        if request_type not in _VALID_REQUEST_TYPES:
            return self._failure(msg, C.DIAMETER_INVALID_AVP_VALUE, f"CC-Request-Type {request_type} is invalid",
                                 msg.find("CC-Request-Type"))
        action = msg.get("Requested-Action")
        if action is not None and action not in _VALID_ACTIONS:
            return self._failure(msg, C.DIAMETER_INVALID_AVP_VALUE, f"Requested-Action {action} is invalid",
                                 msg.find("Requested-Action"))
        base, units, single_service = split_ccr(msg)    # the top-level view: once for all units
        if len(units) == 1:          # the common case: no task per unit
            outcomes = [await self._map(msg, units[0], peer, extra_vars, base)]
        else:
            outcomes = list(await asyncio.gather(*(self._map(msg, unit, peer, extra_vars, base)
                                                   for unit in units)))
        for outcome in outcomes:
            if outcome.missing is not None:
                return self._missing(msg, outcome.missing)
        return self._assemble(msg, units, outcomes, single_service, peer)

    async def _map(self, msg: Message, unit: Avp | None, peer: PeerInfo, extra_vars: dict[str, Any] | None,
                   base: dict[str, Any]) -> UnitOutcome:
        try:
            return await self.mapper.map_unit(ccr_view(msg, unit, base), self._vars(msg, peer, unit, extra_vars))
        except Exception as err:   # the engine or a template bug must not kill the peer
            log.exception("diameter: mapping CCR %s failed", msg.get("Session-Id"))
            return UnitOutcome(matched=False, error=f"SERVER_ERROR: {err}")

    def _vars(self, msg: Message, peer: PeerInfo, unit: Avp | None,
              extra_vars: dict[str, Any] | None) -> dict[str, Any]:
        """``~*vars`` of one unit: a new dict the mapper may add to (``*link``), copied
        from the peer's, which is built once per connection."""
        cached = peer.vars_base
        if cached is None or cached[0] is not self.config:
            cached = peer.vars_base = (self.config, {
                "*cmd": "CCR", "*app": "Credit Control", "*appid": None,
                "OriginHost": peer.origin_host, "OriginRealm": peer.origin_realm,
                "RemoteHost": peer.remote, "Tenant": self.config.tenant,
                "ValidityTime": self.config.validity_time, "ZeroRated": False,
            })
        variables = cached[1].copy()
        variables["*appid"] = msg.application_id
        if extra_vars:
            variables.update(extra_vars)
        if unit is not None:
            rating_group = unit.get("Rating-Group", "")
            variables["RatingGroup"] = rating_group
            variables["ServiceIdentifier"] = unit.get("Service-Identifier", "")
            variables["ZeroRated"] = rating_group in self.config.zero_rated
        return variables

    def _assemble(self, msg: Message, units: list[Avp | None], outcomes: list[UnitOutcome],
                  single_service: bool, peer: PeerInfo) -> bytes:
        """The CCA from the units' replies, encoded: our fixed AVPs (pre-encoded where
        they never change), the template's top-level AVPs, then one MSCC per unit."""
        top_extra: list[Encoded] = []
        seen_top: set[str] = set()
        msccs: list[bytes] = []
        codes: list[int] = []
        validities: list[Any] = []
        for unit, outcome in zip(units, outcomes):
            if not outcome.matched:
                code = C.DIAMETER_UNABLE_TO_COMPLY
                log.warning("diameter: CCR %s: no template processor answered (%s)",
                            msg.get("Session-Id"), outcome.error or "no match")
                unit_reply: list[Encoded] = []
                top_reply: list[Encoded] = []
            else:
                try:
                    top_items, unit_reply = _encode_reply(outcome.reply_tree)
                except ReplyEncodeError as err:
                    log.error("diameter: template reply cannot be encoded: %s", err)
                    return self._failure(msg, C.DIAMETER_UNABLE_TO_COMPLY, f"reply: {err}", None)
                code = _first_result_code(unit_reply)
                if top_items:
                    if code is None:
                        code = _first_result_code(top_items)
                    top_reply = [i for i in top_items if i.name not in _CCA_FIXED]
                else:
                    top_reply = top_items
                if code is None:
                    code = C.DIAMETER_SUCCESS
            codes.append(code)
            if single_service or unit is None:
                for item in unit_reply:
                    if item.name in _UNIT_REPLY and item.name not in seen_top:
                        top_extra.append(item)
                        seen_top.add(item.name)
            else:
                msccs.append(self._unit_answer(unit, unit_reply, code, validities))
            for item in top_reply:
                if item.name not in seen_top:
                    top_extra.append(item)
                    seen_top.add(item.name)
        top_code = _merge_codes(codes)
        parts: list[bytes] = []
        sid = msg.find("Session-Id")
        if sid is not None:
            parts.append(sid.wire or encode_avp(sid))
        parts.append(self._result_code(top_code))
        parts.append(self._identity)
        for name in ("CC-Request-Type", "CC-Request-Number"):
            echoed = msg.find(name)      # the request's own AVP, value unchanged
            if echoed is not None:
                parts.append(echoed.wire or encode_avp(echoed))
        for item in top_extra:
            parts.append(item.wire)
            if item.name == "Validity-Time" and item.value:
                validities.append(item.value)
        parts.extend(msccs)
        validity = float(max(validities)) if validities else 0.0
        self._track(msg, units, outcomes, codes, top_code, validity, peer)
        return encode_answer(msg, parts)

    def _result_code(self, code: int) -> bytes:
        """Result-Code AVPs, encoded once per code."""
        wire = self._result_codes.get(code)
        if wire is None:
            wire = self._result_codes[code] = encode_avp(make_avp("Result-Code", code))
        return wire

    def _unit_answer(self, unit: Avp, reply: list[Encoded], code: int, validities: list[Any]) -> bytes:
        """This unit's MSCC: its Rating-Group/Service-Identifier (unless the template set
        them), the template's members, its Result-Code. Collects its Validity-Time."""
        wires: list[bytes] = []
        own_rg = own_si = False
        validity: Any = _NONE
        for item in reply:          # one pass: the members, which ids the template set, VT
            name = item.name
            if name == "Result-Code":
                continue
            wires.append(item.wire)
            if name == "Validity-Time":
                if validity is _NONE:
                    validity = item.value
            elif name == "Rating-Group":
                own_rg = True
            elif name == "Service-Identifier":
                own_si = True
        if validity is not _NONE and validity:
            validities.append(validity)
        wires.append(self._result_code(code))
        if not (own_rg and own_si) and isinstance(unit.value, list):
            # The unit's own Rating-Group(s), then Service-Identifier(s), as received.
            groups: list[bytes] = []
            services: list[bytes] = []
            for avp in unit.value:
                defn = avp.defn
                if defn is None:
                    continue
                if defn.name == "Rating-Group":
                    if not own_rg:
                        groups.append(encode_avp(avp))
                elif defn.name == "Service-Identifier" and not own_si:
                    services.append(encode_avp(avp))
            if groups or services:
                wires[:0] = groups + services
        return _MSCC_ENCODER.frame(b"".join(wires))

    def _failure(self, msg: Message, code: int, reason: str, failed: Avp | None) -> bytes:
        cca = msg.answer()
        cca.avps.append(msg.find("Session-Id"))
        cca.add("Result-Code", code)
        cca.add("Origin-Host", self.config.origin_host).add("Origin-Realm", self.config.origin_realm)
        cca.add("Auth-Application-Id", C.APP_CREDIT_CONTROL)
        if msg.get("CC-Request-Type") is not None:
            cca.add("CC-Request-Type", msg.get("CC-Request-Type"))
        if msg.get("CC-Request-Number") is not None:
            cca.add("CC-Request-Number", msg.get("CC-Request-Number"))
        cca.add("Error-Message", reason[:200])
        if failed is not None:
            cca.avps.append(make_avp("Failed-AVP", [failed]))
        log.warning("diameter: CCR %s answered %d: %s", msg.get("Session-Id"), code, reason)
        return cca.encode()

    def _missing(self, msg: Message, path: tuple[str, ...]) -> bytes:
        """5005 with Failed-AVP holding an empty instance of what the template needed."""
        failed = placeholder_avp(path)
        return self._failure(msg, C.DIAMETER_MISSING_AVP, f"missing AVP {'.'.join(path)}", failed)

    # ------------------------------------------------------------------ session tracking

    def _track(self, msg: Message, units: list[Avp | None], outcomes: list[UnitOutcome], codes: list[int],
               top_code: int, validity: float, peer: PeerInfo) -> None:
        sid = str(msg.get("Session-Id"))
        request_type = msg.get("CC-Request-Type")
        if request_type == C.CC_EVENT:
            return
        if request_type == C.CC_TERMINATION:
            self._drop(sid)
            return
        granted = top_code == C.DIAMETER_SUCCESS
        session = self.sessions.get(sid)
        if session is None:
            if not granted:
                return
            session = CcSession(sid, peer.origin_host, peer.origin_realm, msg, 0, 0.0, 0.0)
            self.sessions[sid] = session
        session.last_request = msg
        session.last_number = int(msg.get("CC-Request-Number") or 0)
        session.last_seen = self.clock()
        session.validity = validity or float(self.config.validity_time) or self.config.default_tcc
        deadline = self._deadline(session)
        if session.scheduled is None or deadline < session.scheduled:
            # A deadline that only moved later keeps its heap entry: next_deadline moves
            # it when it reaches the top, so the heap holds one entry per session.
            session.scheduled = deadline
            heapq.heappush(self._deadlines, (deadline, sid))
            if self._earliest is None or deadline < self._earliest:
                self._earliest = deadline
                if self.on_earlier_deadline is not None:
                    self.on_earlier_deadline()
        for unit, outcome, code in zip(units, outcomes, codes):
            key = unit.get("Rating-Group") if unit is not None else None
            if code != C.DIAMETER_SUCCESS:
                # A refused unit has no engine session: Tcc must not end it with a CCR-T.
                if key not in session.units:
                    continue
            origin_id = outcome.request.get("OriginID")
            if origin_id:
                session.origin_ids.add(str(origin_id))
                self.by_origin_id[str(origin_id)] = sid
            session.units[key] = unit

    def _drop(self, sid: str) -> None:
        session = self.sessions.pop(sid, None)
        if session is not None:
            for origin_id in session.origin_ids:
                self.by_origin_id.pop(origin_id, None)

    def session_for(self, origin_id: str) -> CcSession | None:
        sid = self.by_origin_id.get(origin_id, origin_id)
        return self.sessions.get(sid)

    def _deadline(self, session: CcSession) -> float:
        return session.last_seen + self.config.tcc_multiplier * session.validity

    def next_deadline(self) -> float | None:
        """Earliest Tcc deadline. A heap with one live entry per session (``scheduled``),
        moved lazily: an update does not touch the heap; an entry reaching the top whose
        session has been heard from since is pushed back to the session's new deadline,
        and one whose session is gone (or was rescheduled earlier) is dropped."""
        heap = self._deadlines
        while heap:
            deadline, sid = heap[0]
            session = self.sessions.get(sid)
            if session is None or session.scheduled != deadline:
                heapq.heappop(heap)
                continue
            actual = self._deadline(session)
            if actual > deadline:
                session.scheduled = actual
                heapq.heapreplace(heap, (actual, sid))
                continue
            self._earliest = deadline
            return deadline
        self._earliest = None
        return None

    async def supervise(self, now: float, on_expired: Callable[[CcSession], Awaitable[None]] | None = None) -> list[str]:
        """End every session silent past Tcc through the engine (a synthetic CCR-T)."""
        expired: list[CcSession] = []
        while (deadline := self.next_deadline()) is not None and deadline <= now:
            _, sid = heapq.heappop(self._deadlines)
            if all(s.session_id != sid for s in expired):
                expired.append(self.sessions[sid])
        ended: list[str] = []
        for session in expired:
            log.warning("diameter: session %s from %s silent for %.0fs (Tcc): terminating",
                        session.session_id, session.peer_host, now - session.last_seen)
            ccr_t = _synthetic_termination(session)
            peer = PeerInfo(session.peer_host, session.peer_realm, "")
            try:
                await self._answer(ccr_t, peer, {"Supervision": True})
            finally:
                self._drop(session.session_id)
            ended.append(session.session_id)
            if on_expired is not None:
                await on_expired(session)
        return ended


def _merge_codes(codes: list[int]) -> int:
    """Top-level Result-Code: the common code when every unit agrees, else success if any
    unit succeeded (per-MSCC codes then tell the client which), else the first failure."""
    if len(codes) == 1:
        return codes[0]
    if not codes:
        return C.DIAMETER_SUCCESS
    if all(code == codes[0] for code in codes):
        return codes[0]
    if C.DIAMETER_SUCCESS in codes:
        return C.DIAMETER_SUCCESS
    return codes[0]


def _first_result_code(items: list[Encoded]) -> Any:
    """The value of the first Result-Code among encoded reply items, or None."""
    for item in items:
        if item.name == "Result-Code":
            return item.value
    return None


def _encode_reply(tree: list[Any]) -> tuple[list[Encoded], list[Encoded]]:
    """A unit's reply tree encoded: its top-level items (MSCC aside) and the members of its
    MSCC item(s). Every item is encoded, so a bad value anywhere fails the whole reply."""
    top: list[Encoded] = []
    unit: list[Encoded] = []
    for name, value in tree:
        if name == MSCC:
            unit.extend(encode_members(name, value))
        else:
            top.append(encode_item(name, value))
    return top, unit


def _readdress(original: bytes, request: Message) -> bytes:
    """The cached answer's bytes, carrying the retransmission's hop-by-hop and end-to-end ids."""
    return original[:12] + _IDS.pack(request.hop_by_hop, request.end_to_end) + original[20:]


def _synthetic_termination(session: CcSession) -> Message:
    """A CCR-T as the client would have sent it, reporting zero further usage."""
    last = session.last_request
    msg = Message(C.CMD_CREDIT_CONTROL, C.APP_CREDIT_CONTROL, C.FLAG_REQUEST, 0, 0)
    skip = {MSCC, "CC-Request-Type", "CC-Request-Number", "Requested-Service-Unit", "Used-Service-Unit",
            "Termination-Cause", "Requested-Action", "Rating-Group", "Service-Identifier"}
    msg.avps = [a for a in last.avps if a.defn is None or a.defn.name not in skip]
    msg.add("CC-Request-Type", C.CC_TERMINATION).add("CC-Request-Number", session.last_number + 1)
    msg.add("Termination-Cause", C.TERMINATION_SESSION_TIMEOUT)
    for unit in session.units.values():
        if unit is None:
            continue
        members: list[Avp] = [make_avp("Used-Service-Unit", _zero_units(unit))]
        members.extend(unit.find_all("Rating-Group"))
        members.extend(unit.find_all("Service-Identifier"))
        msg.avps.append(make_avp(MSCC, members))
    return msg


def _zero_units(unit: Avp) -> list[Avp]:
    """Zero of the same unit types the client reported or requested."""
    kinds: list[str] = []
    for part in ("Used-Service-Unit", "Requested-Service-Unit"):
        grp = unit.find(part)
        if grp is not None and isinstance(grp.value, list):
            kinds.extend(a.name for a in grp.value if a.name.startswith("CC-"))
    kinds = list(dict.fromkeys(kinds)) or ["CC-Time"]
    return [make_avp(kind, 0) for kind in kinds if kind != "CC-Money"]
