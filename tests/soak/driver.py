"""The seeded soak driver: a random but reproducible day of traffic against a real engine.

Every step draws from ``random.Random(seed)`` only, and time moves only through the
manual clock, so a seed replays exactly. A step runs a few operations concurrently on
the event loop (several calls on the same few accounts, as a busy switch would), then
the driver notices what the engine ended by itself. Checkpoints run the money invariants
of ``tests.soak.invariants``; a violation stops the run with the seed, the step and the
last operations, which is all that is needed to replay it.
"""

from __future__ import annotations

import asyncio
import random
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Awaitable, Callable

from engine.errors import ChargingError
from engine.event import cgrid as make_cgrid
from engine.storage.base import CdrFilter
from engine.units import SECOND, format_time
from tests.engine.sessions.helpers import ManualClock
from tests.soak import invariants
from tests.soak.harness import CARRIER, TENANT, SoakAgent, SoakEngine, build_engine
from tests.soak.model import (
    ENDED, HANGING_UP, LIVE, ORIGIN_HOST, ORPHAN, PENDING_CDR, REFUSED, Call, World,
)

MIB = 1_048_576

# (weight, account, destination, ToR, category, request type): traffic the sample plan rates.
PROFILES: list[tuple[int, str, str, str, str, str]] = [
    (6, "1001", "1002", "*voice", "call", "*prepaid"),            # fee + first-minute increment
    (2, "1001", "1003", "*voice", "call", "*prepaid"),            # MaxCost *disconnect at 12 s
    (3, "intl", "+4930123456", "*voice", "call", "*prepaid"),     # Germany (*middle): carrier run too
    (2, "intl", "+491701234567", "*voice", "call", "*prepaid"),   # German mobile, *down rounding
    (3, "1002", "1001", "*voice", "call", "*prepaid"),            # voice units before money
    (2, "1002", "1003", "*voice", "call", "*prepaid"),            # MaxCost *free
    (3, "1003", "1004", "*voice", "call", "*prepaid"),            # *any at 1 cent/minute
    (3, "1004", "1001", "*voice", "call", "*prepaid"),            # peak/off-peak timings
    (2, "1004", "1002", "*data", "data", "*prepaid"),             # data units, then money
    (2, "1003", "1002", "*voice", "call", "*postpaid"),
    (2, "postpaid", "+4930555", "*voice", "call", "*postpaid"),   # AllowNegative + carrier
    (1, "1003", "1001", "*voice", "call", "*pseudoprepaid"),
    (1, "1001", "5555", "*voice", "call", "*prepaid"),            # unauthorized destination
]
ACCOUNTS = ("1001", "1002", "1003", "1004", CARRIER, "postpaid", "intl")
# Accounts that also take traffic the engine may legitimately overdraw (postpaid, one-shot
# CDRs and terminates, calls reporting more usage than granted). Every other account only
# sees honest prepaid calls, so it must never go below zero.
LENIENT = frozenset({"1003", "postpaid"})
ONESHOT_PROFILES = [p for p in PROFILES if p[1] == "1003"]
MAX_LIVE = 16
_OP_RNG: ContextVar[random.Random | None] = ContextVar("soak_op_rng", default=None)


class SoakFailure(AssertionError):
    """An invariant broke; the message says how to replay it."""


@dataclass
class SoakSettings:
    seed: int
    steps: int
    check_every: int = 25
    restarts: int = 2
    # Also check what the engine is known to get wrong (README "Known issues"), by name
    # (none open today; STRICT_CHECKS lists them).
    strict: frozenset[str] = frozenset()

    def checks(self, name: str) -> bool:
        return name in self.strict


STRICT_CHECKS: frozenset[str] = frozenset()
# Checks of engine bugs since fixed: always on now (CI guards them); the names are still accepted.
# duplicates (one-shot events delivered twice at once), input (negative/NaN usages),
# rounding (*down/*middle slices of an honest prepaid call to Germany may not overdraw `intl`).
FIXED_CHECKS = frozenset({"duplicates", "input", "rounding"})


