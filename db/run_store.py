"""Crawl runs, their errors, and pipeline runs: what ran when, and how it ended."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from db.clock import now_iso as _now
from db.connection import write_transaction
from db.paths import stored_path
from db.run_locks import RunLocks


class RunStore:
    """Mixed into `Store`; uses its ``db``, ``home`` and ``run_locks``: a run's row is
    'running' only while this store holds its lock, from the insert until the row is finished
    or the store closed, so another process can tell a live run from a dead one."""

    run_locks: RunLocks
    home: Path

    def _start_run(self, table: str, insert: Callable[[sqlite3.Connection], int]) -> int:
        """Insert one run into *table* (*insert* returns its id), taking the run's lock
        before the row is committed."""
        run_id = None
        try:
            with write_transaction(self.db) as conn:
                run_id = insert(conn)
                self.run_locks.hold(table, run_id)
        except BaseException:
            if run_id is not None:
                self.run_locks.release(table, run_id)
            raise
        return run_id

    def start_crawl_run(
        self, shop: str, base_url: str | None = None, pipeline_run_id: int | None = None
    ) -> int:

        def insert(conn: sqlite3.Connection) -> int:
            shop_id = self._upsert_shop(conn, shop, base_url)
            return conn.execute(
                "INSERT INTO crawl_runs (shop_id, pipeline_run_id, started_at, status) "
                "VALUES (?, ?, ?, 'running') RETURNING id",
                (shop_id, pipeline_run_id, _now()),
            ).fetchone()[0]

        return self._start_run("crawl_runs", insert)

    def finish_crawl_run(
        self, crawl_run_id: int, status: str, error: str | None = None, capped: bool = False
    ) -> None:
        """*capped*: a listing stopped at its page cap with more to read."""
        with write_transaction(self.db) as conn:
            conn.execute(
                "UPDATE crawl_runs SET status = ?, finished_at = ?, error = ?, capped = ?, "
                "errors = (SELECT COUNT(*) FROM crawl_errors WHERE crawl_run_id = ?) WHERE id = ?",
                (status, _now(), error, int(capped), crawl_run_id, crawl_run_id),
            )
        self.run_locks.release("crawl_runs", crawl_run_id)

    def record_crawl_error(
        self,
        crawl_run_id: int,
        message: str,
        url: str | None = None,
        step: str | None = None,
        screenshot_path: str | None = None,
        html_path: str | None = None,
    ) -> None:
        with write_transaction(self.db) as conn:
            conn.execute(
                "INSERT INTO crawl_errors (crawl_run_id, url, step, message, screenshot_path, "
                "html_path, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    crawl_run_id,
                    url,
                    step,
                    message,
                    stored_path(self.home, screenshot_path),
                    stored_path(self.home, html_path),
                    _now(),
                ),
            )

    def crawl_run(self, crawl_run_id: int) -> dict:
        rows = list(
            self.db.query(
                "SELECT crawl_runs.*, shops.name AS shop FROM crawl_runs "
                "JOIN shops ON shops.id = crawl_runs.shop_id WHERE crawl_runs.id = ?",
                [crawl_run_id],
            )
        )
        return rows[0]

    # -- pipeline runs ----------------------------------------------------------------

    def start_pipeline_run(self, kind: str) -> int:
        return self._start_run(
            "pipeline_runs",
            lambda conn: conn.execute(
                "INSERT INTO pipeline_runs (kind, started_at, status) VALUES (?, ?, 'running') "
                "RETURNING id",
                (kind, _now()),
            ).fetchone()[0],
        )

    def finish_pipeline_run(
        self, run_id: int, status: str, counts: dict | None = None, error: str | None = None
    ) -> None:
        with write_transaction(self.db) as conn:
            conn.execute(
                "UPDATE pipeline_runs SET status = ?, finished_at = ?, counts_json = ?, error = ? "
                "WHERE id = ?",
                (status, _now(), json.dumps(counts or {}, sort_keys=True), error, run_id),
            )
        self.run_locks.release("pipeline_runs", run_id)

    def crawl_run_changes(self, crawl_run_id: int) -> dict:
        """What a crawl run brought: offers seen for the first time, and prices that differ
        from the offer's previous good price."""
        row = next(
            self.db.query(
                """
            SELECT
              SUM(NOT EXISTS (SELECT 1 FROM price_observations prev
                              WHERE prev.offer_id = po.offer_id AND prev.id < po.id)) AS new,
              SUM(po.price IS NOT NULL AND po.price != (
                    SELECT prev.price FROM price_observations prev
                    WHERE prev.offer_id = po.offer_id AND prev.id < po.id
                      AND prev.price IS NOT NULL
                    ORDER BY prev.id DESC LIMIT 1)) AS changed
            FROM price_observations po WHERE po.crawl_run_id = ?
            """,
                [crawl_run_id],
            )
        )
        return {"new": row["new"] or 0, "price_changes": row["changed"] or 0}

    def mark_interrupted(self) -> list[str]:
        """Runs left 'running' by a process that is gone become 'interrupted'; runs that a
        live process (`pricelens run`, `crawl`, `demo`) is doing are left alone, told apart
        by their run locks (db/run_locks.py). Returns the kinds of the pipeline runs marked
        ('pipeline', 'crawl:NAME', 'manual', ...), oldest first."""
        with write_transaction(self.db) as conn:
            now = _now()
            dead = {}
            kinds = []
            for table in ("pipeline_runs", "crawl_runs"):
                kind = "kind" if table == "pipeline_runs" else "NULL"
                running = conn.execute(
                    f"SELECT id, {kind} FROM {table} WHERE status = 'running' ORDER BY id"
                )
                dead[table] = []
                for run_id, run_kind in running.fetchall():
                    if not self.run_locks.is_alive(table, run_id):
                        dead[table].append((now, run_id))
                        if table == "pipeline_runs":
                            kinds.append(run_kind)
            conn.executemany(
                "UPDATE pipeline_runs SET status = 'interrupted', finished_at = ?, "
                "error = COALESCE(error, 'the process ended during the run') WHERE id = ?",
                dead["pipeline_runs"],
            )
            conn.executemany(
                "UPDATE crawl_runs SET status = 'interrupted', finished_at = ? WHERE id = ?",
                dead["crawl_runs"],
            )
            return kinds

    def pipeline_runs(self, limit: int = 20) -> list[dict]:
        return list(
            self.db.query(
                "SELECT id, kind, status, started_at, finished_at, "
                "ROUND((julianday(finished_at) - julianday(started_at)) * 86400, 1) AS seconds, "
                "counts_json, error FROM pipeline_runs ORDER BY id DESC LIMIT ?",
                [limit],
            )
        )
