"""Multi-row statements: every row written whatever the count, few statement texts, and the
changed-row count the writer's duplicate checks rely on."""

from __future__ import annotations

import sqlite3

import pytest

from engine.storage.bulk import BulkStatement


@pytest.fixture
def conn():
    c = sqlite3.connect(":memory:", isolation_level=None)
    c.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
    yield c
    c.close()


def test_every_row_of_any_count_is_written_with_at_most_eight_statement_texts(conn):
    insert = BulkStatement("INSERT INTO t (k, v) VALUES ", "(?,?)")
    written = 0
    for count in (1, 2, 3, 127, 128, 129, 300, 1000):
        rows = [(f"{count}-{i}", i) for i in range(count)]
        assert insert.run(conn, rows) == count
        written += count
    assert conn.execute("SELECT count(*), sum(v) FROM t").fetchone() == (
        written, sum(i for c in (1, 2, 3, 127, 128, 129, 300, 1000) for i in range(c)))
    assert sorted(insert._sql) == [1, 2, 4, 8, 16, 32, 64, 128]


def test_ignored_duplicates_are_not_counted_and_deletes_by_list(conn):
    insert = BulkStatement("INSERT OR IGNORE INTO t (k, v) VALUES ", "(?,?)")
    assert insert.run(conn, [("a", 1), ("b", 2)]) == 2
    assert insert.run(conn, [("a", 9), ("c", 3), ("b", 9)]) == 1
    delete = BulkStatement("DELETE FROM t WHERE k IN (", "?", ")")
    assert delete.run(conn, [("a",), ("c",), ("zz",)]) == 2
    assert conn.execute("SELECT k, v FROM t").fetchall() == [("b", 2)]


def test_upsert_keeps_the_last_row_of_a_key(conn):
    put = BulkStatement("INSERT INTO t (k, v) VALUES ", "(?,?)", " ON CONFLICT(k) DO UPDATE SET v=excluded.v")
    put.run(conn, [("a", 1), ("b", 2)])
    put.run(conn, [("a", 5), ("c", 3)])
    assert conn.execute("SELECT k, v FROM t ORDER BY k").fetchall() == [("a", 5), ("b", 2), ("c", 3)]


def test_max_rows_must_be_a_power_of_two():
    with pytest.raises(ValueError):
        BulkStatement("x", "(?)", max_rows=100)
