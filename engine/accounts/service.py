"""AccountService: the one place balances change.

Accounts live in memory (loaded once at ``start``) and that copy is
authoritative. Every mutation is planned and applied to memory in one
synchronous step, with no ``await`` between reading a balance and changing it,
so two sessions can never spend the same money. The same step produces ledger
rows (signed amount, value after, reason, session) and the new balance rows;
the coroutine then awaits the storage group commit and returns only once the
change is durable, so a protocol answer sent afterwards never promises money
that a crash could take back.

Tariff-plan actions (``apply_tariffplan``) run their ``*asap`` action plans
once per explicit load. CGRateS re-runs ``*asap`` actions whenever a plan is
loaded; chargeway persists the plan and re-reads it at every start, so running
those actions at start-up too would top up every account again on each
restart. They run only when an operator loads a plan (``chargeway load``,
LoadTariffPlanFromFolder, SetAccount with an ActionPlanID).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
import asyncio
from typing import Any, Awaitable, Callable, Iterable, Mapping, Sequence

from engine.accounts import actions as act
from engine.accounts.actions import AccountChange, BalanceParams, LedgerRef
from engine.accounts.debit import BalanceCharge, DebitPlan, net_by_balance, plan_debit
from engine.accounts.model import (
    MONETARY, Account, Balance, TriggerState, account_from_rows, account_to_row, balance_to_row,
    copy_balance,
)
from engine.errors import (
    ACCOUNT_NOT_FOUND, NOT_FOUND, SERVER_ERROR, ChargingError, mandatory_missing,
)
from engine.storage.base import (
    AppendLedger, DeleteAccount, DeleteBalance, PutAccount, PutBalance, Storage, WriteOp,
)
from engine.units import to_decimal

log = logging.getLogger(__name__)

MIN_BALANCE = "*min_balance"
MAX_BALANCE = "*max_balance"
_TRIGGER_DEPTH = 3


@dataclass(slots=True)
class SettleResult:
    """Outcome of settling a call: the exact plan for the whole call, and what changed now
    (``deltas``: positive = debited now, negative = refunded)."""

    plan: DebitPlan
    deltas: list[BalanceCharge] = field(default_factory=list)
    debited: Decimal = Decimal(0)   # money debited by this settle (monetary balances)
    refunded: Decimal = Decimal(0)  # money given back by this settle (monetary balances)

    @property
    def cost(self) -> Decimal:
        return self.plan.cost


@dataclass(frozen=True, slots=True)
class AuditMismatch:
    """A balance whose ledger does not add up. ``kind``: ``chain`` (a row's value_after is not
    the running sum), ``memory``/``stored`` (the balance differs from its ledger), ``removed``
    (a removed balance's ledger does not end at zero)."""

    balance_uuid: str
    balance_id: str
    kind: str
    derived: Decimal
    actual: Decimal
    detail: str = ""


def _adopt(acc: Account, work: Account) -> None:
    """Make the live account equal to the worked copy, keeping its Balance objects (callers
    holding a Balance keep seeing its live value)."""
    live = {b.uuid: b for b in acc.all_balances()}
    adopted: dict[str, list[Balance]] = {}
    for btype, worked in work.balances.items():
        out = []
        for wb in worked:
            lb = live.get(wb.uuid)
            if lb is None:
                out.append(wb)
            else:
                for f in _BALANCE_FIELDS:
                    setattr(lb, f, getattr(wb, f))
                out.append(lb)
        adopted[btype] = out
    acc.balances = adopted
    acc.allow_negative = work.allow_negative
    acc.disabled = work.disabled
    acc.action_triggers = work.action_triggers
    acc.version += 1


_BALANCE_FIELDS = tuple(f.name for f in dataclasses.fields(Balance))


def _trigger_weight(t: TriggerState) -> Decimal:
    return t.weight


_ZERO = Decimal(0)


def _differences(want: dict[str, BalanceCharge], had: dict[str, BalanceCharge]) -> list[BalanceCharge]:
    """Per balance, what the exact plan takes minus what was already taken (positive: debit
    more, negative: refund), balances of the plan first, then those only charged before."""
    deltas: list[BalanceCharge] = []
    for uuid, w in want.items():
        h = had.get(uuid)
        amount = w.amount - (h.amount if h else _ZERO)
        if amount != 0:
            deltas.append(BalanceCharge(w.balance_uuid, w.balance_id, w.balance_type, amount,
                                        w.usage - (h.usage if h else 0), w.create))
    for uuid, h in had.items():
        if uuid not in want and h.amount != 0:
            deltas.append(BalanceCharge(h.balance_uuid, h.balance_id, h.balance_type,
                                        _ZERO - h.amount, 0 - h.usage, False))
    return deltas


class AccountService:
    """See module docstring. ``rater()`` returns the current Rater (it changes on reload)."""

    def __init__(self, storage: Storage, rater: Callable[[], Any], *,
                 tariffplan: Callable[[], Any] | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.storage = storage
        self._rater = rater
        self._tariffplan_source = tariffplan
        self._plan_loaded: Any = None
        self._plan_applying: Any = None
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._accounts: dict[tuple[str, str], Account] = {}
        self._topup_listeners: list[Callable[[str, str], Awaitable[Any]]] = []

    # --- lifecycle and lookup ------------------------------------------------------------------

    async def start(self) -> None:
        """Load every account from storage (the in-memory copy is authoritative afterwards)."""
        stored = await self.storage.load_accounts()
        self._accounts = {(s.account.tenant, s.account.id): account_from_rows(s.account, s.balances)
                          for s in stored}
        log.info("loaded %d accounts", len(self._accounts))

    def get(self, tenant: str, account: str) -> Account | None:
        return self._accounts.get((tenant, account))

    def accounts(self, tenant: str | None = None) -> list[Account]:
        return [a for (t, _), a in sorted(self._accounts.items()) if tenant is None or t == tenant]

    def _require(self, tenant: str, account: str, code: str = ACCOUNT_NOT_FOUND) -> Account:
        if not account:
            raise mandatory_missing("Account")
        acc = self._accounts.get((tenant, account))
        if acc is None:
            raise ChargingError(code, reason=f"account {tenant}:{account} not found")
        return acc

    def _resolve(self, account: Account | tuple[str, str]) -> Account:
        """The live in-memory account (callers may hold an older object or a key)."""
        key = (account.tenant, account.id) if isinstance(account, Account) else tuple(account)
        return self._require(key[0], key[1])

    def _plan(self) -> Any:
        """The tariff plan actions come from: the one being applied, else the configured
        source, else the current rater's, else the last one applied."""
        if self._plan_applying is not None:
            return self._plan_applying
        if self._tariffplan_source is not None:
            return self._tariffplan_source()
        rater = self._rater()
        plan = getattr(rater, "plan", None) if rater is not None else None
        return plan if plan is not None else self._plan_loaded

    # --- committing ----------------------------------------------------------------------------

    def _ops(self, ch: AccountChange) -> list[WriteOp]:
        """Storage ops mirroring a change (none when nothing changed, e.g. a zero grant)."""
        acc = ch.account
        if not (ch.ledger or ch.touched or ch.deleted or ch.account_changed):
            return []
        acc.update_time = ch.now
        ops: list[WriteOp] = [PutAccount(account_to_row(acc))]
        ops += [DeleteBalance(u) for u in ch.deleted]
        ops += [PutBalance(balance_to_row(acc, b)) for b in ch.touched.values()]
        ops += [AppendLedger(e) for e in ch.ledger]
        return ops

    async def _commit(self, ops: Sequence[WriteOp], keys: Iterable[tuple[str, str]]) -> None:
        """Await durability; on a storage failure reload the accounts from disk so memory never
        claims a change that is not stored, and report SERVER_ERROR."""
        if not ops:
            return
        try:
            await self.storage.write(ops)
        except Exception as exc:
            log.exception("account write failed; reloading %s from storage", list(keys))
            try:
                stored = {(s.account.tenant, s.account.id): s for s in await self.storage.load_accounts()}
            except Exception:  # cannot even read: stop charging these accounts rather than guess
                log.exception("reload failed; %s unavailable until restart", list(keys))
                stored = {}
            for key in keys:
                s = stored.get(key)
                if s is None:
                    self._accounts.pop(key, None)
                else:
                    self._accounts[key] = account_from_rows(s.account, s.balances)
            raise ChargingError(SERVER_ERROR, str(exc)) from exc

    def _transact(self, acc: Account, ref: LedgerRef, fn: Callable[[AccountChange], None]) -> AccountChange:
        """Run ``fn`` on a copy; only if it succeeds does the live account take the result
        (all or nothing, synchronously)."""
        work = acc.clone()
        ch = AccountChange(work, ref, self._clock())
        fn(ch)
        self._check_triggers(ch)
        _adopt(acc, work)
        ch.account = acc
        return ch

    # --- account management --------------------------------------------------------------------

    async def set_account(self, tenant: str, account: str, *, allow_negative: bool | None = None,
                          disabled: bool | None = None, action_plan_id: str = "",
                          action_triggers_id: str = "") -> Account:
        """Create or update an account; balances are kept. An ActionPlanID runs its ``*asap``
        actions now; an ActionTriggersID attaches those triggers."""
        if not account:
            raise mandatory_missing("Account")
        plan = self._plan()
        key = (tenant, account)
        acc = self._accounts.get(key) or Account(tenant=tenant, id=account)

        def change(ch: AccountChange) -> None:
            if allow_negative is not None:
                ch.account.allow_negative = allow_negative
            if disabled is not None:
                ch.account.disabled = disabled
            if action_triggers_id:
                self._attach_triggers(ch.account, plan, action_triggers_id)
            if action_plan_id:
                self._run_asap(ch, plan, action_plan_id)
            ch.account_changed = True

        ch = self._transact(acc, LedgerRef(reason="set_account"), change)
        self._accounts[key] = acc
        await self._commit(self._ops(ch), [key])
        return acc

    async def remove_account(self, tenant: str, account: str) -> None:
        """Remove an account; its ledger keeps the history (each balance closes at zero)."""
        acc = self._require(tenant, account, NOT_FOUND)
        ch = AccountChange(acc, LedgerRef(reason="remove_account"), self._clock())
        acc.version += 1
        for b in list(acc.all_balances()):
            ch.set_value(b, Decimal(0))
        del self._accounts[(tenant, account)]
        ops: list[WriteOp] = [AppendLedger(e) for e in ch.ledger]
        ops.append(DeleteAccount(tenant, account))
        await self._commit(ops, [(tenant, account)])

    # --- balance API (CGRateS AddBalance / DebitBalance / SetBalance) --------------------------

    async def add_balance(self, tenant: str, account: str, balance_type: str, value: Any,
                          params: Mapping[str, Any] | BalanceParams | None = None,
                          overwrite: bool = False) -> Balance:
        """``*topup`` (``*topup_reset`` with overwrite); creates a missing account/balance."""
        units = self._nonzero(value)
        p = params if isinstance(params, BalanceParams) else BalanceParams.from_mapping(params)
        reason = "topup_reset" if overwrite else "topup"
        balance = await self._balance_op(tenant, account, reason, create=True, fn=lambda ch: act.topup(
            ch, balance_type, units, p, reset=overwrite))
        self._fire_topup(tenant, account)
        return balance

    async def debit_balance(self, tenant: str, account: str, balance_type: str, value: Any,
                            params: Mapping[str, Any] | BalanceParams | None = None,
                            overwrite: bool = False) -> Balance:
        """``*debit`` (``*debit_reset`` with overwrite). INSUFFICIENT_CREDIT, with nothing
        debited, if the balance would go below zero without AllowNegative."""
        units = self._nonzero(value)
        p = params if isinstance(params, BalanceParams) else BalanceParams.from_mapping(params)
        reason = "debit_reset" if overwrite else "debit"
        return await self._balance_op(tenant, account, reason, create=False, fn=lambda ch: act.debit(
            ch, balance_type, units, p, reset=overwrite))

    async def set_balance(self, tenant: str, account: str, balance_type: str, value: Any,
                          params: Mapping[str, Any] | BalanceParams | None = None,
                          overwrite: bool = False) -> Balance:
        """``*set_balance``: by ID or UUID; value may be 0; None keeps the value and updates
        only the attributes."""
        amount = None if value is None or value == "" else to_decimal(value)
        p = params if isinstance(params, BalanceParams) else BalanceParams.from_mapping(params)
        balance = await self._balance_op(tenant, account, "set_balance", create=True,
                                         fn=lambda ch: act.set_balance(ch, balance_type, amount, p))
        self._fire_topup(tenant, account)
        return balance

    def on_topup(self, listener: Callable[[str, str], Awaitable[Any]]) -> None:
        """Call ``listener(tenant, account)`` after money or units were added to an account.

        Agents use it to lengthen live sessions (RADIUS CoA with a new Session-Timeout,
        Diameter RAR): a top-up mid-call must not leave the switch cutting at the old limit.
        Listeners run as tasks after the change is durable; their failures are logged only.
        """
        self._topup_listeners.append(listener)

    def _fire_topup(self, tenant: str, account: str) -> None:
        for listener in self._topup_listeners:
            task = asyncio.get_running_loop().create_task(listener(tenant, account))
            task.add_done_callback(_log_listener_failure)

    @staticmethod
    def _nonzero(value: Any) -> Decimal:
        if value is None or value == "":
            raise mandatory_missing("Value")
        units = abs(to_decimal(value))
        if units == 0:
            raise mandatory_missing("Value")
        return units

    async def _balance_op(self, tenant: str, account: str, reason: str, *, create: bool,
                          fn: Callable[[AccountChange], Balance]) -> Balance:
        if not account:
            raise mandatory_missing("Account")
        key = (tenant, account)
        acc = self._accounts.get(key)
        if acc is None:
            if not create:
                raise ChargingError(ACCOUNT_NOT_FOUND, reason=f"account {tenant}:{account} not found")
            acc = Account(tenant=tenant, id=account)
        result: list[Balance] = []
        ch = self._transact(acc, LedgerRef(reason=reason), lambda c: result.append(fn(c)))
        self._accounts[key] = acc
        await self._commit(self._ops(ch), [key])
        return acc.find_balance(result[0].uuid) or result[0]

    # --- actions and tariff plans --------------------------------------------------------------

    async def execute_actions(self, tenant: str, account: str, actions_id: str,
                              *, ref: str = "") -> None:
        """Run an Actions id on an existing account, all or nothing."""
        acc = self._require(tenant, account)
        actions = self._actions(self._plan(), actions_id)
        ch = self._transact(acc, LedgerRef(reason="action", ref=ref or actions_id),
                            lambda c: self._run_actions(c, actions))
        await self._commit(self._ops(ch), [(tenant, account)])
        if any(a.action.startswith(("*topup", "*set_balance", "*enable")) for a in actions):
            self._fire_topup(tenant, account)

    async def apply_tariffplan(self, plan: Any) -> int:
        """Create/update the accounts of AccountActions, attach their triggers and run their
        ``*asap`` action plans; one transaction for the whole plan. Returns accounts touched."""
        self._plan_applying = plan
        try:
            staged = self._stage_tariffplan(plan)
        finally:
            self._plan_applying = None
        self._plan_loaded = plan
        ops: list[WriteOp] = []
        for key, acc, work, ch in staged:  # nothing failed: now swap every account in
            _adopt(acc, work)
            ch.account = acc
            self._accounts[key] = acc
            ops.extend(self._ops(ch))
        await self._commit(ops, [k for k, *_ in staged])
        return len(staged)

    def _stage_tariffplan(self, plan: Any) -> list[tuple[tuple[str, str], Account, Account, AccountChange]]:
        """Every AccountAction worked on a copy of its account (raises before anything changes)."""
        staged: list[tuple[tuple[str, str], Account, Account, AccountChange]] = []
        for aa in plan.account_actions.values():
            key = (aa.tenant, aa.account)
            acc = self._accounts.get(key) or Account(tenant=aa.tenant, id=aa.account)
            work = acc.clone()
            ch = AccountChange(work, LedgerRef(reason="tariffplan", ref="tariffplan"), self._clock())
            work.allow_negative = aa.allow_negative
            work.disabled = aa.disabled
            ch.account_changed = True
            if aa.action_triggers_id:
                self._attach_triggers(work, plan, aa.action_triggers_id)
            if aa.action_plan_id:
                self._run_asap(ch, plan, aa.action_plan_id)
            self._check_triggers(ch)
            staged.append((key, acc, work, ch))
        return staged

    @staticmethod
    def _actions(plan: Any, actions_id: str) -> list[Any]:
        found = plan.actions.get(actions_id) if plan is not None else None
        if not found:
            raise ChargingError(NOT_FOUND, reason=f"actions {actions_id} not found")
        return sorted(found, key=lambda a: a.weight, reverse=True)

    def _run_actions(self, ch: AccountChange, actions: list[Any]) -> None:
        base = ch.ref
        try:
            for action in actions:
                ch.ref = dataclasses.replace(base, reason=action.action.lstrip("*"))
                act.run_action(ch, action)
        finally:
            ch.ref = base

    def _run_asap(self, ch: AccountChange, plan: Any, action_plan_id: str) -> None:
        entries = plan.action_plans.get(action_plan_id) if plan is not None else None
        if not entries:
            raise ChargingError(NOT_FOUND, reason=f"action plan {action_plan_id} not found")
        for entry in sorted(entries, key=lambda e: e.weight, reverse=True):
            timing = plan.timings.get(entry.timing_id)
            if entry.timing_id == "*asap" or (timing is not None and timing.start_time == "*asap"):
                self._run_actions(ch, self._actions(plan, entry.actions_id))

    @staticmethod
    def _attach_triggers(acc: Account, plan: Any, triggers_id: str) -> None:
        rows = plan.action_triggers.get(triggers_id) if plan is not None else None
        if not rows:
            raise ChargingError(NOT_FOUND, reason=f"action triggers {triggers_id} not found")
        previous = {t.unique_id or t.id: t for t in acc.action_triggers}
        attached = []
        for row in rows:
            uid = row.unique_id or f"{row.id}:{len(attached)}"
            old = previous.get(uid)
            attached.append(TriggerState(
                id=row.id, unique_id=uid, threshold_type=row.threshold_type,
                threshold_value=row.threshold_value, recurrent=row.recurrent,
                min_sleep=row.min_sleep, balance_type=row.balance_type or MONETARY,
                balance_id=row.balance_id, actions_id=row.actions_id, weight=row.weight,
                balance_destination_ids=frozenset(row.balance_destination_ids),
                balance_categories=frozenset(row.balance_categories),
                executed=old.executed if old else False,
                last_executed=old.last_executed if old else None))
        acc.action_triggers = attached

    def _check_triggers(self, ch: AccountChange) -> None:
        """Fire ``*min_balance``/``*max_balance`` triggers whose balance crossed the threshold.

        A non-recurrent trigger fires once, and is re-armed when its condition stops holding
        (e.g. after a top-up), so "recharge when below 5" works for every descent. A recurrent
        trigger fires on every change while the condition holds, at most once per MinSleep.
        Either fires at most once per change; actions a trigger runs may fire other triggers
        (up to a small depth, so two triggers cannot feed each other forever).
        """
        acc = ch.account
        if not acc.action_triggers:
            return
        plan: Any = None  # looked up only when a trigger fires (most changes fire none)
        done: set[int] = set()
        for _ in range(_TRIGGER_DEPTH):
            fired = False
            triggers = acc.action_triggers
            if len(triggers) > 1:
                triggers = sorted(triggers, key=_trigger_weight, reverse=True)
            for t in triggers:
                if t.threshold_type not in (MIN_BALANCE, MAX_BALANCE):
                    continue
                if not self._trigger_hit(t, acc, ch.now):
                    if t.executed and not t.recurrent:
                        t.executed = False
                        ch.account_changed = True
                    continue
                if id(t) in done or (t.executed and not t.recurrent):
                    continue
                if (t.min_sleep and t.last_executed is not None
                        and (ch.now - t.last_executed).total_seconds() * 1e9 < t.min_sleep):
                    continue
                done.add(id(t))
                t.executed, t.last_executed = True, ch.now
                ch.account_changed = True
                if plan is None:
                    plan = self._plan()
                fired = self._fire(ch, plan, t) or fired
            if not fired:
                return

    @staticmethod
    def _trigger_hit(t: TriggerState, acc: Account, now: datetime) -> bool:
        """Whether a usable balance of the trigger's type (and ID, if it names one) is at or
        beyond the threshold (Balance.usable_at inlined: this runs on every debit)."""
        threshold, balance_id = t.threshold_value, t.balance_id
        minimum = t.threshold_type == MIN_BALANCE
        for b in acc.balances.get(t.balance_type, ()):
            if b.disabled or (b.expiry is not None and b.expiry <= now):
                continue
            if balance_id and b.id != balance_id:
                continue
            if (b.value <= threshold) if minimum else (b.value >= threshold):
                return True
        return False

    def _fire(self, ch: AccountChange, plan: Any, t: TriggerState) -> bool:
        found = plan.actions.get(t.actions_id) if plan is not None else None
        if not found:
            log.warning("trigger %s of %s: actions %s not found", t.id, ch.account.key, t.actions_id)
            return False
        base = ch.ref
        ch.ref = LedgerRef(reason="trigger", cgrid=base.cgrid, run_id=base.run_id, ref=f"trigger:{t.id}")
        try:
            self._run_actions(ch, sorted(found, key=lambda a: a.weight, reverse=True))
            return True
        except ChargingError as err:
            log.warning("trigger %s of %s: %s", t.id, ch.account.key, err)
            return False
        finally:
            ch.ref = base

    # --- charging ------------------------------------------------------------------------------

    def plan_debit(self, account: Account, req: Any, *, partial: bool) -> DebitPlan:
        """Pure: what ``debit`` would take (see engine.accounts.debit). The plan records what
        it was computed from, so ``debit(plan=...)`` can apply it without planning again."""
        rater = self._rater()
        plan = plan_debit(account, req, rater, partial=partial)
        plan.basis = (account, account.version, req, rater, partial)
        return plan

    def _still_valid(self, plan: DebitPlan | None, acc: Account, req: Any, rater: Any,
                     partial: bool) -> bool:
        """True when ``plan`` was computed for this live account, unchanged since (same
        version), for this very request, by this rater, in the same mode: planning again
        would give the same plan."""
        basis = plan.basis if plan is not None else None
        return (basis is not None and basis[0] is acc and basis[1] == acc.version
                and basis[2] is req and basis[3] is rater and basis[4] == partial)

    def _apply(self, acc: Account, charges: Iterable[BalanceCharge], ref: LedgerRef,
               refund_reason: str = "refund") -> AccountChange:
        """Apply planned charges to the live account (positive amount = take)."""
        ch = AccountChange(acc, ref, self._clock())
        acc.version += 1
        for part in charges:
            if part.amount == 0:
                continue
            b = acc.find_balance(part.balance_uuid)
            if b is None:
                if part.amount < 0 and not part.create:
                    log.warning("refund of %s to removed balance %s of %s dropped",
                                -part.amount, part.balance_uuid, acc.key)
                    continue
                b = ch.create_balance(part.balance_type, BalanceParams(
                    id=part.balance_id, uuid=part.balance_uuid))
            ch.set_value(b, b.value - part.amount, None if part.amount > 0 else refund_reason)
        self._check_triggers(ch)
        return ch

    async def debit(self, account: Account, req: Any, *, partial: bool, ref: LedgerRef,
                    extra_ops: Sequence[WriteOp] = (), plan: DebitPlan | None = None) -> DebitPlan:
        """Plan and apply in one synchronous step, then await durability. ``extra_ops`` (e.g.
        the session snapshot) commit in the same transaction.

        ``plan``: what ``plan_debit`` answered for this same request, when the caller needed
        it first (to size a grant). It is applied as is if the account has not changed since
        (nothing can change it unless the caller awaited in between); otherwise it is
        planned again here, so a stale plan can never be applied."""
        acc = self._resolve(account)
        rater = self._rater()
        if plan is None or not self._still_valid(plan, acc, req, rater, partial):
            plan = plan_debit(acc, req, rater, partial=partial)
        ch = self._apply(acc, plan.parts, ref)
        await self._commit([*self._ops(ch), *extra_ops], [(acc.tenant, acc.id)])
        return plan

    async def refund(self, account: Account, charged: Sequence[BalanceCharge], ref: LedgerRef,
                     extra_ops: Sequence[WriteOp] = ()) -> list[BalanceCharge]:
        """Give back earlier charges exactly (to the balances they came from)."""
        acc = self._resolve(account)
        back = [dataclasses.replace(p, amount=-p.amount, usage=-p.usage, create=False)
                for p in net_by_balance(list(charged)).values() if p.amount != 0]
        ch = self._apply(acc, back, ref)
        await self._commit([*self._ops(ch), *extra_ops], [(acc.tenant, acc.id)])
        return back

    def plan_settle(self, account: Account, whole_call: Any, charged: Sequence[BalanceCharge]) -> DebitPlan:
        """Pure: the plan ``settle`` charges, priced on a copy of the account with ``charged``
        given back (a call that happened is always charged, even on a disabled account)."""
        acc = self._resolve(account)
        given_back: dict[str, Balance] = {}  # copies of the balances ``charged`` came from
        for part in charged:
            b = given_back.get(part.balance_uuid)
            if b is None:
                live = acc.find_balance(part.balance_uuid)
                if live is None:
                    continue
                b = given_back[part.balance_uuid] = copy_balance(live)
            b.value += part.amount
        # disabled=False: the call happened; a mid-call disable must not make it free
        ghost = acc.planning_view(given_back, disabled=False)
        return plan_debit(ghost, whole_call, self._rater(), partial=False, force=True)

    async def settle(self, account: Account, whole_call: Any, charged: Sequence[BalanceCharge],
                     ref: LedgerRef, extra_ops: Sequence[WriteOp] = (),
                     extra_ops_for: Callable[[DebitPlan], Sequence[WriteOp]] | None = None) -> SettleResult:
        """Charge a finished call exactly: plan the whole call as if this session's earlier
        charges were given back, then apply only the per-balance difference (refund what was
        reserved and unused, or debit the extra), in one durable write. Usage already consumed
        is always charged; a shortfall goes negative on the top monetary balance.

        ``extra_ops_for(plan)`` is called with the exact plan before anything is applied, and
        its ops (e.g. the CDR carrying the cost) commit in the same transaction: the caller
        needs no separate preview, so the call is priced once."""
        acc = self._resolve(account)
        plan = self.plan_settle(acc, whole_call, charged)
        if extra_ops_for is not None:
            extra_ops = [*extra_ops, *extra_ops_for(plan)]
        deltas = _differences(net_by_balance(plan.parts), net_by_balance(charged))
        ch = self._apply(acc, deltas, ref)
        ops = self._ops(ch)
        ops += extra_ops
        await self._commit(ops, [(acc.tenant, acc.id)])
        debited = refunded = _ZERO
        for d in deltas:
            if d.balance_type == MONETARY:
                if d.amount > 0:
                    debited += d.amount
                elif d.amount < 0:
                    refunded += d.amount
        return SettleResult(plan, deltas, debited, -refunded)

    # --- audit ---------------------------------------------------------------------------------

    async def audit(self, tenant: str, account: str) -> list[AuditMismatch]:
        """Re-derive every balance of the account from the ledger and compare it with the
        in-memory and the stored value. Empty list = the books balance."""
        acc = self._require(tenant, account)
        entries = await self.storage.ledger(tenant, account)
        stored = {b.uuid: b.value for s in await self.storage.load_accounts()
                  if (s.account.tenant, s.account.id) == (tenant, account) for b in s.balances}
        derived: dict[str, Decimal] = {}
        names: dict[str, str] = {}
        out: list[AuditMismatch] = []
        for e in entries:
            running = derived.get(e.balance_uuid, Decimal(0)) + e.amount
            derived[e.balance_uuid] = running
            names[e.balance_uuid] = e.balance_id
            if running != e.value_after:
                out.append(AuditMismatch(e.balance_uuid, e.balance_id, "chain", running,
                                         e.value_after, f"ledger row {e.seq}"))
        live = {b.uuid: b for b in acc.all_balances()}
        for uuid, b in live.items():
            d = derived.get(uuid, Decimal(0))
            if d != b.value:
                out.append(AuditMismatch(uuid, b.id, "memory", d, b.value))
            if uuid in stored and d != stored[uuid]:
                out.append(AuditMismatch(uuid, b.id, "stored", d, stored[uuid]))
            elif uuid not in stored:
                out.append(AuditMismatch(uuid, b.id, "stored", d, Decimal(0), "balance not stored"))
        for uuid, d in derived.items():
            if uuid not in live and d != 0:
                out.append(AuditMismatch(uuid, names[uuid], "removed", d, Decimal(0)))
        return out


def _log_listener_failure(task: "asyncio.Task[Any]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("top-up listener failed: %r", task.exception())
