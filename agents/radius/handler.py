"""One RADIUS request through the template and the engine, and its reply bytes.

Access-Request: the template's processor (``*vars.*radReqType`` = ``*radAuth``)
authorizes; Access-Accept carries the template's reply attributes (Session-Timeout
from ``~*cgrep.MaxUsage``), Access-Reject a Reply-Message with the reason (also on
an engine error: unlike CGRateS we answer instead of leaving the NAS retrying).

Accounting-Request: Start/Interim-Update/Stop run the processors selected by
``Acct-Status-Type``; the Accounting-Response goes out only after the engine
call returned, which for the session manager means after the group commit.
Accounting-On/Off (NAS reboot) closes every open session of that NAS here, not
in the template, since it names no session.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from typing import Any, Awaitable, Mapping

from agents.radius import codec
from agents.radius.dictionary import RadiusDictionary
from agents.radius.server import RadiusRequest
from agents.radius.view import RadiusMessageView, ReadPlan
from engine.errors import SERVER_ERROR, ChargingError
from engine.event import ORIGIN_HOST, ORIGIN_ID, USAGE

log = logging.getLogger("chargeway.radius")

REQ_AUTH = "*radAuth"
REQ_ACCT = "*radAcct"
REPLY_CODE = "*radReplyCode"

ACCT_STATUS_TYPE = 40
ACCT_SESSION_ID = 44
ACCT_SESSION_TIME = 46
ACCT_START = 1
ACCT_STOP = 2
ACCT_INTERIM = 3
ACCT_ON = 7
ACCT_OFF = 8
NAS_IP_ADDRESS = 4
NAS_IDENTIFIER = 32
NAS_IPV6_ADDRESS = 95
REPLY_MESSAGE = 18
SESSION_TIMEOUT = 27

REPLY_CODES = {
    "AccessAccept": codec.ACCESS_ACCEPT, "Access-Accept": codec.ACCESS_ACCEPT,
    "AccessReject": codec.ACCESS_REJECT, "Access-Reject": codec.ACCESS_REJECT,
    "AccessChallenge": codec.ACCESS_CHALLENGE, "Access-Challenge": codec.ACCESS_CHALLENGE,
    "AccountingResponse": codec.ACCOUNTING_RESPONSE, "Accounting-Response": codec.ACCOUNTING_RESPONSE,
}


def nas_identity(packet: codec.RadiusPacket, source_ip: str) -> str:
    """The NAS that keys a session: NAS-Identifier, else NAS-IP(v6)-Address, else the source IP."""
    ident = packet.get(NAS_IDENTIFIER)
    if ident:
        return ident.decode("utf-8", "replace")
    ip4 = packet.get(NAS_IP_ADDRESS)
    if ip4 is not None and len(ip4) == 4:
        return socket.inet_ntoa(ip4)
    ip6 = packet.get(NAS_IPV6_ADDRESS)
    if ip6 is not None and len(ip6) == 16:
        return str(ipaddress.IPv6Address(ip6))
    return source_ip


class RadiusHandler:
    """Turns a checked ``RadiusRequest`` into reply bytes (or None: no answer)."""

    def __init__(self, dictionary: RadiusDictionary, runner: Any, sessions: Any, link: Any = None,
                 *, tenant: str | None = None) -> None:
        self.dictionary = dictionary
        self.runner = runner
        self.sessions = sessions
        self.link = link
        self.tenant = tenant
        self._background: set[asyncio.Task] = set()
        # The attributes the template reads, when the runner is a TemplateRunner (tests
        # script the runner with a plain callable that gets the full view).
        # A template reading below a first name (A.B) keeps the full view, which answers
        # such a path with A's values.
        template = getattr(runner, "template", None)
        flat = template is not None and hasattr(template, "request_names") \
            and not template.reads_nested_request()
        self._read_plan = ReadPlan(template.request_names(), dictionary) if flat else None

    def _for_template(self, request: RadiusRequest, view: RadiusMessageView | None) -> Any:
        """What the template reads: a ``DictView`` of the attributes it names (see ``ReadPlan``),
        else the full view (made here when the caller has none)."""
        plan = self._read_plan
        if plan is not None:
            return plan.read(request.packet, request.client.secret, view)
        return view if view is not None else RadiusMessageView(request.packet, self.dictionary,
                                                                request.client.secret)

    def __call__(self, request: RadiusRequest) -> Awaitable[bytes | None]:
        """The reply to await. A plain method handing back the coroutine that answers
        (accounting, access, NAS reboot) rather than a coroutine awaiting it: one frame
        fewer per request, and to pass through whenever the engine call resumes."""
        pkt = request.packet
        if pkt.code == codec.STATUS_SERVER:
            return _ready(self._status_reply(request))
        status = None
        if request.port_kind == "acct":
            status = pkt.get_int(ACCT_STATUS_TYPE)
            if status in (ACCT_ON, ACCT_OFF):
                return self._nas_reboot(request, status)
        vars_ = self.vars_for(request)
        if request.port_kind == "auth":
            return self._access(request, RadiusMessageView(pkt, self.dictionary, request.client.secret), vars_)
        if (status == ACCT_STOP or status == ACCT_INTERIM) and pkt.get(ACCT_SESSION_TIME) is None:
            self._add_answer_time(pkt, vars_)
        return self._accounting(request, vars_)

    def _add_answer_time(self, pkt: codec.RadiusPacket, vars_: dict[str, Any]) -> None:
        """For NASes that omit Acct-Session-Time (Kamailio acc_radius): the open session's AnswerTime."""
        session_id = pkt.get_str(ACCT_SESSION_ID)
        if not session_id or self.sessions is None:
            return
        try:
            found = self.sessions.active_sessions({ORIGIN_ID: session_id, ORIGIN_HOST: vars_["OriginHost"]})
        except Exception as err:      # the usage field then stays missing and the template says so
            log.warning("session %s: cannot look up its AnswerTime: %s", session_id, err)
            return
        for session in found:
            answer = session.get("AnswerTime") or (session.get("EventStart") or {}).get("AnswerTime")
            if answer:
                vars_["AnswerTime"] = answer
                return

    async def close(self, timeout: float = 2.0) -> None:
        """Let background disconnects finish (bounded), then cancel the rest."""
        if self._background:
            await asyncio.wait(list(self._background), timeout=timeout)
        for task in list(self._background):
            task.cancel()

    def vars_for(self, request: RadiusRequest) -> dict[str, Any]:
        """Template variables (documented at the top of templates/radius.yaml)."""
        out = {
            "*radReqType": REQ_AUTH if request.port_kind == "auth" else REQ_ACCT,
            "RemoteHost": request.addr[0],
            "RemotePort": request.addr[1],
            "OriginHost": nas_identity(request.packet, request.addr[0]),
            "*radClient": request.client.label,
        }
        if self.link is not None:
            out["*link"] = self.link
        if self.tenant:
            out["Tenant"] = self.tenant
        return out

    # ---------------------------------------------------------------- Access-Request

    async def _access(self, request: RadiusRequest, view: RadiusMessageView, vars_: dict) -> bytes:
        pkt = request.packet
        try:
            outcome = await self.runner.run(self._for_template(request, view), vars_)
        except Exception as err:        # TemplateFieldError (mandatory field missing) or a bug
            reason = _reason_of(err)
            log.warning("Access-Request id %d from %s rejected: %s", pkt.identifier, request.addr[0], reason)
            return self._encode_access(request, codec.ACCESS_REJECT, [("Reply-Message", reason)])
        if not outcome.matched:
            return self._encode_access(request, codec.ACCESS_REJECT,
                                       [("Reply-Message", "no request processor matched")])
        items = [(item.path, item.value) for item in outcome.reply]
        code = _reply_code(items, codec.ACCESS_ACCEPT)
        items = [(p, v) for p, v in items if p[0] != REPLY_CODE]
        engine_reply = outcome.engine_reply
        reason = ""
        if engine_reply is not None and engine_reply.error:
            code, reason = codec.ACCESS_REJECT, engine_reply.error
        elif engine_reply is not None and engine_reply.max_usage == 0:
            code, reason = codec.ACCESS_REJECT, engine_reply.reason or "INSUFFICIENT_CREDIT"
        if code == codec.ACCESS_ACCEPT:
            password_error = self._check_password(request, view, outcome.vars or vars_, engine_reply)
            if password_error:
                code, reason = codec.ACCESS_REJECT, password_error
        if code == codec.ACCESS_REJECT:
            # A reject carries only the reason (and any Reply-Message the template chose).
            items = [(p, v) for p, v in items if p[0] == "Reply-Message"]
            if not items:
                items = [(("Reply-Message",), reason or "rejected")]
        return self._encode_access(request, code, [(p[0], v) for p, v in items])

    def _check_password(self, request: RadiusRequest, view: RadiusMessageView, vars_: Mapping,
                        engine_reply: Any) -> str:
        """PAP/CHAP against the password the template or the engine supplied, if any.

        Like CGRateS, chargeway holds no password table: a processor sets
        ``*vars.UserPassword`` (e.g. from ``~*cgrep.Attributes.UserPassword``).
        No expected password: nothing to check (authorization by account only).
        """
        expected = vars_.get("UserPassword")
        if expected in (None, "") and engine_reply is not None:
            expected = (engine_reply.attributes or {}).get("UserPassword")
        if expected in (None, ""):
            return ""
        secret_pw = str(expected).encode()
        pkt = request.packet
        chap = pkt.get(codec.CHAP_PASSWORD)
        if chap is not None:
            challenge = pkt.get(codec.CHAP_CHALLENGE) or pkt.authenticator
            return "" if codec.chap_ok(chap, secret_pw, challenge) else "CHAP authentication failed"
        given = view.values(("User-Password",))
        if not given:
            return "no User-Password or CHAP-Password"
        return "" if given[0].encode() == secret_pw else "PAP authentication failed"

    def _encode_access(self, request: RadiusRequest, code: int, attrs: list[tuple[str, Any]]) -> bytes:
        pkt = request.packet
        raw = self._encode_attrs(attrs) + [(codec.PROXY_STATE, v) for v in pkt.get_all(codec.PROXY_STATE)]
        return codec.encode_reply(code, pkt.identifier, pkt.authenticator, raw, request.client.secret,
                                  message_authenticator=True)

    # ---------------------------------------------------------------- Accounting-Request

    async def _accounting(self, request: RadiusRequest, vars_: dict) -> bytes | None:
        pkt = request.packet
        try:
            outcome = await self.runner.run(self._for_template(request, None), vars_)
        except Exception as err:
            log.warning("Accounting-Request id %d from %s not recorded, no answer: %s",
                        pkt.identifier, request.addr[0], _reason_of(err))
            return None
        if not outcome.matched:
            log.warning("Accounting-Request id %d from %s (Acct-Status-Type %s): no processor matched, no answer",
                        pkt.identifier, request.addr[0],
                        RadiusMessageView(pkt, self.dictionary).first("Acct-Status-Type"))
            return None
        engine_reply = outcome.engine_reply
        if engine_reply is not None and engine_reply.error:
            if engine_reply.error.startswith(SERVER_ERROR):
                # Not recorded and maybe transient: stay silent so the NAS retransmits.
                log.warning("Accounting-Request id %d from %s failed, no answer: %s",
                            pkt.identifier, request.addr[0], engine_reply.error)
                return None
            # A permanent refusal (unknown account, unknown session...): retrying cannot help.
            log.info("Accounting-Request id %d from %s (%s): engine answered %s",
                     pkt.identifier, request.addr[0], outcome.processor_id, engine_reply.error)
        if (engine_reply is not None and not engine_reply.error and engine_reply.max_usage == 0
                and outcome.call in ("initiate", "update")):
            self._cut_unfunded(outcome.request, engine_reply.reason or "INSUFFICIENT_CREDIT")
        reply_items = outcome.reply
        if not reply_items and pkt.get(codec.PROXY_STATE) is None:
            # The usual answer: no attributes at all (header + Response Authenticator).
            return codec.empty_reply(codec.ACCOUNTING_RESPONSE, pkt.identifier, pkt.authenticator,
                                     request.client.secret)
        items = [(item.path[0], item.value) for item in reply_items if item.path[0] != REPLY_CODE]
        raw = self._encode_attrs(items) + [(codec.PROXY_STATE, v) for v in pkt.get_all(codec.PROXY_STATE)]
        return codec.encode_reply(codec.ACCOUNTING_RESPONSE, pkt.identifier, pkt.authenticator, raw,
                                  request.client.secret)

    def _cut_unfunded(self, fields: Mapping[str, Any], reason: str) -> None:
        """A Start/Interim the account cannot pay for: the NAS decides alone, so ask it to hang up.

        Accounting cannot refuse a session that is already up; without this the call would
        run unpaid until its Stop. The Disconnect-Request runs in the background so the
        Accounting-Response is not delayed by a slow or silent NAS.
        """
        if self.link is None or not fields.get(ORIGIN_ID):
            return
        event = dict(fields)

        async def cut() -> None:
            try:
                await self.link.disconnect_session(event, reason)
            except Exception as err:
                log.warning("session %s has no credit (%s) and the NAS did not disconnect it: %s",
                            event.get(ORIGIN_ID), reason, err)

        task = asyncio.get_running_loop().create_task(cut())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _nas_reboot(self, request: RadiusRequest, status: int) -> bytes | None:
        """Accounting-On/Off: terminate every session this NAS had open, with its reported usage."""
        pkt = request.packet
        nas = nas_identity(pkt, request.addr[0])
        try:
            open_sessions = self.sessions.active_sessions({ORIGIN_HOST: nas})
        except Exception as err:
            log.error("Accounting-%s from %s: cannot list sessions: %s", "On" if status == ACCT_ON else "Off",
                      nas, err)
            return None
        failed = 0
        unique = {s.get("CGRID") or (s.get(ORIGIN_ID), s.get(ORIGIN_HOST)): s for s in open_sessions}
        open_sessions = list(unique.values())
        for session in open_sessions:
            fields = session_terminate_fields(session)
            try:
                reply = await self.sessions.terminate(fields, {"*sessionsDebitInterval": 0})
            except ChargingError as err:
                reply = None
                log.warning("NAS %s reboot: terminate %s failed: %s", nas, fields.get(ORIGIN_ID), err)
            if reply is not None and getattr(reply, "error", "").startswith(SERVER_ERROR):
                failed += 1
        log.info("NAS %s sent Accounting-%s: closed %d open session(s)", nas,
                 "On" if status == ACCT_ON else "Off", len(open_sessions) - failed)
        if failed:
            return None         # some not recorded: the NAS retransmits and we retry them
        return codec.encode_reply(codec.ACCOUNTING_RESPONSE, pkt.identifier, pkt.authenticator,
                                  [(codec.PROXY_STATE, v) for v in pkt.get_all(codec.PROXY_STATE)],
                                  request.client.secret)

    # ---------------------------------------------------------------- Status-Server

    def _status_reply(self, request: RadiusRequest) -> bytes:
        """RFC 5997: Access-Accept on the auth port, Accounting-Response on the acct port."""
        pkt = request.packet
        code = codec.ACCESS_ACCEPT if request.port_kind == "auth" else codec.ACCOUNTING_RESPONSE
        return codec.encode_reply(code, pkt.identifier, pkt.authenticator, [], request.client.secret,
                                  message_authenticator=True)

    # ---------------------------------------------------------------- encoding

    def _encode_attrs(self, items: list[tuple[str, Any]]) -> list[tuple[codec.AttrKey, bytes]]:
        out: list[tuple[codec.AttrKey, bytes]] = []
        for name, value in items:
            if value is None or value == "":
                continue
            attr_name, _, tag = str(name).partition(":")
            try:
                definition = self.dictionary.definition(attr_name)
                values = value if isinstance(value, list) else [value]
                for one in values:
                    raw = self.dictionary.encode(definition, one, int(tag) if tag else 0)
                    if definition.type == "string" and len(raw) > 253:
                        raw = raw[:253]
                    out.append((definition.key, raw))
            except (KeyError, ValueError, TypeError) as err:
                log.warning("reply attribute %s=%r not encoded: %s", name, value, err)
        return out


