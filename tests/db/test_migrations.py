"""Schema migrations and connection settings, against real database files."""

from __future__ import annotations

import sqlite3

import pytest

import db.migrations
from db.connection import BUSY_TIMEOUT_MS, open_database
from db.errors import MigrationError, StoreError
from db.migrations import MIGRATIONS, Migration, current_version, migrate
from db.records import Image
from db.store import Store

LATEST = MIGRATIONS[-1].version

TABLES = (
    "shops",
    "offers",
    "price_observations",
    "images",
    "crawl_runs",
    "crawl_errors",
    "models",
    "predictions",
    "labels",
    "product_groups",
    "group_members",
    "pipeline_runs",
    "match_corrections",
)


def schema_versions(conn: sqlite3.Connection) -> list[tuple[int, str]]:
    return conn.execute("SELECT version, name FROM schema_version ORDER BY version").fetchall()


def names_of(conn: sqlite3.Connection, kind: str) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = ?", (kind,))}


def test_migration_versions_are_increasing_from_one():
    versions = [m.version for m in MIGRATIONS]
    assert versions == list(range(1, len(MIGRATIONS) + 1))


def test_open_database_on_empty_file_reaches_latest_version(tmp_path):
    path = tmp_path / "fresh.db"
    database = open_database(path)
    try:
        assert current_version(database.conn) == LATEST
        assert schema_versions(database.conn) == [(m.version, m.name) for m in MIGRATIONS]
    finally:
        database.close()
    assert path.stat().st_size > 0


def test_open_database_creates_missing_parent_folders(tmp_path):
    path = tmp_path / "a" / "b" / "pricelens.db"
    open_database(path).close()
    assert path.is_file()


@pytest.mark.parametrize("reopens", [1, 2, 5])
def test_reopening_is_idempotent(tmp_path, reopens):
    path = tmp_path / "again.db"
    for _ in range(reopens + 1):
        database = open_database(path)
        try:
            assert current_version(database.conn) == LATEST
        finally:
            database.close()
    conn = sqlite3.connect(path)
    try:
        counts = conn.execute(
            "SELECT version, COUNT(*) FROM schema_version GROUP BY version"
        ).fetchall()
    finally:
        conn.close()
    assert counts == [(m.version, 1) for m in MIGRATIONS]


def test_migrate_twice_on_one_connection_returns_the_same_version(tmp_path):
    conn = sqlite3.connect(tmp_path / "raw.db")
    try:
        assert migrate(conn) == LATEST
        assert migrate(conn) == LATEST
        assert len(schema_versions(conn)) == len(MIGRATIONS)
    finally:
        conn.close()


def test_reopening_keeps_existing_rows(tmp_path):
    path = tmp_path / "keep.db"
    database = open_database(path)
    database.conn.execute(
        "INSERT INTO shops (name, created_at) VALUES ('classic', '2024-01-01T00:00:00Z')"
    )
    database.conn.commit()
    database.close()
    database = open_database(path)
    try:
        assert database.conn.execute("SELECT name FROM shops").fetchall() == [("classic",)]
    finally:
        database.close()


@pytest.mark.parametrize(
    ("pragma", "expected"),
    [("journal_mode", "wal"), ("foreign_keys", 1), ("synchronous", 1)],
)
def test_open_database_sets_pragma(tmp_path, pragma, expected):
    database = open_database(tmp_path / "p.db")
    try:
        assert database.conn.execute(f"PRAGMA {pragma}").fetchone()[0] == expected
    finally:
        database.close()


def test_open_database_sets_a_busy_timeout(tmp_path):
    database = open_database(tmp_path / "busy.db")
    try:
        timeout = database.conn.execute("PRAGMA busy_timeout").fetchone()[0]
    finally:
        database.close()
    assert timeout >= 1000
    assert timeout == BUSY_TIMEOUT_MS


def test_wal_mode_persists_in_the_file(tmp_path):
    path = tmp_path / "wal.db"
    open_database(path).close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


@pytest.mark.parametrize("table", TABLES)
def test_schema_has_table(tmp_path, table):
    database = open_database(tmp_path / "t.db")
    try:
        assert table in names_of(database.conn, "table")
    finally:
        database.close()


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("offers", ["url"]),
        ("offers", ["image_sha256"]),
        ("offers", ["last_seen_at"]),
        ("price_observations", ["offer_id", "observed_at"]),
        ("group_members", ["group_id"]),
    ],
)
def test_schema_has_index(tmp_path, table, columns):
    database = open_database(tmp_path / "i.db")
    try:
        conn = database.conn
        indexed = [
            [r[2] for r in conn.execute(f"PRAGMA index_info('{name}')")]
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                "AND sql IS NOT NULL",
                (table,),
            )
        ]
    finally:
        database.close()
    assert columns in indexed


@pytest.mark.parametrize(
    "trigger", ["price_observations_no_update", "price_observations_no_delete"]
)
def test_schema_has_append_only_trigger(tmp_path, trigger):
    database = open_database(tmp_path / "tr.db")
    try:
        assert trigger in names_of(database.conn, "trigger")
    finally:
        database.close()


