"""`pricelens demo` when no shop could be crawled: exit 1 naming why, before any training."""

from __future__ import annotations

import sqlite3

from click.testing import CliRunner

from pipeline.cli import cli


def test_a_demo_whose_every_crawl_failed_exits_1_and_trains_nothing(tmp_path):
    nowhere = "http://127.0.0.1:1/"  # port 1: refused at once
    result = CliRunner().invoke(
        cli,
        ["--home", str(tmp_path), "--no-progress", "demo", "--products", "20", "--remote", nowhere],
    )
    assert result.exit_code == 1, result.output
    assert "every shop failed" in result.output and nowhere in result.output
    assert "nothing was trained" in result.output
    assert "Price comparison" not in result.output  # no older crawls' table shown as news
    with sqlite3.connect(tmp_path / "pricelens.db") as db:
        assert db.execute("SELECT kind, status FROM pipeline_runs").fetchall() == [
            ("demo", "failed")
        ]
        assert db.execute("SELECT COUNT(*) FROM models").fetchone() == (0,)
        statuses = db.execute("SELECT DISTINCT status FROM crawl_runs").fetchall()
    assert statuses == [("failed",)]
