"""Kamailio evapi agent: evapi events -> template -> SessionManager -> evapi replies.

Per connection: an ``EvapiClient`` (socket, reconnects) and a ``KamailioLink``
(engine callbacks). Frames are processed concurrently, except that events of
the same call run in arrival order, so a CGR_CALL_END never overtakes the
CGR_CALL_START it follows while the latter is still being charged.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Awaitable, Coroutine, Mapping

from agents.kamailio.admission import Admission
from agents.kamailio.client import Backoff, EvapiClient, NotConnected
from agents.kamailio.codec import Frame
from agents.kamailio.events import (
    AUTH_REPLY, AUTH_REQUEST, CALL_END, CALL_START, DLG_LIST_REPLY, EVENT, INBOUND_EVENTS,
    PROCESS_MESSAGE, RESERVED_KEYS, TR_INDEX, blank_reply, disconnect_message, error_reply,
    format_attributes,
)
from agents.kamailio.link import KamailioLink
from engine.errors import EXISTS, SERVER_ERROR
from engine.event import ORIGIN_ID, USAGE
from engine.storage.deferral import unacknowledged_writes
from engine.templating import DictView, TemplateFieldError, TemplateRunner
from engine.units import SECOND

log = logging.getLogger("chargeway.kamailio")

# The evapi message being charged, for ``_ExtraFields`` (set around each template run).
_MESSAGE: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "evapi_message", default=None)
_ENGINE_CALLS = frozenset({"authorize", "initiate", "update", "terminate", "process_message",
                           "process_cdr"})

PROCESS_MESSAGE_REPLY = PROCESS_MESSAGE  # CGRateS answers with the event name when no reply_route
# How far past the engine's credit cut a reported call end still counts as the cut's own
# signalling delay (dlg.end_dlg -> BYE -> dialog:end); beyond it the call is billed as reported.
CREDIT_CUT_GRACE = 2 * SECOND
# DisconnectCause of a call whose dialog Kamailio no longer has after a reconnect.
DIALOG_LOST = "DIALOG_LOST"


class _ExtraFields:
    """The engine as the template sees it, plus CGRateS's rule for evapi events: every key
    of the message that is not reserved (event, tr_index, tr_label, cgr_flags, reply_route)
    reaches the engine event, so custom cfg fields land in the session and the CDR.
    Fields the template set win over raw keys of the same name."""

    def __init__(self, sessions: Any) -> None:
        self._sessions = sessions

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._sessions, name)
        if name not in _ENGINE_CALLS:
            return attr

        # A plain function returning the engine's coroutine for the runner to await (not a
        # coroutine awaiting it): one frame fewer to pass through at each of its resumptions.
        def call(fields: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
            message = _MESSAGE.get()
            if message:
                extra = {k: v for k, v in message.items() if k not in RESERVED_KEYS and k not in fields}
                if extra:
                    fields = {**extra, **fields}
            return attr(fields, *args, **kwargs)

        # Kept: later lookups find it without coming here (three engine calls per call).
        self.__dict__[name] = call
        return call


@dataclass(frozen=True, slots=True)
class ConnConfig:
    address: str
    alias: str = ""


class KamailioAgent:
    """Owns every evapi connection and turns their events into engine calls."""

    def __init__(self, sessions: Any, runner: TemplateRunner, conns: list[ConnConfig], *,
                 netstrings: bool = True, backoff: Backoff = Backoff(),
                 agent_vars: Mapping[str, Any] | None = None, max_background: int = 32) -> None:
        self.sessions = sessions
        self.runner = runner
        if runner.sessions is not None and not isinstance(runner.sessions, _ExtraFields):
            runner.sessions = _ExtraFields(runner.sessions)
        self.agent_vars = dict(agent_vars or {})
        self.links: list[KamailioLink] = []
        self._by_client: dict[int, KamailioLink] = {}
        self._tails: dict[tuple[int, str], asyncio.Task] = {}
        self._tasks: set[asyncio.Task] = set()
        self.processed = 0
        self.skipped = 0
        # Call start/end/CDR work (debits, settles, CDR writes) is bounded so a burst of
        # it cannot queue ahead of authorizations, whose latency is the caller's setup time:
        # at most max_background calls in flight (a call keeps its slot while its commit is
        # pending), and only a few started per loop pass, so the evapi socket is read (and
        # Kamailio's next request ACKed) between them (see admission.py).
        self._background = Admission(max_background, per_pass=2)
        for conn in conns:
            client = EvapiClient(conn.address, self, netstrings=netstrings, backoff=backoff,
                                 alias=conn.alias)
            link = KamailioLink(client)
            self.links.append(link)
            self._by_client[id(client)] = link

    async def start(self) -> None:
        for link in self.links:
            if self.sessions is not None:
                self.sessions.register_link(link)
            link.client.start()

    async def stop(self) -> None:
        for link in self.links:
            await link.client.stop()
            if self.sessions is not None:
                self.sessions.unregister_link(link)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- ConnectionHandler ------------------------------------------------

    def connected(self, client: EvapiClient) -> None:
        link = self._by_client[id(client)]
        if link.calls or self._engine_calls(link):
            self._spawn(self._reconcile(link))
        else:
            link.lost_at = None

    def _engine_calls(self, link: KamailioLink) -> list[dict[str, Any]]:
        """The engine's live sessions of this Kamailio (restored after a chargeway restart too)."""
        if self.sessions is None:
            return []
        try:
            return list(self.sessions.active_sessions({"OriginHost": link.origin_host}))
        except Exception:  # the listing is an optimisation of reconciliation, never fatal
            log.exception("evapi %s: listing the engine's sessions failed", link.client.alias)
            return []

    def disconnected(self, client: EvapiClient, lost_at: float) -> None:
        link = self._by_client[id(client)]
        # The first loss counts: a brief reconnect to a Kamailio that is still shutting down
        # must not move the end of the calls it lost.
        if link.lost_at is None:
            link.lost_at = lost_at

    def frame(self, client: EvapiClient, frame: Frame) -> None:
        link = self._by_client[id(client)]
        message = frame.message
        name = message.get(EVENT)
        if name == DLG_LIST_REPLY:
            link.dlg_list_reply(message)
            return
        if name not in INBOUND_EVENTS:
            self.skipped += 1
            log.error("evapi %s: skipped message with unknown event %r: %r", client.alias, name,
                      frame.raw[:200])
            return
        if name == AUTH_REQUEST:
            # Started right here, not queued behind whatever the loop has pending: an
            # authorization normally completes without waiting, and its reply is the
            # caller's post-dial delay.
            self._run_eagerly(self._handle(link, name, message))
            return
        key = message.get(ORIGIN_ID) or message.get("callid")
        coro = self._handle(link, name, message, bounded=True)
        if not key:
            self._spawn(coro)
            return
        tail_key = (id(client), str(key))
        previous = self._tails.get(tail_key)
        # Usually nothing of this call is still running (its start was charged long before
        # its end arrives): then there is nothing to wait for and no need for the _after layer.
        task = self._spawn(coro if previous is None or previous.done() else self._after(previous, coro))
        self._tails[tail_key] = task
        task.add_done_callback(lambda t: self._tails.pop(tail_key, None)
                               if self._tails.get(tail_key) is t else None)

    # -- processing -------------------------------------------------------

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _run_eagerly(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` now until it finishes or first waits; a task resumes it if it waits."""
        try:
            waiting_on = coro.send(None)
        except StopIteration:
            return
        except BaseException:  # _handle catches its own errors; this is a bug guard
            log.exception("evapi: authorization handler failed")
            return
        self._spawn(_resume(coro, waiting_on))

    @staticmethod
    async def _after(previous: asyncio.Task | None, coro: Coroutine[Any, Any, None]) -> None:
        try:
            if previous is not None and not previous.done():
                await asyncio.wait([previous])
            await coro
        finally:
            coro.close()

    def _vars(self, link: KamailioLink, name: str, message: Mapping[str, Any]) -> dict[str, Any]:
        out = {**self.agent_vars, "*event": name, "*cmd": name, "OriginHost": link.origin_host,
               "RemoteHost": link.client.address, "*link": link}
        if name == CALL_END:
            cut = link.credit_cuts.get(str(message.get(ORIGIN_ID) or message.get("callid") or ""))
            if cut is not None:
                # The template bills a call we cut for credit up to the cut, not the few ms
                # of signalling that the BYE took (see templates/kamailio.yaml).
                out["CreditCutUsage"] = cut
                out["CreditCutGrace"] = cut + CREDIT_CUT_GRACE
        return out

    async def _handle(self, link: KamailioLink, name: str, message: dict[str, Any], *,
                      bounded: bool = False) -> None:
        """Process one event; ``bounded`` (call start/end, CDRs) first waits for admission
        (see admission.py) and holds its slot until done. One coroutine for both, so each
        resumption of the engine call below passes through one agent frame fewer."""
        if bounded:
            await self._background.enter()
        try:
            try:
                await self._process(link, name, message)
            finally:
                if name == CALL_END:  # charged or not, Kamailio has no such dialog any more
                    link.untrack(str(message.get(ORIGIN_ID) or message.get("callid") or ""))
        finally:
            if bounded:
                self._background.leave()

    async def _process(self, link: KamailioLink, name: str, message: dict[str, Any]) -> None:
        replyable = name == AUTH_REQUEST or (name == PROCESS_MESSAGE and TR_INDEX in message)
        default_event = AUTH_REPLY if name == AUTH_REQUEST else PROCESS_MESSAGE_REPLY
        # set/clear rather than a reset token: an eagerly started authorization may finish
        # in a task, i.e. in another context than the one it started in.
        _MESSAGE.set(message)
        try:
            if replyable:
                outcome = await self.runner.run(DictView(message), self._vars(link, name, message))
            else:
                # Kamailio waits for no answer to this event: its writes may share a commit.
                with unacknowledged_writes():
                    outcome = await self.runner.run(DictView(message), self._vars(link, name, message))
        except TemplateFieldError as exc:
            log.warning("evapi %s: %s %s: %s", link.client.alias, name, message.get(ORIGIN_ID, ""), exc)
            if replyable:
                self._send(link, error_reply(message, f"MANDATORY_IE_MISSING: [{exc.tag}]", default_event))
            return
        except Exception as exc:  # the transaction in Kamailio must be resumed whatever happened
            log.exception("evapi %s: %s failed", link.client.alias, name)
            if replyable:
                self._send(link, error_reply(message, f"{SERVER_ERROR}: {exc}", default_event))
            return
        finally:
            _MESSAGE.set(None)
        self.processed += 1
        if not outcome.matched:
            log.warning("evapi %s: no template processor for %s", link.client.alias, name)
            if replyable:
                self._send(link, error_reply(message, "NOT_IMPLEMENTED", default_event))
            return
        reply = outcome.engine_reply
        if replyable:
            self._send(link, self._reply(message, outcome.reply, default_event))
        if name == CALL_START:
            self._call_started(link, message, outcome.request, reply)

    @staticmethod
    def _reply(request: Mapping[str, Any], items: list, default_event: str) -> dict[str, Any]:
        """Template reply items over a complete skeleton (Kamailio reads every key)."""
        reply = blank_reply(request, default_event)
        for path, value in items:
            reply[path[-1]] = _jsonable(value)
        return reply

    def _call_started(self, link: KamailioLink, message: Mapping[str, Any], request: Mapping[str, Any],
                      reply: Any) -> None:
        origin_id = str(request.get(ORIGIN_ID) or "")
        if reply is not None and reply.error.startswith(EXISTS):
            # A repeated CGR_CALL_START for a session already running: not a reason to cut it.
            log.warning("evapi %s: duplicate CGR_CALL_START for %s ignored", link.client.alias, origin_id)
            return
        refused = reply is not None and (reply.error or reply.max_usage == 0)
        if refused:
            # As CGRateS: a call the engine will not charge is cut at once.
            reason = reply.error or reply.reason or "INSUFFICIENT_CREDIT"
            log.warning("evapi %s: initiate %s refused (%s): disconnecting", link.client.alias,
                        origin_id, reason)
            self._send(link, disconnect_message(message.get("h_entry", ""), message.get("h_id", ""), reason))
            return
        if origin_id:
            link.track(origin_id, dict(request))

    def _send(self, link: KamailioLink, message: dict[str, Any]) -> None:
        try:
            link.client.send(message)
        except NotConnected:
            log.error("evapi %s: lost before replying %s %s/%s", link.client.alias, message.get("Event"),
                      message.get("TransactionIndex"), message.get("TransactionLabel"))

    # -- reconciliation -----------------------------------------------------

    async def _reconcile(self, link: KamailioLink) -> None:
        """After a reconnect: terminate the calls Kamailio no longer has.

        Usage of such a call runs to the moment the connection dropped: the
        last instant Kamailio could still have reported the call's end (a
        restarted Kamailio forgets its dialogs, so nobody can report later).
        """
        try:
            dialogs = await link.list_dialogs()
        except Exception as exc:
            log.error("evapi %s: reconciliation skipped, dlg.list failed: %s", link.client.alias, exc)
            return
        alive = {d.call_id for d in dialogs}
        lost_at = link.lost_at or time.time()
        for origin_id, call in list(link.calls.items()):
            if origin_id in alive:
                continue
            link.untrack(origin_id)
            usage_ns = max(0, int((lost_at - call.answered_at) * 1e9))
            fields = dict(call.request)
            fields[USAGE] = usage_ns
            fields["DisconnectCause"] = DIALOG_LOST
            await self._terminate_lost(link, origin_id, fields)
        # Sessions the engine restored from storage after a chargeway restart: this agent
        # never saw them start, so the engine's own estimate of their usage applies.
        for external in self._engine_calls(link):
            origin_id = str(external.get(ORIGIN_ID) or "")
            if not origin_id or origin_id in alive or origin_id in link.calls:
                continue
            fields = {name: external[name] for name in ("Tenant", "Account", ORIGIN_ID, "OriginHost")
                      if external.get(name) not in (None, "")}
            fields["DisconnectCause"] = DIALOG_LOST
            await self._terminate_lost(link, origin_id, fields)
        link.lost_at = None

    async def _terminate_lost(self, link: KamailioLink, origin_id: str, fields: dict[str, Any]) -> None:
        try:
            await self.sessions.terminate(fields)
            usage = fields.get(USAGE)
            log.warning("evapi %s: call %s ended while disconnected; terminated (usage %s)",
                        link.client.alias, origin_id,
                        f"{usage / 1e9:.3f}s" if isinstance(usage, int) else "as the engine estimates")
        except Exception as exc:
            log.warning("evapi %s: terminating lost call %s: %s", link.client.alias, origin_id, exc)


async def _resume(coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    """Finish a coroutine started eagerly, doing what a Task does between its steps."""
    try:
        while True:
            if waiting_on is None:  # a bare yield (asyncio.sleep(0)): just reschedule
                await asyncio.sleep(0)
            else:
                waiting_on._asyncio_future_blocking = False
                await asyncio.wait([waiting_on])
            try:
                waiting_on = coro.send(None)
            except StopIteration:
                return
    except asyncio.CancelledError:
        coro.close()
        raise


def _jsonable(value: Any) -> Any:
    """Reply values as Kamailio's json_get_field reads them."""
    if isinstance(value, dict):
        return format_attributes(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, (bytes, bytearray)):
        return value.decode(errors="replace")
    if value is None:
        return ""
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
