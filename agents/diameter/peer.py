"""Sans-IO Diameter peer connection (RFC 6733 §5): CER/CEA, DWR/DWA, DPR/DPA, base errors.

The adapter feeds received bytes and the current time, sends ``data_to_send()``, arms one
timer at ``next_deadline()`` and closes the transport when ``closed`` turns True and the
output is flushed. Everything the base protocol answers by itself (capabilities, watchdog,
disconnect, 3001/3007/5004/5005/5014 errors) is answered here, so the credit-control layer
only sees well-formed application requests (``RequestReceived``) and answers to the
requests it sent (``AnswerReceived``).
"""

from __future__ import annotations

import logging
import os
import struct
import time
from dataclasses import dataclass, field
from typing import Iterable

from agents.diameter import constants as C
from agents.diameter.codec import (HEADER_LEN, MAX_MESSAGE_LEN, Avp, AvpError, DiameterError, HeaderError, Message,
                                   decode_header, decode_message, group, make_avp, message_length,
                                   placeholder_avp)
from agents.diameter.dictionary import VENDOR_3GPP, by_name
from agents.stream_buffer import take_pending

log = logging.getLogger("chargeway.diameter.peer")

# Mandatory AVPs per request command (RFC 6733 §5, RFC 4006 §3.1): missing one is 5005.
REQUIRED_AVPS: dict[int, tuple[str, ...]] = {
    C.CMD_CAPABILITIES_EXCHANGE: ("Origin-Host", "Origin-Realm", "Host-IP-Address", "Vendor-Id", "Product-Name"),
    C.CMD_DEVICE_WATCHDOG: ("Origin-Host", "Origin-Realm"),
    C.CMD_DISCONNECT_PEER: ("Origin-Host", "Origin-Realm", "Disconnect-Cause"),
    C.CMD_CREDIT_CONTROL: ("Session-Id", "Origin-Host", "Origin-Realm", "Destination-Realm",
                           "Auth-Application-Id", "Service-Context-Id", "CC-Request-Type",
                           "CC-Request-Number"),
}
_REQUIRED_SETS = {command: frozenset(names) for command, names in REQUIRED_AVPS.items()}
# Mandatory by the RFC but left out by real clients, and implied by the header: accepted
# with a warning (Kamailio ims_charging sends CCRs without Auth-Application-Id).
# Its cdp also retries a CER without Host-IP-Address when it fails to read its own address.
TOLERATED_MISSING: dict[int, frozenset[str]] = {
    C.CMD_CREDIT_CONTROL: frozenset({"Auth-Application-Id"}),
    C.CMD_CAPABILITIES_EXCHANGE: frozenset({"Host-IP-Address"}),
}
# Application commands we serve (answers to our RAR/ASR come back as AnswerReceived).
APP_COMMANDS = {C.APP_CREDIT_CONTROL: {C.CMD_CREDIT_CONTROL, C.CMD_RE_AUTH, C.CMD_ABORT_SESSION}}
BASE_COMMANDS = {C.CMD_CAPABILITIES_EXCHANGE, C.CMD_DEVICE_WATCHDOG, C.CMD_DISCONNECT_PEER}

_WORD = struct.Struct("!I").unpack_from

WAIT_CER = "WAIT_CER"
OPEN = "OPEN"
CLOSING = "CLOSING"
CLOSED = "CLOSED"


@dataclass(frozen=True)
class PeerConfig:
    """Our identity and timers. ``origin_host`` must be the name clients configured for us
    (Kamailio cdp and freeDiameter reject a CEA whose Origin-Host differs)."""

    origin_host: str = "chargeway"
    origin_realm: str = "chargeway"
    host_ip_addresses: tuple[str, ...] = ("127.0.0.1",)
    vendor_id: int = 0
    product_name: str = "chargeway"
    firmware_revision: int = 1
    watchdog_interval: float = 30.0     # Tw (RFC 3539): DWR after this long without traffic
    cer_timeout: float = 10.0           # a connection that sends no CER in time is closed
    request_timeout: float = 5.0        # our RAR/ASR/DPR wait this long for an answer
    origin_state_id: int = field(default_factory=lambda: int(time.time()) & 0xFFFFFFFF)