def test_failing_migration_raises_and_leaves_the_previous_version(tmp_path, monkeypatch):
    path = tmp_path / "fail.db"
    open_database(path).close()
    broken = Migration(
        LATEST + 1, "half done", "CREATE TABLE half_done (x); CREATE TABLE shops (x);"
    )
    monkeypatch.setattr(db.migrations, "MIGRATIONS", (*MIGRATIONS, broken))
    conn = sqlite3.connect(path)
    try:
        with pytest.raises(MigrationError) as caught:
            migrate(conn, str(path))
        message = str(caught.value)
        assert str(path) in message
        assert f"migration {LATEST + 1}" in message
        assert current_version(conn) == LATEST
        # the migration's own transaction was rolled back: nothing of it is left
        assert "half_done" not in names_of(conn, "table")
    finally:
        conn.close()


def test_new_migration_is_applied_on_next_open(tmp_path, monkeypatch):
    path = tmp_path / "grow.db"
    open_database(path).close()
    extra = Migration(LATEST + 1, "add notes", "CREATE TABLE notes (id INTEGER PRIMARY KEY);")
    monkeypatch.setattr(db.migrations, "MIGRATIONS", (*MIGRATIONS, extra))
    database = open_database(path)
    try:
        assert current_version(database.conn) == LATEST + 1
        assert "notes" in names_of(database.conn, "table")
        assert schema_versions(database.conn)[-1] == (LATEST + 1, "add notes")
    finally:
        database.close()


def test_migration_name_with_apostrophe_is_recorded(tmp_path, monkeypatch):
    path = tmp_path / "quote.db"
    open_database(path).close()
    extra = Migration(LATEST + 1, "add shop's region", "ALTER TABLE shops ADD COLUMN region TEXT;")
    monkeypatch.setattr(db.migrations, "MIGRATIONS", (*MIGRATIONS, extra))
    database = open_database(path)
    try:
        assert schema_versions(database.conn)[-1] == (LATEST + 1, "add shop's region")
    finally:
        database.close()


@pytest.mark.parametrize("content", [b"this is not a database file at all" * 100, b"\x00" * 4096])
def test_open_database_on_a_non_database_raises_store_error_naming_the_file(tmp_path, content):
    path = tmp_path / "junk.db"
    path.write_bytes(content)
    with pytest.raises(StoreError) as caught:
        open_database(path)
    assert str(path) in str(caught.value)


def test_many_sessions_opening_a_new_file_at_once_all_succeed(tmp_path):
    """Parallel crawl sessions open the same new database together: WAL and migrations must
    not fail with 'database is locked'."""
    import subprocess
    import sys
    import threading

    from db.store import Store

    for trial in range(5):
        path = tmp_path / f"threads-{trial}.db"
        errors: list[Exception] = []

        def open_it(path=path, errors=errors):
            try:
                Store(path).close()
            except Exception as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
    shared = tmp_path / "processes.db"
    code = f"from db.store import Store; Store({str(shared)!r}).close()"
    processes = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(4)
    ]
    assert [p.wait(timeout=60) for p in processes] == [0, 0, 0, 0]


def test_migration_6_makes_absolute_paths_relative_to_the_home(tmp_path, monkeypatch):
    """A database written before migration 6 (absolute paths), then moved: its paths are cut
    at their last home folder and found in the new home."""
    from db.store import Store

    path = tmp_path / "pricelens.db"
    with monkeypatch.context() as patch:
        patch.setattr(db.migrations, "MIGRATIONS", MIGRATIONS[:5])
        database = open_database(path)
    conn, at = database.conn, "2024-01-01T00:00:00Z"
    conn.executemany(
        "INSERT INTO images (sha256, path, width, height, format, bytes, created_at) "
        "VALUES (?, ?, 28, 28, 'PNG', 1, ?)",
        [
            ("a", "/old/home/images/ab/a.png", at),
            ("b", "/srv/images/pricelens/images/cd/b.png", at),  # the last images/ counts
            ("c", "/elsewhere/c.png", at),  # no home folder in it: kept
            ("d", "images/ef/d.png", at),  # relative already
        ],
    )
    conn.executemany(
        "INSERT INTO models (version, architecture, path, created_at) VALUES (?, 'x', ?, ?)",
        [("m-1", "/old/home/models/m-1/best.pt", at), ("ext", "/opt/weights.pt", at)],
    )
    conn.execute("INSERT INTO shops (name, created_at) VALUES ('classic', ?)", [at])
    conn.execute(
        "INSERT INTO crawl_runs (shop_id, started_at, status) VALUES (1, ?, 'failed')", [at]
    )
    conn.execute(
        "INSERT INTO crawl_errors (crawl_run_id, message, screenshot_path, html_path, "
        "created_at) VALUES (1, 'boom', '/old/home/crawl-errors/run-1/0001-goto.png', NULL, ?)",
        [at],
    )
    conn.commit()
    database.close()
    with Store(path) as store:
        conn = store.db.conn
        assert current_version(conn) == LATEST
        assert conn.execute("SELECT sha256, path FROM images ORDER BY sha256").fetchall() == [
            ("a", "images/ab/a.png"),
            ("b", "images/cd/b.png"),
            ("c", "/elsewhere/c.png"),
            ("d", "images/ef/d.png"),
        ]
        assert conn.execute("SELECT path FROM models ORDER BY id").fetchall() == [
            ("models/m-1/best.pt",),
            ("/opt/weights.pt",),
        ]
        assert conn.execute("SELECT screenshot_path, html_path FROM crawl_errors").fetchall() == [
            ("crawl-errors/run-1/0001-goto.png", None)
        ]
        assert conn.execute(
            "SELECT count(*) FROM images WHERE unreadable_reason IS NULL"
        ).fetchone() == (4,)
        found = {r["sha256"]: r["path"] for r in store.images_without_prediction(1)}
        assert found["a"] == str(tmp_path / "images" / "ab" / "a.png")
        assert found["c"] == "/elsewhere/c.png"
        assert store.model("m-1").path == str(tmp_path / "models" / "m-1" / "best.pt")


