"""Opening the database file: pragmas, migrations, and write transactions."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import sqlite_utils

from db.errors import StoreError
from db.migrations import migrate

BUSY_TIMEOUT_MS = 10_000
_OPENING = threading.Lock()


def open_database(path: str | Path) -> sqlite_utils.Database:
    """Open (creating if needed) and migrate the database at *path*.

    WAL lets reports and `pricelens query` read while a crawl writes; the busy timeout
    makes a second writer wait instead of failing at once.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    # Switching a new file to WAL takes an exclusive lock that SQLite's busy handler does not
    # wait for, so sessions opening the same new file at once are serialised here (threads)
    # and retried (processes).
    with _OPENING:
        while True:
            try:
                return sqlite_utils.Database(_connect(path), execute_plugins=False)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise StoreError(f"{path}: cannot open database: {exc}") from exc
                time.sleep(0.05)  # another process is creating or upgrading the file
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"{path}: cannot open database: {exc}") from exc


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        migrate(conn, str(path))
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[sqlite3.Connection]:
    """One all-or-nothing write. IMMEDIATE takes the write lock up front, so a busy
    database is waited for (busy timeout) rather than failing half-way on lock upgrade."""
    conn = db.conn
    if conn.in_transaction:
        conn.commit()
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.commit()  # inside the try: a COMMIT that fails (disk full) is rolled back too
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
