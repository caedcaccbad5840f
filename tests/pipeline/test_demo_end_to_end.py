"""`pricelens demo` end to end on small settings: real mall, real Chromium, real training."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

from pipeline.cli import cli

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SMALL = ["demo", "--products", "40", "--train-limit", "4000", "--epochs", "2", "--limit", "0"]


def counts(db_path) -> dict:
    with sqlite3.connect(db_path) as conn:
        return {
            table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in (
                "offers",
                "price_observations",
                "models",
                "crawl_runs",
                "pipeline_runs",
                "predictions",
                "group_members",
            )
        }


@pytest.fixture(scope="module")
def two_demo_runs(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    runner = CliRunner()
    first = runner.invoke(cli, ["--home", str(home), *SMALL])
    after_first = counts(home / "pricelens.db")
    second = runner.invoke(cli, ["--home", str(home), *SMALL])
    return home, first, after_first, second, counts(home / "pricelens.db")


def test_first_run_crawls_trains_classifies_groups_and_prints_the_comparison(two_demo_runs):
    home, first, after, _, _ = two_demo_runs
    assert first.exit_code == 0, first.output
    assert "Price comparison" in first.output
    assert all(shop in first.output for shop in ("classic", "spa", "scroll", "menu"))
    assert "(trained)" in first.output
    assert after["models"] == 1 and after["crawl_runs"] == 4 and after["pipeline_runs"] == 1
    assert after["offers"] > 40 and after["price_observations"] == after["offers"]
    assert after["predictions"] == after["offers"]  # one photo each, all classified
    assert after["group_members"] == after["offers"]
    key = json.loads((home / "demo" / "answer-key.json").read_text())
    assert sum(len(s["offers"]) for s in key["shops"].values()) == after["offers"], first.output


def test_second_run_reuses_the_model_and_adds_one_observation_per_offer(two_demo_runs):
    home, _, after_first, second, after_second = two_demo_runs
    assert second.exit_code == 0, second.output
    assert "(reused)" in second.output and "0 new images classified" in second.output
    assert after_second["models"] == 1
    assert after_second["offers"] == after_first["offers"]  # new ports, same offers (by SKU)
    assert after_second["price_observations"] == 2 * after_first["offers"]
    with sqlite3.connect(home / "pricelens.db") as conn:
        per_offer = {
            n for (n,) in conn.execute("SELECT COUNT(*) FROM price_observations GROUP BY offer_id")
        }
    assert per_offer == {2}


def test_groups_match_the_answer_key(two_demo_runs):
    home, *_ = two_demo_runs
    result = CliRunner().invoke(
        cli,
        [
            "--home",
            str(home),
            "match",
            "--evaluate",
            str(home / "demo" / "answer-key.json"),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)
    assert scores["missing"] == 0
    assert scores["f1"] > 0.9, scores


def test_report_lists_the_compared_products_in_every_format(two_demo_runs):
    home, *_ = two_demo_runs
    runner = CliRunner()
    as_json = runner.invoke(
        cli, ["--home", str(home), "report", "--format", "json", "--limit", "0"]
    )
    rows = json.loads(as_json.output)
    assert rows and {"group_id", "title", "shop", "price", "cheapest", "url"} <= set(rows[0])
    by_group = {}
    for row in rows:
        by_group.setdefault(row["group_id"], []).append(row)
    for members in by_group.values():
        assert len({m["shop"] for m in members}) == len(members) >= 2
        cheapest = [m for m in members if m["cheapest"]]
        assert len(cheapest) == 1
        # the cheapest shop that has it in stock (any shop when none does)
        buyable = [m for m in members if m["in_stock"] is not False] or members
        assert cheapest[0]["price"] == min(m["price"] for m in buyable)
    as_csv = runner.invoke(cli, ["--home", str(home), "report", "--format", "csv"])
    assert as_csv.output.splitlines()[0].startswith('"group_id","title","category","shop","price"')