def test_migration_7_rebuilds_pipeline_runs_keeping_ids_and_crawl_links(tmp_path, monkeypatch):
    """Up to version 6, then a run that went on past a failed shop ('ok' with a 'crawl: '
    error) and one that did not; after 7 the first is 'partial', ids and the crawl run's
    link survive, foreign keys are on again, and 'partial' is accepted from now on."""
    path = tmp_path / "pricelens.db"
    with monkeypatch.context() as patch:
        patch.setattr(db.migrations, "MIGRATIONS", MIGRATIONS[:6])
        conn = open_database(path).conn
    monkeypatch.setattr(db.migrations, "MIGRATIONS", MIGRATIONS[:7])
    conn.executescript(
        "INSERT INTO shops (id, name, created_at) VALUES (1, 'a', 't');"
        "INSERT INTO pipeline_runs (id, kind, started_at, status, error) VALUES"
        " (4, 'pipeline', 't', 'ok', 'crawl: b failed (b: refused)'),"
        " (9, 'manual', 't', 'ok', NULL);"
        "INSERT INTO crawl_runs (id, shop_id, pipeline_run_id, started_at, status)"
        " VALUES (2, 1, 4, 't', 'ok');"
    )
    assert migrate(conn, str(path)) == 7
    assert conn.execute("SELECT id, status FROM pipeline_runs ORDER BY id").fetchall() == [
        (4, "partial"),
        (9, "ok"),
    ]
    assert conn.execute("SELECT pipeline_run_id FROM crawl_runs").fetchall() == [(4,)]
    assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.execute(
        "INSERT INTO pipeline_runs (kind, started_at, status) VALUES ('manual', 't', 'partial')"
    )
    with pytest.raises(sqlite3.IntegrityError):  # the link is still a foreign key
        conn.execute(
            "INSERT INTO crawl_runs (shop_id, pipeline_run_id, started_at, status)"
            " VALUES (1, 99, 't', 'ok')"
        )


def test_migration_8_marks_every_earlier_crawl_as_not_capped(tmp_path, monkeypatch):
    """Crawls recorded before version 8 read as not stopped at a page cap (what the report's
    rule assumed of them), and new ones can say they were."""
    path = tmp_path / "pricelens.db"
    with monkeypatch.context() as patch:
        patch.setattr(db.migrations, "MIGRATIONS", MIGRATIONS[:7])
        conn = open_database(path).conn
    conn.executescript(
        "INSERT INTO shops (id, name, created_at) VALUES (1, 'a', 't');"
        "INSERT INTO crawl_runs (id, shop_id, started_at, status, pages)"
        " VALUES (2, 1, 't', 'ok', 5);"
    )
    assert migrate(conn, str(path)) == len(MIGRATIONS)
    assert conn.execute("SELECT id, capped FROM crawl_runs").fetchall() == [(2, 0)]
    conn.execute(
        "INSERT INTO crawl_runs (shop_id, started_at, status, capped) VALUES (1, 't', 'ok', 1)"
    )


def test_migration_9_records_photos_per_model_and_refuses_an_unknown_split(tmp_path):
    """A model's photos are stored with it, in its transaction: a split other than train,
    validation or held_out is refused, and the model with it."""
    path = tmp_path / "pricelens.db"
    with Store(path) as store:
        store.store_image(Image("a" * 64, "images/a.png", 28, 28, "PNG", 10))
        store.register_model(
            "m1", "shopnet", "models/m1.pt", {}, {}, True, [("a" * 64, "bag", "train")]
        )
        rows = store.db.execute("SELECT image_sha256, label, split FROM model_photos").fetchall()
        assert rows == [("a" * 64, "bag", "train")]
        with pytest.raises(sqlite3.IntegrityError):
            store.register_model(
                "m2", "shopnet", "models/m2.pt", {}, {}, True, [("a" * 64, "bag", "test")]
            )
        assert [m.version for m in store.models()] == ["m1"]  # nothing of m2 was kept
