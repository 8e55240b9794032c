"""WAL checkpoints on their own thread and connection, off the writer's commit path.

Why: with SQLite's default autocheckpoint the connection that commits also copies the WAL
into the database file (and fsyncs it) every 1,000 pages. Under load that is one group
commit in ~100 that takes 10-40 ms instead of <1 ms, and every request waiting on that
commit (a Diameter CCA, a RADIUS answer) waits with it: it was most of the p99.

A PASSIVE checkpoint takes no writer lock, so it runs beside the writer's commits (the
sqlite3 module releases the GIL while SQLite works). It only moves frames that are already
committed, so what is durable does not change. The writer keeps a guard (``wal_too_big``):
if the checkpointer cannot keep up, the writer checkpoints itself between batches, as
SQLite would have.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


class WalCheckpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` every ``interval`` seconds while commits happen."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], db_path: Path, *,
                 interval: float = 0.2, max_wal_bytes: int = 64 << 20) -> None:
        self._connect = connect
        self._wal_path = Path(str(db_path) + "-wal")
        self.interval = interval
        self.max_wal_bytes = max_wal_bytes
        self.commits = 0          # bumped by the writer thread after each COMMIT
        self.checkpoints = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._main, name=f"sqlite-checkpoint:{self._wal_path.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def wal_too_big(self) -> bool:
        """For the writer: the WAL outgrew ``max_wal_bytes`` (the checkpointer is behind)."""
        try:
            return os.stat(self._wal_path).st_size > self.max_wal_bytes
        except OSError:
            return False

    def _main(self) -> None:
        try:
            conn = self._connect()
        except Exception:  # the writer's own guard still bounds the WAL
            log.exception("sqlite checkpointer could not connect")
            return
        seen = self.commits
        try:
            while not self._stop.wait(self.interval):
                if self.commits == seen:
                    continue
                seen = self.commits
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.checkpoints += 1
                except sqlite3.Error as exc:  # busy or I/O: try again next interval
                    log.warning("sqlite checkpoint failed: %s", exc)
        finally:
            conn.close()
