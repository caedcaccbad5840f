"""`pricelens query`: read-only SQL that cannot change the file, with a time limit."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import sys
import threading
import time

import pytest

from db.errors import QueryRefused, QueryTimeout, StoreError
from db.query import run_readonly_query
from db.store import Store
from tests.db.conftest import make_offer

COUNTED = ("shops", "offers", "price_observations", "crawl_runs", "models", "schema_version")


def fill(path) -> None:
    with Store(path) as store:
        run_id = store.start_crawl_run("classic", "http://127.0.0.1:8101")
        store.save_page(
            run_id, [make_offer(url=f"http://s/{n}", price=1000 * (n + 1)) for n in range(3)]
        )
        store.register_model("v1", "smallcnn", "/m/v1.pt", {}, {})


@pytest.fixture
def filled(db_path):
    fill(db_path)
    return db_path


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def counts(path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in COUNTED}
    finally:
        conn.close()


def test_select_returns_columns_and_rows(filled):
    result = run_readonly_query(filled, "SELECT url, price FROM offers ORDER BY price")
    assert result.columns == ["url", "price"]
    assert result.rows == [("http://s/0", 1000), ("http://s/1", 2000), ("http://s/2", 3000)]
    assert result.truncated is False


def test_select_takes_parameters(filled):
    result = run_readonly_query(filled, "SELECT url FROM offers WHERE price > ?", (1500,))
    assert sorted(result.rows) == [("http://s/1",), ("http://s/2",)]


def test_select_with_no_rows(filled):
    result = run_readonly_query(filled, "SELECT name AS shop FROM shops WHERE name = 'none'")
    assert result.columns == ["shop"]
    assert result.rows == []
    assert result.truncated is False


REFUSED = [
    "INSERT INTO shops (name, created_at) VALUES ('evil', '2024-01-01')",
    "INSERT INTO shops (name, created_at) VALUES ('evil', '2024') RETURNING id",
    "UPDATE offers SET price = 1",
    "DELETE FROM shops",
    "DELETE FROM price_observations",
    "DROP TABLE shops",
    "DROP INDEX offers_url",
    "CREATE TABLE evil (x)",
    "CREATE TEMP TABLE evil (x)",
    "CREATE INDEX evil ON offers(title)",
    "ALTER TABLE offers ADD COLUMN evil TEXT",
    "ATTACH DATABASE '{other}' AS other",
    "DETACH DATABASE main",
    "DETACH main",
    "PRAGMA query_only=0",
    "PRAGMA query_only = OFF",
    "PRAGMA journal_mode=DELETE",
    "PRAGMA foreign_keys=OFF",
    "PRAGMA user_version = 7",
    "PRAGMA writable_schema = 1",
    "PRAGMA wal_checkpoint(TRUNCATE)",
    "VACUUM",
    "VACUUM INTO '{other}'",
    "REINDEX",
    "ANALYZE",
    "WITH doomed AS (SELECT id FROM shops) DELETE FROM shops WHERE id IN doomed",
    "SELECT load_extension('evil')",
    "SELECT 1; DELETE FROM shops",
    "SELECT 1; SELECT 2",
]


@pytest.mark.parametrize("sql", REFUSED)
def test_statement_is_refused_and_the_file_is_unchanged(filled, tmp_path, sql):
    other = tmp_path / "other.db"
    before_digest, before_counts = digest(filled), counts(filled)
    with pytest.raises(QueryRefused) as caught:
        run_readonly_query(filled, sql.format(other=other))
    assert str(filled) in str(caught.value)
    assert digest(filled) == before_digest
    assert counts(filled) == before_counts
    assert not other.exists()


@pytest.mark.parametrize("sql", REFUSED)
def test_statement_is_refused_while_a_writer_has_the_file_open(db_path, tmp_path, sql):
    with Store(db_path) as store:
        store.upsert_offer(make_offer())
        before = counts(db_path)
        with pytest.raises(QueryRefused):
            run_readonly_query(db_path, sql.format(other=tmp_path / "other.db"))
        assert counts(db_path) == before
        # the writer is not blocked by what the refused query did
        store.upsert_offer(make_offer(url="http://s/after"))
        assert store.count("offers") == 2


@pytest.mark.parametrize(
    ("sql", "check"),
    [
        ("PRAGMA table_info(offers)", lambda r: "price" in [row[1] for row in r.rows]),
        ("PRAGMA table_info('price_observations')", lambda r: len(r.rows) == 11),
        ("PRAGMA index_list(offers)", lambda r: len(r.rows) >= 3),
        (
            "PRAGMA foreign_key_list(offers)",
            lambda r: {row[2] for row in r.rows} == {"shops", "images"},
        ),
        ("PRAGMA journal_mode", lambda r: r.rows == [("wal",)]),
        ("PRAGMA foreign_keys", lambda r: len(r.rows) == 1),
        ("PRAGMA integrity_check", lambda r: r.rows == [("ok",)]),
        ("PRAGMA user_version", lambda r: r.rows == [(0,)]),
        ("SELECT COUNT(*) FROM offers;", lambda r: r.rows == [(3,)]),
        ("SELECT COUNT(*) FROM offers; -- trailing comment", lambda r: r.rows == [(3,)]),
        ("EXPLAIN QUERY PLAN SELECT * FROM offers WHERE url = 'x'", lambda r: len(r.rows) >= 1),
        (
            "WITH p AS (SELECT price FROM offers) SELECT MAX(price) FROM p",
            lambda r: r.rows == [(3000,)],
        ),
    ],
)
def test_read_only_statement_is_allowed(filled, sql, check):
    before = digest(filled)
    result = run_readonly_query(filled, sql)
    assert check(result)
    assert digest(filled) == before


def test_query_sees_what_an_open_store_committed(db_path):
    with Store(db_path) as store:
        store.upsert_offer(make_offer(title="fresh"))
        result = run_readonly_query(db_path, "SELECT title FROM offers")
    assert result.rows == [("fresh",)]


RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def test_runaway_query_is_stopped(filled):
    with pytest.raises(QueryTimeout) as caught:
        run_readonly_query(filled, RUNAWAY, time_limit_s=0.5)
    assert str(filled) in str(caught.value)
    assert "0.5s" in str(caught.value)
    # the file is still fine for the next query
    assert run_readonly_query(filled, "SELECT COUNT(*) FROM shops").rows == [(1,)]


def test_ctrl_c_during_a_query_is_an_interrupt_not_a_timeout(filled):
    """SIGINT while SQLite runs the statement: KeyboardInterrupt (the CLI exits 130), not a
    false "stopped after 60s"."""
    main = threading.main_thread().ident

    def interrupt_once_running():
        while sys._current_frames()[main].f_code.co_name != "run_readonly_query":
            time.sleep(0.01)  # polling for the main thread to be inside the query
        os.kill(os.getpid(), signal.SIGINT)

    helper = threading.Thread(target=interrupt_once_running)
    helper.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_readonly_query(filled, RUNAWAY, time_limit_s=60)
    finally:
        helper.join()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT length(randomblob(900000000))",
        "SELECT length(replace(hex(zeroblob(200000000)), '0', 'ab'))",
    ],
)
def test_one_huge_value_is_refused_at_once(filled, sql):
    """One function call building a huge value runs past any progress check: refused by
    the length cap instead, naming the file."""
    with pytest.raises(StoreError) as caught:
        run_readonly_query(filled, sql, time_limit_s=60)
    assert str(filled) in str(caught.value)
    assert "capped" in str(caught.value)


def test_recursive_query_that_ends_is_not_a_timeout(filled):
    sql = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) "
        "SELECT count(*) FROM c"
    )
    assert run_readonly_query(filled, sql, time_limit_s=30).rows == [(1000,)]


SERIES = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) SELECT x FROM c"
)


@pytest.mark.parametrize(
    ("total", "max_rows", "returned", "truncated"),
    [
        (5, 10, 5, False),
        (10, 10, 10, False),
        (11, 10, 10, True),
        (50, 1, 1, True),
        (2000, 1000, 1000, True),
    ],
)
def test_max_rows_caps_the_rows(filled, total, max_rows, returned, truncated):
    result = run_readonly_query(filled, SERIES, (total,), max_rows=max_rows)
    assert result.rows == [(n,) for n in range(1, returned + 1)]
    assert result.truncated is truncated


def test_unbounded_rows_are_capped_without_running_forever(filled):
    unbounded = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c"
    result = run_readonly_query(filled, unbounded, max_rows=3)
    assert result.rows == [(1,), (2,), (3,)]
    assert result.truncated is True


def test_missing_database_raises_store_error_naming_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "pricelens.db"
    with pytest.raises(StoreError) as caught:
        run_readonly_query(missing, "SELECT 1")
    assert str(missing) in str(caught.value)
    assert not missing.exists()
    assert not missing.parent.exists()


@pytest.mark.parametrize("sql", ["SELEC 1", "SELECT * FROM no_such_table"])
def test_bad_sql_is_a_store_error_naming_the_file(filled, sql):
    with pytest.raises(StoreError) as caught:
        run_readonly_query(filled, sql)
    assert not isinstance(caught.value, QueryRefused | QueryTimeout)
    assert str(filled) in str(caught.value)


@pytest.mark.parametrize(
    "name", ["with space.db", "hash#tag.db", "what?.db", "percent%41.db", "가격.db"]
)
def test_paths_needing_uri_escaping_open_the_right_file(tmp_path, name):
    path = tmp_path / name
    fill(path)
    result = run_readonly_query(path, "SELECT COUNT(*) FROM offers")
    assert result.rows == [(3,)]
    with pytest.raises(QueryRefused):
        run_readonly_query(path, "DELETE FROM offers")
    assert counts(path)["offers"] == 3
