"""The CGRateS balance model: accounts holding typed balances, plus their JSON shapes.

An ``Account`` holds balances grouped by type (``*monetary``, ``*voice``,
``*data``, ``*sms``, ``*generic``). Unit balances count usage in the engine's
units (voice ns, data bytes, SMS units); monetary balances hold money. Every
value is an exact ``Decimal``. Balances carry CGRateS's filters (destinations
with ``!ID`` exclusions, categories), expiry, weight, blocker and disabled
flags, and ``timing_ids`` (usable only while one of those timings is active).
``shared_groups`` is kept and shown as CGRateS shows it but pools nothing (no
SharedGroups.csv is loaded). ``account_to_v2`` / ``account_to_v1_legacy`` render the two JSON shapes
CGRateS clients expect (APIerSv2.GetAccount and the legacy ``*out`` shape).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Iterable

import msgspec

from engine.memo import remember
from engine.storage.base import AccountRow, BalanceRow
from engine.units import decimal_to_json, format_instant, format_time, parse_time

MONETARY = "*monetary"
VOICE = "*voice"
DATA = "*data"
SMS = "*sms"
MMS = "*mms"
GENERIC = "*generic"
BALANCE_TYPES = (MONETARY, VOICE, DATA, SMS, MMS, GENERIC)
DEFAULT_BALANCE_ID = "*default"
ANY = "*any"


@dataclass(slots=True)
class Balance:
    """One balance (CGRateS ``engine.Balance``); ``value`` in money or usage units."""

    uuid: str
    id: str
    type: str
    value: Decimal = Decimal(0)
    expiry: datetime | None = None
    weight: Decimal = Decimal(0)
    destination_ids: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    rating_subject: str = ""
    shared_groups: frozenset[str] = frozenset()
    timing_ids: frozenset[str] = frozenset()
    blocker: bool = False
    disabled: bool = False

    def expired_at(self, when: datetime) -> bool:
        return self.expiry is not None and self.expiry <= when

    def usable_at(self, when: datetime) -> bool:
        """Counted for a charge at ``when``: not disabled and not expired."""
        return not self.disabled and not self.expired_at(when)

    def matches_destination(self, call_destination_ids: frozenset[str]) -> bool:
        """No filter (or ``*any``) matches all; any ``!ID`` the call's destination belongs
        to excludes; otherwise at least one listed ID must match. A filter made only of
        exclusions (``!DST_INTL``) matches every other destination."""
        if not self.destination_ids:
            return True
        wanted = self.destination_ids - {ANY}
        if not wanted:
            return True
        included = False
        for dest_id in wanted:
            if dest_id.startswith("!"):
                if dest_id[1:] in call_destination_ids:
                    return False
            elif dest_id in call_destination_ids:
                included = True
        only_exclusions = all(d.startswith("!") for d in wanted)
        return included or only_exclusions

    def matches_category(self, category: str) -> bool:
        if not self.categories:
            return True
        wanted = self.categories - {ANY}
        if not wanted:
            return True
        if f"!{category}" in wanted:
            return False
        positive = {c for c in wanted if not c.startswith("!")}
        return not positive or category in positive

    @property
    def has_destination_filter(self) -> bool:
        return bool(self.destination_ids) and bool(self.destination_ids - {ANY})


@dataclass(slots=True)
class TriggerState:
    """An ActionTrigger attached to an account, with its execution state."""

    id: str
    unique_id: str
    threshold_type: str
    threshold_value: Decimal
    recurrent: bool
    min_sleep: int
    balance_type: str
    balance_id: str
    actions_id: str
    weight: Decimal = Decimal(0)
    balance_destination_ids: frozenset[str] = frozenset()
    balance_categories: frozenset[str] = frozenset()
    executed: bool = False
    last_executed: datetime | None = None


@dataclass(slots=True)
class Account:
    """One account (CGRateS ``engine.Account``); ``balances`` keyed by balance type."""

    tenant: str
    id: str
    balances: dict[str, list[Balance]] = field(default_factory=dict)
    allow_negative: bool = False
    disabled: bool = False
    action_triggers: list[TriggerState] = field(default_factory=list)
    update_time: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    # Bumped by AccountService on every change it makes to this account, so a DebitPlan
    # computed earlier can tell whether it still describes the account (plan once, debit it).
    version: int = field(default=0, compare=False, repr=False)

    @property
    def key(self) -> str:
        return f"{self.tenant}:{self.id}"

    def all_balances(self) -> Iterable[Balance]:
        for balances in self.balances.values():
            yield from balances

    def find_balance(self, uuid: str) -> Balance | None:
        # plain loops, not all_balances(): a generator costs more than the scan (every debit)
        for balances in self.balances.values():
            for balance in balances:
                if balance.uuid == uuid:
                    return balance
        return None

    def add_balance(self, balance: Balance) -> None:
        self.balances.setdefault(balance.type, []).append(balance)

    def remove_balance(self, uuid: str) -> None:
        for btype, balances in self.balances.items():
            self.balances[btype] = [b for b in balances if b.uuid != uuid]

    def total(self, balance_type: str = MONETARY, when: datetime | None = None) -> Decimal:
        """Sum of the usable balances of one type (what a user calls 'my balance')."""
        when = when or datetime.now(timezone.utc)
        total = Decimal(0)
        for b in self.balances.get(balance_type, ()):
            if not b.disabled and (b.expiry is None or b.expiry > when):  # usable_at, inlined:
                total += b.value                                           # every session reply
        return total

    def clone(self) -> "Account":
        """Deep-enough copy for dry runs (balances are the only mutable part charged)."""
        return Account(
            tenant=self.tenant, id=self.id,
            balances={t: [copy_balance(b) for b in bs] for t, bs in self.balances.items()},
            allow_negative=self.allow_negative, disabled=self.disabled,
            action_triggers=[_copy_trigger(t) for t in self.action_triggers],
            update_time=self.update_time)

    def planning_view(self, replaced: dict[str, Balance], *, disabled: bool) -> "Account":
        """A what-if view for pure readers (``plan_debit``): the same Balance objects except
        those in ``replaced`` (uuid -> a modified copy). Cheaper than ``clone`` because only
        the balances a what-if changes are copied; nothing may be mutated through the view."""
        balances = ({t: [replaced.get(b.uuid, b) for b in bs] for t, bs in self.balances.items()}
                    if replaced else self.balances)
        return Account(self.tenant, self.id, balances, self.allow_negative, disabled,
                       self.action_triggers, self.update_time)


def _copy_trigger(t: TriggerState) -> TriggerState:
    # positional, like copy_balance: dataclasses.replace re-reads the field list per call
    return TriggerState(t.id, t.unique_id, t.threshold_type, t.threshold_value, t.recurrent,
                        t.min_sleep, t.balance_type, t.balance_id, t.actions_id, t.weight,
                        t.balance_destination_ids, t.balance_categories, t.executed,
                        t.last_executed)


def copy_balance(b: Balance) -> Balance:
    return Balance(b.uuid, b.id, b.type, b.value, b.expiry, b.weight, b.destination_ids,
                   b.categories, b.rating_subject, b.shared_groups, b.timing_ids, b.blocker,
                   b.disabled)


# --- storage rows ------------------------------------------------------------------------------

class _BalanceData(msgspec.Struct, omit_defaults=True):
    expiry: str = ""
    weight: str = "0"
    destination_ids: list[str] = []
    categories: list[str] = []
    rating_subject: str = ""
    shared_groups: list[str] = []
    timing_ids: list[str] = []
    blocker: bool = False
    disabled: bool = False


class _TriggerData(msgspec.Struct, omit_defaults=True):
    id: str
    unique_id: str
    threshold_type: str
    threshold_value: str
    recurrent: bool
    min_sleep: int
    balance_type: str
    balance_id: str
    actions_id: str
    weight: str = "0"
    balance_destination_ids: list[str] = []
    balance_categories: list[str] = []
    executed: bool = False
    last_executed: str = ""


class _AccountData(msgspec.Struct, omit_defaults=True):
    update_time: str = ""
    action_triggers: list[_TriggerData] = []


# Every debit rewrites the account row and the balance rows it touched, although only
# update_time and the value changed: the JSON of a balance's attributes and of each trigger
# is remembered by content. Keys hold a Decimal by id(), with the Decimal itself kept alive
# in the entry (so the id cannot be reused while cached): Decimal("10") == Decimal("10.0")
# but they are written differently. Equal datetimes render the same UTC text, and
# frozensets render sorted, so those are keyed by value. Bounded; cleared when full.
_ROW_CACHE_MAX = 4096
_BALANCE_DATA: dict[tuple[Any, ...], tuple[str, Decimal]] = {}
_TRIGGER_JSON: dict[tuple[Any, ...], tuple[str, Decimal, Decimal]] = {}


def _balance_data(b: Balance) -> str:
    """The ``data`` JSON of a balance row (everything but identity and value)."""
    weight = b.weight
    key = (id(weight), b.expiry, b.destination_ids, b.categories, b.rating_subject,
           b.shared_groups, b.timing_ids, b.blocker, b.disabled)
    hit = _BALANCE_DATA.get(key)
    if hit is not None:
        return hit[0]
    text = msgspec.json.encode(_BalanceData(
        expiry=format_time(b.expiry) if b.expiry else "", weight=str(weight),
        destination_ids=sorted(b.destination_ids), categories=sorted(b.categories),
        rating_subject=b.rating_subject, shared_groups=sorted(b.shared_groups),
        timing_ids=sorted(b.timing_ids), blocker=b.blocker, disabled=b.disabled)).decode()
    remember(_BALANCE_DATA, _ROW_CACHE_MAX, key, (text, weight))
    return text


def balance_to_row(acc: Account, b: Balance) -> BalanceRow:
    return BalanceRow(b.uuid, acc.tenant, acc.id, b.id, b.type, b.value, _balance_data(b))


def balance_from_row(row: BalanceRow) -> Balance:
    data = msgspec.json.decode(row.data, type=_BalanceData)
    return Balance(
        uuid=row.uuid, id=row.id, type=row.type, value=row.value,
        expiry=parse_time(data.expiry) if data.expiry else None, weight=Decimal(data.weight),
        destination_ids=frozenset(data.destination_ids), categories=frozenset(data.categories),
        rating_subject=data.rating_subject, shared_groups=frozenset(data.shared_groups),
        timing_ids=frozenset(data.timing_ids), blocker=data.blocker, disabled=data.disabled)


def _trigger_json(t: TriggerState) -> str:
    """A trigger as stored in the account row, as JSON (see _ROW_CACHE_MAX for the caching)."""
    threshold, weight = t.threshold_value, t.weight
    key = (t.id, t.unique_id, t.threshold_type, id(threshold), t.recurrent, t.min_sleep,
           t.balance_type, t.balance_id, t.actions_id, id(weight), t.balance_destination_ids,
           t.balance_categories, t.executed, t.last_executed)
    hit = _TRIGGER_JSON.get(key)
    if hit is not None:
        return hit[0]
    text = msgspec.json.encode(_TriggerData(
        id=t.id, unique_id=t.unique_id, threshold_type=t.threshold_type,
        threshold_value=str(threshold), recurrent=t.recurrent,
        min_sleep=t.min_sleep, balance_type=t.balance_type, balance_id=t.balance_id,
        actions_id=t.actions_id, weight=str(weight),
        balance_destination_ids=sorted(t.balance_destination_ids),
        balance_categories=sorted(t.balance_categories), executed=t.executed,
        last_executed=format_time(t.last_executed) if t.last_executed else "")).decode()
    remember(_TRIGGER_JSON, _ROW_CACHE_MAX, key, (text, threshold, weight))
    return text


def account_to_row(acc: Account) -> AccountRow:
    """The account row; ``data`` is exactly the msgspec JSON of ``_AccountData`` (what
    ``account_from_rows`` decodes), assembled from the remembered trigger JSON. The update
    time is format_time text (digits, ``-:.TZ``): nothing in it needs JSON escaping. It is a
    new instant each debit, so it is rendered without being remembered (``format_instant``)."""
    data = '{"update_time":"' + format_instant(acc.update_time) + '"'
    if acc.action_triggers:
        data += ',"action_triggers":[' + ",".join([_trigger_json(t) for t in acc.action_triggers]) + "]"
    return AccountRow(acc.tenant, acc.id, acc.allow_negative, acc.disabled, data + "}")


def account_from_rows(row: AccountRow, balances: Iterable[BalanceRow]) -> Account:
    data = msgspec.json.decode(row.data, type=_AccountData)
    acc = Account(
        tenant=row.tenant, id=row.id, allow_negative=row.allow_negative, disabled=row.disabled,
        update_time=parse_time(data.update_time) or datetime.now(timezone.utc),
        action_triggers=[TriggerState(
            id=t.id, unique_id=t.unique_id, threshold_type=t.threshold_type,
            threshold_value=Decimal(t.threshold_value), recurrent=t.recurrent,
            min_sleep=t.min_sleep, balance_type=t.balance_type, balance_id=t.balance_id,
            actions_id=t.actions_id, weight=Decimal(t.weight),
            balance_destination_ids=frozenset(t.balance_destination_ids),
            balance_categories=frozenset(t.balance_categories), executed=t.executed,
            last_executed=parse_time(t.last_executed) if t.last_executed else None)
            for t in data.action_triggers])
    for b in balances:
        acc.add_balance(balance_from_row(b))
    return acc


# --- CGRateS JSON shapes -----------------------------------------------------------------------

def _set_map(values: frozenset[str]) -> dict[str, bool]:
    """CGRateS StringMap: ``{"ID": true}``, ``{"ID": false}`` for a ``!ID`` exclusion."""
    out: dict[str, bool] = {}
    for v in sorted(values):
        if v.startswith("!"):
            out[v[1:]] = False
        else:
            out[v] = True
    return out


def _sorted_balances(balances: list[Balance]) -> list[Balance]:
    return sorted(balances, key=lambda b: b.weight, reverse=True)


def balance_to_v2(b: Balance) -> dict[str, Any]:
    return {
        "Uuid": b.uuid,
        "ID": b.id,
        "Value": decimal_to_json(b.value),
        "ExpirationDate": format_time(b.expiry),
        "Weight": decimal_to_json(b.weight),
        "DestinationIDs": _set_map(b.destination_ids),
        "RatingSubject": b.rating_subject,
        "Categories": _set_map(b.categories),
        "SharedGroups": _set_map(b.shared_groups),
        "Timings": None,
        "TimingIDs": _set_map(b.timing_ids),
        "Disabled": b.disabled,
        "Factors": None,
        "Blocker": b.blocker,
    }


def _trigger_to_json(t: TriggerState) -> dict[str, Any]:
    """CGRateS ``engine.ActionTrigger`` shape (MinSleep in ns, the balance filter as a map)."""
    return {
        "ID": t.id, "UniqueID": t.unique_id, "ThresholdType": t.threshold_type,
        "ThresholdValue": decimal_to_json(t.threshold_value), "Recurrent": t.recurrent,
        "MinSleep": t.min_sleep, "ExpirationDate": format_time(None),
        "ActivationDate": format_time(None),
        "Balance": {"ID": t.balance_id or None, "Type": t.balance_type,
                    "DestinationIDs": _set_map(t.balance_destination_ids) or None,
                    "Categories": _set_map(t.balance_categories) or None},
        "Weight": decimal_to_json(t.weight), "ActionsID": t.actions_id, "MinQueuedItems": 0,
        "Executed": t.executed, "LastExecutionTime": format_time(t.last_executed),
    }


def account_to_v2(acc: Account) -> dict[str, Any]:
    """APIerSv2.GetAccount shape (the real ``engine.Account``)."""
    return {
        "ID": acc.key,
        "BalanceMap": {t: [balance_to_v2(b) for b in _sorted_balances(bs)]
                       for t, bs in acc.balances.items() if bs},
        "UnitCounters": None,
        "ActionTriggers": [_trigger_to_json(t) for t in acc.action_triggers] or None,
        "AllowNegative": acc.allow_negative,
        "Disabled": acc.disabled,
        "UpdateTime": format_time(acc.update_time),
    }


def _joined(values: frozenset[str]) -> str:
    return ";".join(sorted(values))


def account_to_v1_legacy(acc: Account) -> dict[str, Any]:
    """APIerSv1.GetAccount shape (CGRateS ``AsOldStructure``): ``*out`` ids and key suffixes,
    ``;``-joined set fields, no UpdateTime/Factor/Blocker."""
    balance_map: dict[str, list[dict[str, Any]]] = {}
    for btype, balances in acc.balances.items():
        if not balances:
            continue
        balance_map[btype + "*out"] = [{
            "Uuid": b.uuid,
            "Id": b.id,
            "Value": decimal_to_json(b.value),
            "ExpirationDate": format_time(b.expiry),
            "Weight": decimal_to_json(b.weight),
            "DestinationIds": _joined(b.destination_ids),
            "RatingSubject": b.rating_subject,
            "Category": _joined(b.categories),
            "SharedGroup": _joined(b.shared_groups),
            "Timings": None,
            "TimingIDs": _joined(b.timing_ids),
            "Disabled": b.disabled,
        } for b in _sorted_balances(balances)]
    return {
        "Id": f"*out:{acc.key}",
        "BalanceMap": balance_map,
        "UnitCounters": [],
        "ActionTriggers": [_trigger_to_json(t) for t in acc.action_triggers],
        "AllowNegative": acc.allow_negative,
        "Disabled": acc.disabled,
    }