@dataclass
class CapabilitiesExchanged:
    """The peer passed CER; ``origin_host`` is how the engine addresses it later (ASR/RAR)."""

    origin_host: str
    origin_realm: str
    cer: Message


@dataclass
class RequestReceived:
    message: Message


@dataclass
class AnswerReceived:
    message: Message
    request: Message


@dataclass
class RequestTimedOut:
    request: Message


@dataclass
class ConnectionClosed:
    reason: str


Event = CapabilitiesExchanged | RequestReceived | AnswerReceived | RequestTimedOut | ConnectionClosed


class PeerConnection:
    """One transport connection with one Diameter peer, server side."""

    def __init__(self, config: PeerConfig, now: float, *, remote: str = "") -> None:
        self.config = config
        self.remote = remote
        self.state = WAIT_CER
        self.peer_host = ""
        self.peer_realm = ""
        self._in = bytearray()
        self._out = bytearray()
        self._last_rx = now
        self._opened_at = now
        self._dwr_outstanding: float | None = None
        self._pending: dict[int, tuple[Message, float]] = {}
        seed = int.from_bytes(os.urandom(4), "big")
        self._hbh = seed
        self._e2e = ((int(now) & 0xFFF) << 20) | (seed & 0xFFFFF)
        self.close_reason = ""
        self.quirks: set[str] = set()

    # ------------------------------------------------------------------ adapter API

    @property
    def closed(self) -> bool:
        return self.state == CLOSED

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_deadline(self) -> float | None:
        if self.state == CLOSED:
            return None
        if self.state == WAIT_CER:
            return self._opened_at + self.config.cer_timeout
        deadlines = [self._last_rx + self.config.watchdog_interval]
        if self._dwr_outstanding is not None:
            deadlines.append(self._dwr_outstanding + self.config.watchdog_interval)
        deadlines.extend(sent + self.config.request_timeout for _, sent in self._pending.values())
        return min(deadlines)

    def handle_timer(self, now: float) -> list[Event]:
        events: list[Event] = []
        if self.state == WAIT_CER:
            if now >= self._opened_at + self.config.cer_timeout:
                events.append(self._close("no CER received"))
            return events
        if self.state == CLOSED:
            return events
        for hbh, (request, sent) in list(self._pending.items()):
            if now >= sent + self.config.request_timeout:
                del self._pending[hbh]
                if request.command_code == C.CMD_DISCONNECT_PEER:
                    events.append(self._close("no DPA to our DPR"))
                    return events
                if request.command_code != C.CMD_DEVICE_WATCHDOG:
                    events.append(RequestTimedOut(request))
        if self._dwr_outstanding is not None and now >= self._dwr_outstanding + self.config.watchdog_interval:
            events.append(self._close("watchdog: no answer to DWR"))
            return events
        if self._dwr_outstanding is None and now >= self._last_rx + self.config.watchdog_interval:
            dwr = self._request(C.CMD_DEVICE_WATCHDOG, C.APP_COMMON)
            self._dwr_outstanding = now
            self.send_request(dwr, now)
        return events

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Feed bytes; returns the events they produced (answers are queued for sending)."""
        if self.state == CLOSED:
            return []
        # Frames are cut from the bytes received (no buffer copy) unless a partial frame
        # is waiting from an earlier read; what is left over waits for the next read.
        buf = take_pending(self._in, data)
        size = len(buf)
        pos = 0
        events: list[Event] = []
        while size - pos >= 4 and self.state != CLOSED:
            word = _WORD(buf, pos)[0]       # version and length, checked inline
            length = word & 0xFFFFFF
            if word >> 24 != 1 or length < HEADER_LEN or length > MAX_MESSAGE_LEN or length & 3:
                try:
                    message_length(buf[pos:pos + 4])    # raises the HeaderError naming the fault
                except HeaderError as err:
                    # The stream can no longer be framed: answer if a header is there, then close.
                    if size - pos >= HEADER_LEN:
                        self._answer_error(decode_header(buf[pos:pos + HEADER_LEN]), err)
                    events.append(self._close(f"unframable input: {err.reason}"))
                    return events
            if size - pos < length:
                break
            frame = buf if length == size else buf[pos:pos + length]
            pos += length
            self._last_rx = now
            events.extend(self._handle_frame(frame, now))
        if pos < size and self.state != CLOSED:
            self._in += memoryview(buf)[pos:]
        return events

    def send_request(self, msg: Message, now: float) -> Message:
        """Queue a request we originate (RAR, ASR, DWR, DPR); ids are assigned here."""
        self._hbh = (self._hbh + 1) & 0xFFFFFFFF
        self._e2e = (self._e2e + 1) & 0xFFFFFFFF
        msg.hop_by_hop = self._hbh
        msg.end_to_end = self._e2e
        msg.flags |= C.FLAG_REQUEST
        self._pending[msg.hop_by_hop] = (msg, now)
        self._out += msg.encode()
        return msg

    def send_answer(self, msg: Message) -> None:
        if self.state != CLOSED:
            self._out += msg.encode()

    def send_encoded(self, data: bytes) -> None:
        """Queue an answer the application layer has already encoded (it keeps the bytes
        for retransmissions, so encoding it again here would be wasted work)."""
        if self.state != CLOSED:
            self._out += data

    def disconnect(self, now: float, cause: int = C.DISCONNECT_REBOOTING) -> None:
        """Orderly close: DPR, then close on DPA (or after request_timeout)."""
        if self.state == OPEN:
            dpr = self._request(C.CMD_DISCONNECT_PEER, C.APP_COMMON)
            dpr.add("Disconnect-Cause", cause)
            self.send_request(dpr, now)
            self.state = CLOSING
        elif self.state == WAIT_CER:
            self._close("shutdown")

    def new_request(self, command: int, app: int, *, proxiable: bool = True) -> Message:
        """A request skeleton with our Origin-Host/Realm (Session-Id is the caller's)."""
        return self._request(command, app, proxiable=proxiable)

    def answer_for(self, request: Message, result_code: int) -> Message:
        """Answer skeleton: Session-Id first when present, Result-Code, our origin."""
        ans = request.answer(result_code)
        sid = request.find("Session-Id")
        if sid is not None:
            ans.avps.append(sid)
        ans.add("Result-Code", result_code)
        ans.add("Origin-Host", self.config.origin_host).add("Origin-Realm", self.config.origin_realm)
        return ans

    # ------------------------------------------------------------------ internals

    def _request(self, command: int, app: int, *, proxiable: bool = False) -> Message:
        msg = Message(command, app, C.FLAG_REQUEST | (C.FLAG_PROXIABLE if proxiable else 0))
        msg.add("Origin-Host", self.config.origin_host).add("Origin-Realm", self.config.origin_realm)
        return msg

    def _close(self, reason: str) -> ConnectionClosed:
        if self.state != CLOSED:
            log.info("diameter peer %s %s: closing: %s", self.peer_host or "?", self.remote, reason)
        self.state = CLOSED
        self.close_reason = reason
        return ConnectionClosed(reason)

    def _handle_frame(self, frame: bytes, now: float) -> list[Event]:
        try:
            msg = decode_message(frame)
        except HeaderError as err:
            head = decode_header(frame)
            if self.state == WAIT_CER:
                return [self._close(f"bad first message: {err.reason}")]
            self._answer_error(head, err)
            return []
        except AvpError as err:
            head = decode_header(frame)
            log.warning("diameter peer %s: malformed %s: %s", self.peer_host or self.remote, head.name, err.reason)
            if self.state == WAIT_CER and head.command_code != C.CMD_CAPABILITIES_EXCHANGE:
                return [self._close("first message is not a CER")]
            if head.is_request:
                self._answer_error(head, err)
            if self.state == WAIT_CER:
                return [self._close(f"malformed CER: {err.reason}")]
            return []
        msg.freeze_index()
        if self.state == WAIT_CER:
            return self._on_cer(msg)
        if not msg.is_request:
            return self._on_answer(msg)
        return self._on_request(msg, now)

    def _answer_error(self, head: Message, err: DiameterError) -> None:
        """Answer a request we could not accept (never answer an answer)."""
        if not head.is_request:
            return
        ans = head.answer(err.result_code)
        ans.add("Result-Code", err.result_code)
        ans.add("Origin-Host", self.config.origin_host).add("Origin-Realm", self.config.origin_realm)
        ans.add("Error-Message", err.reason[:200])
        if err.failed_avp:
            ans.avps.append(Avp(279, 0, 0x40, RawAvps(err.failed_avp), by_name("Failed-AVP")))
        self.send_answer(ans)

    def _missing(self, msg: Message) -> str | None:
        required = _REQUIRED_SETS.get(msg.command_code)
        if required is None or msg.has_all(required):
            return None        # the usual case: all there (one set test)
        tolerated = TOLERATED_MISSING.get(msg.command_code, frozenset())
        for name in REQUIRED_AVPS.get(msg.command_code, ()):
            if msg.find(name) is None:
                if name in tolerated:
                    self._quirk(f"{msg.name} without {name} (accepted)")
                    continue
                return name
        return None

    def _quirk(self, what: str) -> None:
        """Log a real client's deviation once per connection, not once per message."""
        if what not in self.quirks:
            self.quirks.add(what)
            log.warning("diameter peer %s: %s", self.peer_host or self.remote, what)

    def _answer_missing(self, msg: Message, name: str) -> None:
        """5005 naming the AVP, with an example of it in Failed-AVP (RFC 6733 §7.5)."""
        log.warning("diameter peer %s: %s without mandatory AVP %s: answered 5005",
                    self.peer_host or self.remote, msg.name, name)
        ans = msg.answer()
        sid = msg.find("Session-Id")
        if sid is not None:
            ans.avps.append(sid)
        ans.add("Result-Code", C.DIAMETER_MISSING_AVP)
        ans.add("Origin-Host", self.config.origin_host).add("Origin-Realm", self.config.origin_realm)
        ans.add("Error-Message", f"missing mandatory AVP {name}")
        example = placeholder_avp((name,))
        if example is not None:
            ans.avps.append(make_avp("Failed-AVP", [example]))
        self.send_answer(ans)

    def _on_cer(self, msg: Message) -> list[Event]:
        if not (msg.is_request and msg.command_code == C.CMD_CAPABILITIES_EXCHANGE):
            return [self._close(f"first message is {msg.name}, not a CER")]
        missing = self._missing(msg)
        if missing is not None:
            self._answer_missing(msg, missing)
            return [self._close(f"CER without {missing}")]
        apps = set(_app_ids(msg))
        if not apps & {C.APP_CREDIT_CONTROL, C.APP_RELAY}:
            self.send_answer(self._cea(msg, C.DIAMETER_NO_COMMON_APPLICATION))
            return [self._close(f"no common application (peer offers {sorted(apps)})")]
        self.peer_host = str(msg.get("Origin-Host"))
        self.peer_realm = str(msg.get("Origin-Realm"))
        self.state = OPEN
        self.send_answer(self._cea(msg, C.DIAMETER_SUCCESS))
        log.info("diameter peer %s/%s connected from %s", self.peer_host, self.peer_realm, self.remote)
        return [CapabilitiesExchanged(self.peer_host, self.peer_realm, msg)]

    def _cea(self, cer: Message, result_code: int) -> Message:
        cfg = self.config
        ans = cer.answer(result_code)
        ans.flags &= ~C.FLAG_ERROR   # CEA carries errors in Result-Code only
        ans.add("Result-Code", result_code)
        ans.add("Origin-Host", cfg.origin_host).add("Origin-Realm", cfg.origin_realm)
        for ip in cfg.host_ip_addresses:
            ans.add("Host-IP-Address", ip)
        ans.add("Vendor-Id", cfg.vendor_id).add("Product-Name", cfg.product_name)
        ans.add("Origin-State-Id", cfg.origin_state_id)
        ans.add("Supported-Vendor-Id", VENDOR_3GPP)
        ans.add("Auth-Application-Id", C.APP_CREDIT_CONTROL)
        ans.avps.append(group("Vendor-Specific-Application-Id", ("Vendor-Id", VENDOR_3GPP),
                              ("Auth-Application-Id", C.APP_CREDIT_CONTROL)))
        ans.add("Firmware-Revision", cfg.firmware_revision)
        return ans

    def _on_answer(self, msg: Message) -> list[Event]:
        entry = self._pending.pop(msg.hop_by_hop, None)
        if entry is None:
            log.warning("diameter peer %s: answer %s with unknown hop-by-hop %#x dropped",
                        self.peer_host, msg.name, msg.hop_by_hop)
            return []
        request, _ = entry
        if msg.command_code == C.CMD_DEVICE_WATCHDOG:
            self._dwr_outstanding = None
            return []
        if msg.command_code == C.CMD_DISCONNECT_PEER:
            return [self._close("DPA received")]
        return [AnswerReceived(msg, request)]

    def _on_request(self, msg: Message, now: float) -> list[Event]:
        cmd = msg.command_code
        if cmd in BASE_COMMANDS:
            missing = self._missing(msg)
            if missing is not None:
                self._answer_missing(msg, missing)
                return []
            if cmd == C.CMD_DEVICE_WATCHDOG:
                ans = self.answer_for(msg, C.DIAMETER_SUCCESS)
                ans.add("Origin-State-Id", self.config.origin_state_id)
                self.send_answer(ans)
                return []
            if cmd == C.CMD_DISCONNECT_PEER:
                self.send_answer(self.answer_for(msg, C.DIAMETER_SUCCESS))
                log.info("diameter peer %s sent DPR (cause %s)", self.peer_host, msg.get("Disconnect-Cause"))
                return [self._close("peer sent DPR")]
            # A second CER on an open connection.
            self.send_answer(self.answer_for(msg, C.DIAMETER_UNABLE_TO_COMPLY))
            return []
        commands = APP_COMMANDS.get(msg.application_id)
        if commands is None:
            self._answer_protocol_error(msg, C.DIAMETER_APPLICATION_UNSUPPORTED,
                                        f"application {msg.application_id} is not supported")
            return []
        if cmd not in commands or cmd != C.CMD_CREDIT_CONTROL:
            self._answer_protocol_error(msg, C.DIAMETER_COMMAND_UNSUPPORTED,
                                        f"command {cmd} is not supported")
            return []
        missing = self._missing(msg)
        if missing is not None:
            self._answer_missing(msg, missing)
            return []
        return [RequestReceived(msg)]

    def _answer_protocol_error(self, msg: Message, result_code: int, reason: str) -> None:
        ans = self.answer_for(msg, result_code)
        ans.flags |= C.FLAG_ERROR
        ans.add("Error-Message", reason)
        self.send_answer(ans)


class RawAvps(bytes):
    """Pre-encoded AVP bytes used as a Grouped value (Failed-AVP carries the offending AVP
    exactly as received, which may not decode)."""


def _app_ids(msg: Message) -> Iterable[int]:
    for avp in msg.avps:
        name = avp.defn.name if avp.defn else ""
        if name in ("Auth-Application-Id", "Acct-Application-Id"):
            yield int(avp.value)
        elif name == "Vendor-Specific-Application-Id" and isinstance(avp.value, list):
            for member in avp.value:
                if member.defn is not None and member.defn.name in ("Auth-Application-Id", "Acct-Application-Id"):
                    yield int(member.value)
