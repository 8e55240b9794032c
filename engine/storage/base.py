"""The narrow, async storage interface every back end implements.

Why so narrow: the engine keeps accounts authoritative in memory and only needs
storage to (1) make a batch of mutations durable atomically, (2) reload state at
start, and (3) keep CDRs, sessions and exporter queues. Everything money-related
goes through ``write(ops)``, which applies a list of plain operations in ONE
transaction, so a debit, its ledger rows, the session snapshot and the CDR of a
terminate are either all on disk or none is. SQLite is the embedded default;
PostgreSQL or Redis back ends only need to implement this class.

Rows here are plain data (str, int, Decimal, datetime, bytes); the accounts
package converts its model to and from them, so storage never imports the engine
model.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Sequence, Union

from engine.fastinit import fast_init


# --- rows --------------------------------------------------------------------------------------

@fast_init
@dataclass(frozen=True, slots=True)
class AccountRow:
    """Current state of one account; ``data`` is JSON text for the less-queried parts
    (action triggers and their state, update time)."""

    tenant: str
    id: str
    allow_negative: bool = False
    disabled: bool = False
    data: str = "{}"


@fast_init
@dataclass(frozen=True, slots=True)
class BalanceRow:
    """Current state of one balance; ``value`` is an exact Decimal (stored as TEXT)."""

    uuid: str
    tenant: str
    account: str
    id: str
    type: str
    value: Decimal
    data: str = "{}"


@dataclass(frozen=True, slots=True)
class StoredAccount:
    account: AccountRow
    balances: list[BalanceRow]


@fast_init
@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One balance change. ``amount`` is signed (+ credit, - debit); ``value_after`` is the
    balance value once this row is applied, so a balance can be re-derived and audited."""

    ts: datetime
    tenant: str
    account: str
    balance_uuid: str
    balance_id: str
    balance_type: str
    amount: Decimal
    value_after: Decimal
    reason: str
    cgrid: str = ""
    run_id: str = ""
    ref: str = ""
    seq: int = 0  # assigned by storage (autoincrement), 0 before insert


@dataclass(slots=True)
class CdrRow:
    """A CDR with the CGRateS columns. ``cost`` is -1 when rating failed (reason in extra_info)."""

    cgrid: str
    run_id: str = "*default"
    origin_host: str = ""
    origin_id: str = ""
    source: str = ""
    tor: str = "*voice"
    request_type: str = ""
    tenant: str = ""
    category: str = ""
    account: str = ""
    subject: str = ""
    destination: str = ""
    setup_time: datetime | None = None
    answer_time: datetime | None = None
    usage: int = 0
    cost: Decimal = Decimal(-1)
    cost_source: str = ""
    cost_details: Any = None  # JSON-able (EventCost), its JSON as msgspec.Raw, or None
    extra_fields: dict[str, Any] = field(default_factory=dict)
    extra_info: str = ""
    partial: bool = False
    pre_rated: bool = False
    order_id: int = 0  # assigned by storage
    created_at: datetime | None = None  # assigned by storage when None


@dataclass(slots=True)
class CdrFilter:
    """The subset of CGRateS ``RPCCDRsFilter`` that storage answers; empty = no constraint.

    List fields match exactly (``destination_prefixes`` by prefix); ``not_*`` exclude.
    ``order_by`` is ``OrderID``/``AnswerTime``/``SetupTime``/``Usage``/``Cost`` with an
    optional ``;desc``. ``max_cost == -1`` selects unrated CDRs, as in CGRateS.
    """

    cgrids: Sequence[str] = ()
    run_ids: Sequence[str] = ()
    origin_ids: Sequence[str] = ()
    origin_hosts: Sequence[str] = ()
    sources: Sequence[str] = ()
    tors: Sequence[str] = ()
    request_types: Sequence[str] = ()
    tenants: Sequence[str] = ()
    categories: Sequence[str] = ()
    accounts: Sequence[str] = ()
    subjects: Sequence[str] = ()
    destination_prefixes: Sequence[str] = ()
    not_cgrids: Sequence[str] = ()
    not_run_ids: Sequence[str] = ()
    not_accounts: Sequence[str] = ()
    not_destination_prefixes: Sequence[str] = ()
    setup_time_start: datetime | None = None
    setup_time_end: datetime | None = None
    answer_time_start: datetime | None = None
    answer_time_end: datetime | None = None
    created_at_start: datetime | None = None
    created_at_end: datetime | None = None
    min_usage: int | None = None
    max_usage: int | None = None
    min_cost: Decimal | None = None
    max_cost: Decimal | None = None
    order_id_start: int | None = None
    order_id_end: int | None = None
    order_by: str = ""
    limit: int | None = None
    offset: int = 0


