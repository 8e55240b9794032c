"""Session snapshots stored under a row id the writer hands out, not under their CGRID.

Why: a CGRID is a hash, so a table keyed (or indexed) by it puts every new session's key
on a random B-tree page, and every commit writes each page it touched to the WAL as a
whole 4 KB frame. Keyed by CGRID, a call's snapshot cost two random index pages (its
insert at call start, its delete at call end) besides its table row. Under an increasing
integer id the rows of sessions started together share pages and the table has no
second index. Only the writer thread writes snapshots and nothing looks one up by CGRID
in SQL (recovery reads them all), so the writer keeps the CGRID -> id map in memory.

The map changes only once a transaction commits: ``stage`` records what a transaction
did, ``savepoint``/``rollback_to`` undo one job's part of it, ``commit``/``rollback``
end it.
"""

from __future__ import annotations

import sqlite3

from engine.storage.bulk import BulkStatement

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS session_snapshots (
    id INTEGER PRIMARY KEY, cgrid TEXT NOT NULL, blob BLOB NOT NULL, updated_at TEXT NOT NULL);
"""

# A new snapshot and a newer one of a known session are the same statement: one per batch.
_PUT = BulkStatement("INSERT INTO session_snapshots (id, cgrid, blob, updated_at) VALUES ", "(?,?,?,?)",
                     " ON CONFLICT(id) DO UPDATE SET blob=excluded.blob, updated_at=excluded.updated_at")
_DELETE = BulkStatement("DELETE FROM session_snapshots WHERE id IN (", "?", ")")
SELECT_ALL = "SELECT cgrid, blob FROM session_snapshots ORDER BY id"


class SnapshotRows:
    """The writer's CGRID -> row id map of ``session_snapshots``."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.next_id = 1
        self._staged: dict[str, int | None] = {}  # this transaction: cgrid -> new id, or None: deleted

    def load(self, conn: sqlite3.Connection) -> None:
        """Read the map; a CGRID stored twice (never written so, but cheap to heal) keeps its
        newest row."""
        self.ids.clear()
        self._staged.clear()
        stale: list[tuple[int]] = []
        top = 0
        for row_id, cgrid in conn.execute("SELECT id, cgrid FROM session_snapshots ORDER BY id"):
            old = self.ids.get(cgrid)
            if old is not None:
                stale.append((old,))
            self.ids[cgrid] = row_id
            top = row_id
        if stale:
            _DELETE.run(conn, stale)
        self.next_id = top + 1

    def _id_of(self, cgrid: str) -> int | None:
        if cgrid in self._staged:
            return self._staged[cgrid]
        return self.ids.get(cgrid)

    def write(self, conn: sqlite3.Connection, snapshots: dict[str, bytes | None], now: str) -> None:
        """Store (blob) or delete (None) each session's final snapshot of a batch."""
        puts: list[tuple] = []
        deletes: list[tuple[int]] = []
        for cgrid, blob in snapshots.items():
            row_id = self._id_of(cgrid)
            if blob is None:
                if row_id is not None:
                    deletes.append((row_id,))
                    self._staged[cgrid] = None
            else:
                if row_id is None:
                    row_id = self.next_id
                    self.next_id += 1
                    self._staged[cgrid] = row_id
                puts.append((row_id, cgrid, blob, now))
        if puts:
            _PUT.run(conn, puts)
        if deletes:
            _DELETE.run(conn, deletes)

    def savepoint(self) -> dict[str, int | None]:
        return dict(self._staged)

    def rollback_to(self, saved: dict[str, int | None]) -> None:
        self._staged = saved

    def commit(self) -> None:
        for cgrid, row_id in self._staged.items():
            if row_id is None:
                self.ids.pop(cgrid, None)
            else:
                self.ids[cgrid] = row_id
        self._staged.clear()

    def rollback(self) -> None:
        """Forget the transaction's changes; the ids it handed out stay unused (gaps are fine)."""
        self._staged.clear()


def migrate_v1(conn: sqlite3.Connection) -> None:
    """Schema v1 -> v2, inside the caller's transaction: snapshots move from the CGRID-keyed
    ``active_sessions`` table, and the ledger loses its ``cgrid`` index (no query of the
    product used it; it was one more random page per debit)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='active_sessions'").fetchone():
        conn.execute("INSERT INTO session_snapshots (cgrid, blob, updated_at) "
                     "SELECT cgrid, blob, updated_at FROM active_sessions ORDER BY rowid")
        conn.execute("DROP TABLE active_sessions")
    conn.execute("DROP INDEX IF EXISTS ledger_cgrid")
