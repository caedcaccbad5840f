"""Read-only SQL for `pricelens query`: the file cannot be changed through it."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from db.errors import QueryRefused, QueryTimeout, StoreError

# Authorizer action codes that would change a database or reach another file.
_DENIED_ACTIONS = {
    sqlite3.SQLITE_ATTACH: "ATTACH",
    sqlite3.SQLITE_DETACH: "DETACH",
}
# PRAGMAs that only read. Introspection pragmas take a table or index name; the
# settings below them are allowed only bare, because given a value they would write.
_INTROSPECTION_PRAGMAS = {
    "table_info",
    "table_xinfo",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
    "integrity_check",
    "quick_check",
}
_SETTING_PRAGMAS = {
    "database_list",
    "table_list",
    "user_version",
    "schema_version",
    "page_count",
    "page_size",
    "freelist_count",
    "compile_options",
    "journal_mode",
    "foreign_keys",
    "collation_list",
    "function_list",
    "pragma_list",
    "encoding",
    "data_version",
}


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    truncated: bool
    schema_version: int | None = None  # the file's migrations (None: not a pricelens file)


def _authorize(action, arg1, arg2, _db, _trigger):
    if action in _DENIED_ACTIONS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        if name in _INTROSPECTION_PRAGMAS or (name in _SETTING_PRAGMAS and arg2 is None):
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


# Far above any value pricelens stores (a title, a URL, an embedding of 64 floats), far
# below SQLite's default of 1e9 bytes, which one call can take seconds and a GB to build.
MAX_VALUE_BYTES = 10_000_000


def run_readonly_query(
    path: str | Path, sql: str, params: tuple = (), time_limit_s: float = 10.0, max_rows: int = 1000
) -> QueryResult:
    """Run one SQL statement against *path* opened with ``mode=ro``.

    Three fences: the read-only open, ``PRAGMA query_only``, and an authorizer refusing
    ATTACH/DETACH and pragma writes. A progress handler stops runaway statements; a cap on
    the length of a value stops the single function call it cannot interrupt
    (``randomblob(9e8)``). A Ctrl-C or SIGTERM that stops the statement stays one
    (KeyboardInterrupt), not a time-out.
    """
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such database")
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=5)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open read-only: {exc}") from exc
    try:
        conn.execute("PRAGMA query_only = 1")
        conn.set_authorizer(_authorize)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        deadline = time.monotonic() + time_limit_s
        timed_out = False

        def past_deadline() -> int:
            nonlocal timed_out
            timed_out = time.monotonic() > deadline
            return int(timed_out)

        conn.set_progress_handler(past_deadline, 10_000)
        try:
            cursor = conn.execute(sql, params)
            columns = [d[0] for d in cursor.description or ()]
            rows = cursor.fetchmany(max_rows + 1)
        except sqlite3.DatabaseError as exc:
            message = str(exc)
            if "interrupted" in message:
                if not timed_out:  # the CLI's signal handler raised in the progress handler
                    raise KeyboardInterrupt from None
                raise QueryTimeout(f"{path}: query stopped after {time_limit_s:g}s") from exc
            if "too big" in message:
                raise StoreError(
                    f"{path}: a value over {MAX_VALUE_BYTES:,} bytes; queries are capped"
                ) from exc
            if "authoriz" in message or "readonly" in message or "query_only" in message:
                raise QueryRefused(f"{path}: refused, queries are read-only ({message})") from exc
            if isinstance(exc, sqlite3.ProgrammingError):
                raise QueryRefused(f"{path}: {message}") from exc
            raise StoreError(f"{path}: {message}") from exc
        except sqlite3.ProgrammingError as exc:
            raise QueryRefused(f"{path}: {exc}") from exc
        return QueryResult(columns, rows[:max_rows], len(rows) > max_rows, _schema_version(conn))
    finally:
        conn.close()


def _schema_version(conn: sqlite3.Connection) -> int | None:
    try:
        return conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
    except sqlite3.Error:  # no such table: not a pricelens database, or a new empty one
        return None