async def _ready(reply: bytes) -> bytes:
    """An answer already made, as the awaitable ``RadiusHandler.__call__`` returns."""
    return reply


def _reply_code(items: list[tuple[tuple[str, ...], Any]], default: int) -> int:
    code = default
    for path, value in items:
        if path[0] == REPLY_CODE:
            code = REPLY_CODES.get(str(value), code)
    return code


def _reason_of(err: BaseException) -> str:
    """Reply-Message text: CGRateS's ``MANDATORY_IE_MISSING: [Attr]`` for a missing attribute."""
    missing = getattr(err, "missing", None)
    if missing and getattr(err, "reason", "") == "missing":
        return f"MANDATORY_IE_MISSING: [{'.'.join(missing)}]"
    reason = getattr(err, "reason", "") or str(err)
    return str(reason)[:240]


def session_terminate_fields(session: Mapping[str, Any]) -> dict[str, Any]:
    """Terminate fields for an open session from ``active_sessions`` (CGRateS ExternalSession shape).

    The usage charged is what the NAS last reported for it (the session's
    ``Usage`` so far), since a rebooting NAS reports nothing more.
    """
    fields = {name: session[name] for name in ("Tenant", "Account", "Subject", "Destination", "ToR",
                                                "Category", "RequestType", ORIGIN_ID, ORIGIN_HOST)
              if session.get(name) not in (None, "")}
    fields[USAGE] = session.get(USAGE) or 0
    fields["DisconnectCause"] = "NAS_REBOOT"
    return fields