def parse_strict(value: str) -> frozenset[str]:
    """``CHARGEWAY_SOAK_STRICT``: ``1``/``all`` for every known issue, or a comma list."""
    value = value.strip().lower()
    if value in ("", "0", "false", "no"):
        return frozenset()
    if value in ("1", "all", "true", "yes"):
        return STRICT_CHECKS
    names = frozenset(v.strip() for v in value.split(",") if v.strip())
    unknown = names - STRICT_CHECKS - FIXED_CHECKS
    if unknown:
        raise ValueError(f"CHARGEWAY_SOAK_STRICT: unknown check(s) {sorted(unknown)}; "
                         f"known {sorted(STRICT_CHECKS | FIXED_CHECKS)}")
    return names & STRICT_CHECKS


def settings_for(seed: int, steps: int, *, strict: frozenset[str] = frozenset(),
                 short_steps: int = 120) -> SoakSettings:
    """The settings a run of ``steps`` uses (so a replay reproduces it exactly): a restart
    every 250 steps (at least two), invariants every 25 steps, every 100 in long runs."""
    return SoakSettings(seed=seed, steps=steps, restarts=max(2, steps // 250),
                        check_every=25 if steps <= short_steps else 100, strict=strict)


@dataclass
class Soak:
    engine: SoakEngine
    world: World
    root: random.Random
    settings: SoakSettings
    step: int = 0
    ops: dict[str, int] = field(default_factory=dict)
    pending_hangups: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    busy: set[str] = field(default_factory=set)
    observed: set[str] = field(default_factory=set)
    # Repeats to deliver once the concurrent operations of a step are done (checked alone).
    repeats: list[tuple[str, Callable[[], Awaitable[Any]]]] = field(default_factory=list)

    # --- plumbing ---------------------------------------------------------------------------

    @property
    def rng(self) -> random.Random:
        """The random source of the running operation: each concurrent operation draws from
        its own generator, seeded from the step's, so the order in which concurrent commits
        complete cannot change what any operation decides (a seed replays)."""
        return _OP_RNG.get(None) or self.root

    async def _seeded(self, seed: int, fn: Callable[[], Awaitable[Any]]) -> Any:
        _OP_RNG.set(random.Random(seed))  # a task's own context: invisible to the others
        return await fn()

    @property
    def s(self) -> Any:
        return self.engine.sessions

    @property
    def clock(self) -> ManualClock:
        return self.engine.clock

    def fail(self, message: str) -> None:
        tail = "\n  ".join(self.world.log[-25:])
        raise SoakFailure(f"seed={self.settings.seed} step={self.step}: {message}\n"
                          f"replay: {self._strict_env()}"
                          f"CHARGEWAY_SOAK_SEED={self.settings.seed} "
                          f"CHARGEWAY_SOAK_STEPS={self.settings.steps} scripts/test.sh tests/soak\n"
                          f"last operations:\n  {tail}")

    def _strict_env(self) -> str:
        return f"CHARGEWAY_SOAK_STRICT={','.join(sorted(self.settings.strict))} " if self.settings.strict else ""

    def count(self, name: str) -> None:
        self.ops[name] = self.ops.get(name, 0) + 1

    def elapsed(self, call: Call) -> int:
        return self.clock.monotonic() - call.start_mono

    async def unchanged(self, what: str, action: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``action`` alone and fail if it moved any balance or live session."""
        await self.s.idle()
        before = invariants.snapshot(self.engine)
        cdrs_before = await invariants.last_cdr(self.engine)
        result = await action()
        await self.s.idle()
        after = invariants.snapshot(self.engine)
        cdrs_after = await invariants.last_cdr(self.engine)
        if before != after or cdrs_before != cdrs_after:
            moved = {k: (v, after["balances"].get(k)) for k, v in before["balances"].items()
                     if after["balances"].get(k) != v}
            self.fail(f"{what} changed the books: balances {moved}, last CDR {cdrs_before}->{cdrs_after}, "
                      f"sessions {sorted(before['sessions'])} -> {sorted(after['sessions'])}")
        return result

    # --- the agent side -----------------------------------------------------------------------

    def behaviour(self, origin: str) -> str:
        """How the switch reacts to a disconnect: stable per call (hash of the seed and origin)."""
        roll = random.Random(f"{self.settings.seed}:{origin}").random()
        return "fail" if roll < 0.15 else "late" if roll < 0.35 else "hangup"

    async def on_disconnect(self, event: Any, reason: str) -> None:
        """The switch hangs up at once with the engine's usage, later, or is unreachable."""
        origin = str(event.get("OriginID"))
        how = self.behaviour(origin)
        self.world.note(f"disconnect {origin} {reason} usage={event.get('Usage')} -> {how}")
        call = self.world.calls.get(origin)
        if how == "fail":
            raise ConnectionError("switch unreachable")
        if call is None:
            return
        if how == "late":
            if call.state in (LIVE, ORPHAN):
                call.state = HANGING_UP
            self.pending_hangups.append((dict(event), reason))
            return
        await self.s.terminate({**call.fields(), "Usage": event["Usage"], "DisconnectCause": reason},
                               call.opts)
        call.state = ENDED

    def alive(self) -> list[tuple[str, str]]:
        return [(ORIGIN_HOST, c.origin) for c in self.world.calls.values() if c.state == LIVE]

    def sync(self) -> None:
        """Calls the engine ended by itself (cut with a failing agent, TTL, grace, force) are
        over for the switch too; a later terminate for them is a late duplicate."""
        for call in self.world.calls.values():
            if call.state in (LIVE, ORPHAN, HANGING_UP) and call.kind == "session" and not any(
                    e.get("OriginID") == call.origin for e, _ in self.pending_hangups):
                if make_cgrid(call.origin, ORIGIN_HOST) not in self.s.sessions:
                    call.state = ENDED

    # --- operations ----------------------------------------------------------------------------

    async def new_call(self) -> None:
        weights = [p[0] for p in PROFILES]
        _, account, dest, tor, category, rtype = self.rng.choices(PROFILES, weights)[0]
        loop = tor == "*voice" and rtype != "*pseudoprepaid" and self.rng.random() < 0.6
        call = Call(self.world.new_origin("call"), account, dest, rtype, tor, category, loop=loop,
                    answer=format_time(self.clock.now()), start_mono=self.clock.monotonic())
        if loop:
            if self.rng.random() < 0.5:
                call.opts["*sessionsDebitInterval"] = self.rng.choice(["5s", "10s", "30s"])
        else:
            call.opts["*sessionsDebitInterval"] = 0
            if self.rng.random() < 0.4:
                call.opts["*sessionsTTL"] = self.rng.choice(["20s", "60s"])
        usage = self.rng.randint(1, 20) * MIB if tor == "*data" else self.rng.randint(5, 120) * SECOND
        self.world.calls[call.origin] = call
        self.world.note(f"initiate {call.origin} {account}->{dest} {rtype} {tor} loop={loop} usage={usage}")
        before = self.engine.balances()
        auth = await self.s.authorize(call.fields(Usage=usage), call.opts)
        if self.engine.balances() != before:
            self.fail(f"authorize of {call.origin} moved money")
        if auth.max_usage is None or auth.max_usage < 0 or auth.max_usage > usage:
            self.fail(f"authorize {call.origin}: MaxUsage {auth.max_usage} for {usage} requested")
        reply = await self.s.initiate(call.fields(Usage=usage), call.opts, link=self.engine.agent)
        # (a grant may exceed the request when the rate's increment was paid in full)
        if reply.max_usage is None or reply.max_usage < 0:
            self.fail(f"initiate {call.origin}: MaxUsage {reply.max_usage} for {usage} requested")
        if reply.max_usage == 0:
            call.state = REFUSED
            if not reply.reason:
                self.fail(f"initiate {call.origin} refused without a reason")
            return
        call.last_grant = reply.max_usage
        if self.rng.random() < 0.08:
            # The switch loses the call. Only supervised sessions can be noticed: the debit
            # loop (some run prepaid) or a TTL; the default session_ttl is 0, as in CGRateS.
            looped = loop and (call.request_type == "*prepaid" or "carrier" in call.runs)
            call.state = ORPHAN if (looped or "*sessionsTTL" in call.opts) else LIVE
        if self.rng.random() < 0.05:
            # the switch retransmits its initiate: refused, nothing charged twice
            async def again() -> None:
                try:
                    await self.s.initiate(call.fields(Usage=usage), call.opts, link=self.engine.agent)
                except ChargingError as err:
                    if err.code != "EXISTS":
                        self.fail(f"repeated initiate {call.origin}: {err}")
                else:
                    self.fail(f"repeated initiate {call.origin} accepted")
            self.repeats.append((f"repeated initiate {call.origin}", again))

    async def update(self, call: Call) -> None:
        if call.loop:
            last = min(self.elapsed(call), self.rng.randint(1, 30) * SECOND)
            self.world.note(f"update {call.origin} (loop) LastUsed={last}")
            reply = await self.s.update(call.fields(LastUsed=last, Usage="60s"), call.opts)
            if reply.max_usage == 0 and call.state == LIVE:
                await self.terminate(call)
            return
        if call.state != LIVE:
            return
        roll = self.rng.random()
        last = call.last_grant if roll < 0.6 else self.rng.randint(0, call.last_grant)
        if roll > 0.95 and self.lenient(call):
            last = call.last_grant + self.rng.randint(1, 20) * SECOND  # used more than granted
            self.world.allow_overdraw(call, "LastUsed beyond the grant")
        want = self.rng.randint(1, 10) * MIB if call.tor == "*data" else self.rng.randint(5, 90) * SECOND
        self.world.note(f"update {call.origin} LastUsed={last} Usage={want}")
        reply = await self.s.update(call.fields(LastUsed=last, Usage=want), call.opts)
        call.used += last
        if reply.max_usage is None or reply.max_usage < 0:
            self.fail(f"update {call.origin}: MaxUsage {reply.max_usage} for {want} requested")
        call.last_grant = reply.max_usage
        if reply.max_usage == 0 and call.state == LIVE:
            await self.terminate(call, usage=call.used)

    @staticmethod
    def lenient(call: Call) -> bool:
        """Only calls touching lenient accounts alone may misreport their usage upwards."""
        return call.accounts <= LENIENT

    def final_usage(self, call: Call) -> int:
        """What the switch reports: the honest usage, sometimes less, rarely more than granted."""
        honest = self.elapsed(call) if call.loop else call.used + self.rng.randint(0, call.last_grant)
        roll = self.rng.random()
        if roll < 0.2:
            return self.rng.randint(0, honest)
        if roll > 0.95 and self.lenient(call):
            self.world.allow_overdraw(call, "final usage beyond the grant")
            return honest + self.rng.randint(1, 90) * SECOND
        return honest

    async def terminate(self, call: Call, usage: int | None = None) -> None:
        if call.request_type in ("*postpaid", "*pseudoprepaid"):
            self.world.allow_overdraw(call, call.request_type, default_run_only=True)
        total = self.final_usage(call) if usage is None else usage
        self.world.note(f"terminate {call.origin} Usage={total}")
        form = self.rng.random()
        if not call.loop and form < 0.15 and usage is None:
            fields = call.fields(LastUsed=max(0, total - call.used))  # LastUsed completes the usage
            if total < call.used:
                fields = call.fields(Usage=total)
        else:
            fields = call.fields(Usage=total)
        if self.rng.random() < 0.08:
            # the switch retransmits its terminate while the first is still being settled
            replies = await asyncio.gather(self.s.terminate(fields, call.opts),
                                           self.s.terminate(fields, call.opts))
            closed = [r for r in replies if r.run_cost]
            if len(closed) > 1:
                self.fail(f"terminate {call.origin} sent twice at once settled twice: {replies}")
            reply = closed[0] if closed else replies[0]
            if not all(r.ok for r in replies):
                self.fail(f"terminate {call.origin} sent twice at once: {replies}")
        else:
            reply = await self.s.terminate(fields, call.opts)
        if not reply.ok:
            self.fail(f"terminate {call.origin}: {reply.error}")
        call.state = ENDED
        await self.answer_matches_cdrs(call, reply.run_cost, total)

    async def answer_matches_cdrs(self, call: Call, run_cost: dict[str, Decimal], usage: int) -> None:
        """What terminate answered is what the CDRs say (cost per run, and the usage)."""
        if not run_cost:
            return  # the engine had already closed it (cut, TTL, force): a late duplicate
        rows = await self.engine.storage.query_cdrs(CdrFilter(cgrids=(make_cgrid(call.origin, ORIGIN_HOST),)))
        recorded = {r.run_id: (r.cost, r.usage) for r in rows}
        for run_id, cost in run_cost.items():
            if recorded.get(run_id) != (cost, usage):
                self.fail(f"terminate {call.origin} answered {run_id} cost {cost} usage {usage}, "
                          f"CDR says {recorded.get(run_id)}")

    async def duplicate_terminate(self, call: Call) -> None:
        """A terminate repeated later (even with another usage) changes nothing."""
        usage = self.rng.randint(0, 600) * SECOND
        self.world.note(f"duplicate terminate {call.origin} Usage={usage}")
        await self.unchanged(f"duplicate terminate of {call.origin}",
                             lambda: self.s.terminate(call.fields(Usage=usage), call.opts))

    async def oneshot_terminate(self) -> None:
        """A terminate for a session the engine never saw: charged once as a whole call."""
        _, account, dest, tor, category, _ = self.rng.choice(ONESHOT_PROFILES)
        call = Call(self.world.new_origin("lone"), account, dest, tor=tor, category=category,
                    answer=format_time(self.clock.now()), kind="oneshot", state=ENDED)
        self.world.calls[call.origin] = call
        self.world.allow_overdraw(call, "terminate of an unknown session")
        fields = call.fields(Usage=self.rng.randint(1, 300) * SECOND)
        self.world.note(f"unknown terminate {call.origin} {account}->{dest} {fields['Usage']}")
        # delivered twice at once (an agent retransmitting while the first commits), then again
        await asyncio.gather(self.s.terminate(fields), self.s.terminate(fields))
        self.repeats.append((f"repeated unknown-session terminate {call.origin}",
                             lambda: self.s.terminate(fields)))

    async def process_cdr(self) -> None:
        """ProcessCDR of a call the engine never saw (postpaid or *rated), then its duplicate."""
        _, account, dest, tor, category, _ = self.rng.choice(ONESHOT_PROFILES)
        rated = self.rng.random() < 0.3
        call = Call(self.world.new_origin("cdr"), account, dest, "*rated" if rated else "*postpaid", tor,
                    category, answer=format_time(self.clock.now()), kind="rated" if rated else "cdr",
                    state=ENDED)
        self.world.allow_overdraw(call, "ProcessCDR")
        self.world.calls[call.origin] = call
        extra: dict[str, Any] = {"Usage": self.rng.randint(0, 400) * SECOND}
        if rated:
            extra["Cost"] = str(Decimal(self.rng.randint(0, 500)) / 100)
        fields = call.fields(**extra)
        self.world.note(f"ProcessCDR {call.origin} {call.request_type} {account}->{dest} {extra}")
        await asyncio.gather(self.s.process_cdr(fields), self.s.process_cdr(fields))
        self.repeats.append((f"duplicate ProcessCDR {call.origin}", lambda: self.s.process_cdr(fields)))

    async def cdr_of_ended(self, call: Call) -> None:
        """The switch also sends a CDR for a call already terminated: nothing changes."""
        self.world.note(f"ProcessCDR after terminate {call.origin}")
        await self.unchanged(f"ProcessCDR of ended call {call.origin}",
                             lambda: self.s.process_cdr(call.fields(Usage=self.elapsed(call))))

    async def cdr_ends_live(self, call: Call) -> None:
        """A CDR for a call still in progress ends it (the switch skipped terminate)."""
        total = self.final_usage(call)
        self.world.note(f"ProcessCDR ends live {call.origin} Usage={total}")
        if call.request_type in ("*postpaid", "*pseudoprepaid"):
            self.world.allow_overdraw(call, call.request_type, default_run_only=True)
        await self.s.process_cdr(call.fields(Usage=total), call.opts)
        call.state = ENDED

    async def sms(self) -> None:
        """A prepaid SMS (all or nothing), its retransmission, then its CDR."""
        call = Call(self.world.new_origin("sms"), self.rng.choice(["1001", "1003"]), "1002", tor="*sms",
                    category="sms", loop=False, kind="sms", state=PENDING_CDR)
        self.world.calls[call.origin] = call
        fields = call.fields(Usage=1)
        self.world.note(f"SMS {call.origin} from {call.account}")
        reply, _ = await asyncio.gather(self.s.process_message(fields), self.s.process_message(fields))
        self.repeats.append((f"retransmitted SMS {call.origin}", lambda: self.s.process_message(fields)))
        if reply.max_usage != 1:
            call.state, call.expect_cdr = ENDED, False
            return
        if self.rng.random() < 0.7:
            await self.sms_cdr(call)

    async def sms_cdr(self, call: Call) -> None:
        await self.s.process_cdr(call.fields(Usage=1))
        call.state = ENDED

    async def topup(self) -> None:
        account = self.rng.choice(ACCOUNTS)
        amount = Decimal(self.rng.randint(5, 200)) / 100
        balance_id = self.rng.choice(["*default", "extra"])
        self.world.note(f"topup {account} +{amount} ({balance_id})")
        await self.engine.accounts.add_balance(TENANT, account, "*monetary", amount, {"ID": balance_id})
        self.world.topups[account] += amount

    async def late_hangups(self) -> None:
        """The switch finally hangs up calls it was told to disconnect."""
        pending, self.pending_hangups = self.pending_hangups, []
        for event, reason in pending:
            call = self.world.calls.get(str(event.get("OriginID")))
            if call is None:
                continue
            self.world.note(f"late hang-up {call.origin} {reason}")
            await self.s.terminate({**call.fields(), "Usage": event["Usage"], "DisconnectCause": reason},
                                   call.opts)
            call.state = ENDED

    async def force_disconnect(self) -> None:
        account = self.rng.choice(ACCOUNTS[:4])
        self.world.note(f"ForceDisconnect {account}")
        await self.s.force_disconnect({"Account": account})

    async def malformed(self) -> None:
        """Bad requests are ChargingErrors that change nothing."""
        live = self.world.live()
        target = self.rng.choice(live) if live else Call("ghost", "1001", "1002")
        origin = self.world.new_origin("bad")
        base = Call(origin, "1001", "1002", answer=format_time(self.clock.now()))
        cases: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("initiate without Account", lambda: self.s.initiate({**base.fields(), "Account": None})),
            ("initiate without OriginID", lambda: self.s.initiate({**base.fields(), "OriginID": None})),
            ("authorize without Account", lambda: self.s.authorize({**base.fields(), "Account": ""})),
            ("initiate with bad Usage", lambda: self.s.initiate(base.fields(Usage="12 parsecs"))),
            ("initiate with bad AnswerTime", lambda: self.s.initiate(base.fields(AnswerTime="yesterday"))),
            ("event that is not a mapping", lambda: self.s.initiate(["OriginID", origin])),
            ("update with bad LastUsed", lambda: self.s.update(target.fields(LastUsed="ten"), target.opts)),
            ("terminate with bad Usage", lambda: self.s.terminate(target.fields(Usage="1h5x"), target.opts)),
            ("terminate without OriginID", lambda: self.s.terminate({**target.fields(), "OriginID": None})),
            ("ProcessCDR without OriginID", lambda: self.s.process_cdr({**base.fields(), "OriginID": ""})),
            ("unknown terminate without Account",
             lambda: self.s.terminate({**base.fields(Usage="10s"), "Account": None})),
            ("terminate with negative Usage", lambda: self.s.terminate(target.fields(Usage="-30s"), target.opts)),
            ("update with negative LastUsed",
             lambda: self.s.update(target.fields(LastUsed="-60s", Usage="60s"), target.opts)),
            ("initiate with NaN Usage", lambda: self.s.initiate(base.fields(Usage=float("nan")))),
        ]
        name, action = self.rng.choice(cases)
        self.world.note(f"malformed: {name} ({target.origin})")

        async def expect_error() -> None:
            try:
                await action()
            except ChargingError:
                return
            except Exception as exc:  # the engine must answer with its own error, never crash
                self.fail(f"{name}: {type(exc).__name__}: {exc} instead of a ChargingError")
            self.fail(f"{name}: accepted")

        await self.unchanged(name, expect_error)

    async def restart(self) -> None:
        """Close storage and start again from disk: the books and live sessions are identical."""
        await self.s.idle()
        before_books = self.engine.balances()
        before_live = invariants.live_state(self.engine)
        self.world.note(f"restart with {len(before_live)} live sessions")
        await self.engine.restart()
        after_books, after_live = self.engine.balances(), invariants.live_state(self.engine)
        if before_books != after_books:
            moved = {k: (v, after_books.get(k)) for k, v in before_books.items() if after_books.get(k) != v}
            self.fail(f"restart changed balances: {moved}")
        money = {k: [(r, c) for r, c, _ in runs] for k, runs in before_live.items()}
        if money != {k: [(r, c) for r, c, _ in runs] for k, runs in after_live.items()}:
            self.fail(f"restart rebuilt live sessions differently:\n  before {before_live}\n  after  {after_live}")
        for cgrid, runs in before_live.items():
            for (run_id, _, had), (_, _, has) in zip(runs, after_live[cgrid]):
                if has > had:
                    self.fail(f"restart: session {cgrid} run {run_id} claims {has} ns reserved, "
                              f"only {had} ns were granted before")
                if has < had:
                    # A grant that cost nothing (MaxCost *free) leaves no ledger row, so recovery
                    # rebuilds less usage; the next update reserves it again, at no cost.
                    self.observed.add(f"restart rebuilt {run_id} with {has} ns reserved of {had} ns")

    async def check(self, final: bool = False) -> None:
        await self.s.idle()
        problems = await invariants.check_books(self.engine, self.world)
        if final:
            problems += await invariants.check_final(self.engine, self.world)
            problems += invariants.check_warnings(self.engine.agent, self.engine.config.min_dur_low_balance)
        if problems:
            self.fail("invariants broken:\n  " + "\n  ".join(problems))

    # --- the schedule --------------------------------------------------------------------------

    def pick(self) -> tuple[str, Callable[[], Awaitable[Any]]] | None:
        """One operation for this step (never two on the same call in one step)."""
        live = [c for c in self.world.live() if c.origin not in self.busy]
        roll = self.rng.random()
        # keep about MAX_LIVE calls up: a busy switch, and a run whose cost grows linearly
        if not live or (roll < 0.22 and len(self.world.live()) < MAX_LIVE):
            return "new call", self.new_call
        call = self.rng.choice(live)
        self.busy.add(call.origin)
        if roll < 0.42:
            return "update", lambda: self.update(call)
        if roll < 0.60:
            return "terminate", lambda: self.terminate(call)
        if roll < 0.64:
            return "CDR ends live call", lambda: self.cdr_ends_live(call)
        if roll < 0.70:
            return "topup", self.topup
        if roll < 0.74:
            return "sms", self.sms
        if roll < 0.78:
            return "process cdr", self.process_cdr
        if roll < 0.81:
            return "unknown terminate", self.oneshot_terminate
        if roll < 0.82:
            return "force disconnect", self.force_disconnect
        return None

    async def sequential(self) -> None:
        """Operations that check 'nothing changed', so they run alone."""
        ended = [c for c in self.world.calls.values() if c.state == ENDED and c.kind == "session"]
        roll = self.rng.random()
        if roll < 0.12 and ended:
            self.count("duplicate terminate")
            await self.duplicate_terminate(self.rng.choice(ended))
        elif roll < 0.18 and ended:
            self.count("CDR of ended call")
            await self.cdr_of_ended(self.rng.choice(ended))
        elif roll < 0.26:
            self.count("malformed")
            await self.malformed()

    async def run_step(self) -> None:
        chosen: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
        self.busy.clear()
        for _ in range(self.rng.randint(1, 4)):
            op = self.pick()
            if op is not None:
                chosen.append(op)
        for name, _ in chosen:
            self.count(name)
        seeds = [self.root.getrandbits(64) for _ in chosen]
        await asyncio.gather(*(self._seeded(seed, fn) for seed, (_, fn) in zip(seeds, chosen)))
        repeats, self.repeats = self.repeats, []
        for name, action in repeats:
            self.count("repeat")
            await self.unchanged(name, action)
        await self.sequential()
        await self.late_hangups()
        roll = self.rng.random()
        if roll < 0.5:
            await self.engine.advance(self.rng.randint(1, 15) * SECOND + self.rng.randint(0, SECOND))
        elif roll < 0.55:
            await self.engine.advance(self.rng.randint(60, 700) * SECOND)  # long silences: TTLs fire
        self.sync()

    async def wind_down(self) -> None:
        """End every call as the switch would, let timers finish, settle the SMS CDRs."""
        for call in list(self.world.calls.values()):
            if call.state == PENDING_CDR:
                await self.sms_cdr(call)
        for _ in range(50):
            await self.late_hangups()
            self.sync()
            live = self.world.live()
            for call in live:
                await self.terminate(call)
            waiting = [c for c in self.world.calls.values() if c.state in (ORPHAN, HANGING_UP)]
            if not live and not waiting and not self.pending_hangups and not self.s.sessions:
                return
            await self.engine.advance(120 * SECOND)
        left = {}
        for session in self.s.sessions.values():
            origin = str(session.start_fields.get("OriginID"))
            known = self.world.calls.get(origin)
            left[origin] = (known.state if known else "unknown to the switch", session.state, session.end_reason)
        self.fail(f"sessions still open after winding down (origin: switch state, engine state, reason): {left}")

    async def run(self) -> None:
        restart_at = {self.rng.randint(1, max(1, self.settings.steps - 1))
                      for _ in range(self.settings.restarts)}
        for self.step in range(self.settings.steps):
            await self.run_step()
            if self.step in restart_at:
                self.count("restart")
                await self.restart()
            if self.settings.check_every and self.step % self.settings.check_every == 0:
                await self.check()
        await self.wind_down()
        await self.check(final=True)


async def run_soak(tmp: Path, settings: SoakSettings) -> Soak:
    """Build an engine, run the schedule for ``settings.seed``, check everything; returns the
    finished soak (its ``ops`` counts show what was exercised)."""
    clock = ManualClock()
    world = World()
    agent = SoakAgent(clock=clock)
    engine = await build_engine(tmp, clock, agent)
    soak = Soak(engine, world, random.Random(settings.seed), settings)
    agent.on_disconnect = soak.on_disconnect
    agent.alive = soak.alive
    world.initial = {a: engine.monetary(a) for a in ACCOUNTS}
    try:
        await soak.run()
    finally:
        await engine.close()
    return soak