# --- write operations (applied in order, all in one transaction) -------------------------------
# The ones every charged request builds use ``fast_init`` (engine/fastinit.py): same behaviour.

@fast_init
@dataclass(frozen=True, slots=True)
class PutAccount:
    row: AccountRow


@dataclass(frozen=True, slots=True)
class DeleteAccount:
    """Removes the account and its balances; its ledger rows stay (append-only)."""

    tenant: str
    id: str


@fast_init
@dataclass(frozen=True, slots=True)
class PutBalance:
    row: BalanceRow


@dataclass(frozen=True, slots=True)
class DeleteBalance:
    uuid: str


@fast_init
@dataclass(frozen=True, slots=True)
class AppendLedger:
    entry: LedgerEntry


@fast_init
@dataclass(frozen=True, slots=True)
class InsertCdr:
    """Result in ``write``: True when inserted, False when (cgrid, run_id) already existed."""

    row: CdrRow


@fast_init
@dataclass(frozen=True, slots=True)
class PutSession:
    cgrid: str
    blob: bytes


@fast_init
@dataclass(frozen=True, slots=True)
class DeleteSession:
    cgrid: str


@fast_init
@dataclass(frozen=True, slots=True)
class MarkProcessed:
    """Idempotency key (e.g. ``terminate:<cgrid>``). Result: True if new, False if the key
    was already there (the caller's other ops in the same batch still apply; check first
    with ``get_processed`` when they must not)."""

    key: str
    value: str = ""


@dataclass(frozen=True, slots=True)
class QueuePut:
    """Result: the new item's id."""

    name: str
    payload: bytes


WriteOp = Union[PutAccount, DeleteAccount, PutBalance, DeleteBalance, AppendLedger, InsertCdr,
                PutSession, DeleteSession, MarkProcessed, QueuePut]


@dataclass(slots=True)
class StorageStats:
    """Counters that make group commit observable (tests and benchmarks read them)."""

    transactions: int = 0
    batches: int = 0
    ops: int = 0
    writes: int = 0  # write() calls (each may hold many ops)


class Storage(abc.ABC):
    """Async storage. ``write`` resolves only once its transaction is committed (durable)."""

    stats: StorageStats

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    # accounts
    @abc.abstractmethod
    async def load_accounts(self) -> list[StoredAccount]: ...

    @abc.abstractmethod
    async def ledger(self, tenant: str, account: str, *, cgrid: str | None = None) -> list[LedgerEntry]:
        """Every ledger row of one account, oldest first; only one session's rows with
        ``cgrid`` (indexed, for recovering a session without reading a busy account's history)."""

    # the one mutation entry point
    @abc.abstractmethod
    async def write(self, ops: Sequence[WriteOp]) -> list[Any]:
        """Apply ``ops`` atomically; returns one result per op (see each op)."""

    # tariff plan
    @abc.abstractmethod
    async def save_tariffplan(self, blob: bytes) -> int:
        """Store the plan blob; returns its new version number."""

    @abc.abstractmethod
    async def load_tariffplan(self) -> bytes | None: ...

    # CDRs
    async def insert_cdrs(self, rows: Sequence[CdrRow]) -> list[bool]:
        """Insert CDRs idempotently on (cgrid, run_id); True for each row that was new."""
        return await self.write([InsertCdr(row) for row in rows])

    @abc.abstractmethod
    async def query_cdrs(self, flt: CdrFilter) -> list[CdrRow]: ...

    # active sessions
    async def save_session(self, cgrid: str, blob: bytes) -> None:
        await self.write([PutSession(cgrid, blob)])

    async def delete_session(self, cgrid: str) -> None:
        await self.write([DeleteSession(cgrid)])

    @abc.abstractmethod
    async def load_sessions(self) -> dict[str, bytes]: ...

    # idempotency keys
    @abc.abstractmethod
    async def get_processed(self, key: str) -> str | None: ...

    # exporter queues (durable FIFO per name)
    async def queue_put(self, name: str, payloads: Sequence[bytes]) -> list[int]:
        return await self.write([QueuePut(name, p) for p in payloads])

    @abc.abstractmethod
    async def queue_get(self, name: str, limit: int = 100) -> list[tuple[int, bytes]]:
        """Oldest un-acked items, without removing them (at-least-once delivery)."""

    @abc.abstractmethod
    async def queue_ack(self, name: str, ids: Sequence[int]) -> None: ...

    async def __aenter__(self) -> "Storage":
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def open_storage(data_dir: str | Path, *, synchronous: str = "FULL") -> Storage:
    """The embedded default: SQLite at ``<data_dir>/chargeway.db`` (call ``await open()``)."""
    from engine.storage.sqlite import SqliteStorage

    return SqliteStorage(Path(data_dir) / "chargeway.db", synchronous=synchronous)
