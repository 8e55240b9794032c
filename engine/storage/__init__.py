"""Storage behind one narrow async interface (SQLite WAL default)."""

from engine.storage.base import (
    AccountRow, AppendLedger, BalanceRow, CdrFilter, CdrRow, DeleteAccount, DeleteBalance,
    DeleteSession, InsertCdr, LedgerEntry, MarkProcessed, PutAccount, PutBalance, PutSession,
    QueuePut, Storage, StorageStats, StoredAccount, WriteOp, open_storage,
)

__all__ = [
    "AccountRow", "AppendLedger", "BalanceRow", "CdrFilter", "CdrRow", "DeleteAccount",
    "DeleteBalance", "DeleteSession", "InsertCdr", "LedgerEntry", "MarkProcessed", "PutAccount",
    "PutBalance", "PutSession", "QueuePut", "Storage", "StorageStats", "StoredAccount", "WriteOp",
    "open_storage",
]
