"""How many CDRs a benchmarked `chargeway serve` stored, and how many of them were charged.

Counting rows alone is not enough: a session the engine could not rate still gets its CDR
(with the error in ExtraInfo), so a broken run would look just as durable. A charged CDR
has a cost above zero and no error.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def cdr_counts(data_dir: Path) -> tuple[int, int]:
    """(CDR rows, charged CDR rows) in ``data_dir/chargeway.db``, read-only beside the running
    writer (SQLite WAL); (0, 0) before the database exists."""
    path = data_dir / "chargeway.db"
    if not path.exists():
        return 0, 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
        total = conn.execute("SELECT COUNT(*) FROM cdrs").fetchone()[0]
        charged = conn.execute("SELECT COUNT(*) FROM cdrs WHERE extra_info = '' "
                               "AND CAST(cost AS NUMERIC) > 0").fetchone()[0]
    return int(total), int(charged)
