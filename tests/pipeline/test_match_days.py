"""Crawling the demo mall on day 1 and again on day 2 (real mall, real Chromium): groups keep
their ids, only the new offers are matched, and the report shows the mall's price changes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from classifier.training import TrainConfig
from db.store import Store
from demo.mall import MallSettings
from pipeline.cli import cli
from pipeline.demo import run_demo
from pipeline.settings import Home

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SEED, PRODUCTS = 21, 40


def crawl_and_match(home: Home, day: int, shops: tuple[str, ...]) -> dict:
    """`pricelens demo`'s pipeline (crawl, train once, classify, match) over *shops* of the
    mall on *day*; returns the mall's prices by (shop, sku) from its answer key."""
    result = run_demo(
        home,
        MallSettings(seed=SEED, products=PRODUCTS, day=day, shops=shops),
        TrainConfig(epochs=1, train_limit=3000),
    )
    assert {c.status for c in result.crawls} == {"ok"}, result.crawls
    key = json.loads(home.answer_key.read_text(encoding="utf-8"))
    return {
        (shop, offer["sku"]): offer["price"]
        for shop, data in key["shops"].items()
        for offer in data["offers"]
    }


def groups_of(home: Home) -> dict[tuple[str, str], int]:
    with Store(home.database) as store:
        return {
            (r["shop"], r["sku"]): r["group_id"]
            for r in store.db.query(
                "SELECT s.name AS shop, o.sku, gm.group_id FROM group_members gm "
                "JOIN offers o ON o.id = gm.offer_id JOIN shops s ON s.id = o.shop_id"
            )
        }


def test_day_two_keeps_group_ids_and_reports_the_price_changes(tmp_path):
    home = Home(tmp_path / "home").create()
    day1 = crawl_and_match(home, 1, ("classic", "spa", "scroll"))
    groups1 = groups_of(home)
    assert len(groups1) == len(day1)
    day2 = crawl_and_match(home, 2, ("classic", "spa", "scroll", "menu"))
    groups2 = groups_of(home)
    new = {k for k in day2 if k not in day1}
    assert new and {shop for shop, _ in new} == {"menu"}
    # every day-1 product keeps its group id (and its members), whoever joined it
    assert {k: groups2[k] for k in groups1} == groups1
    joined = {groups2[k] for k in new} & set(groups1.values())
    assert joined, "no new menu offer joined an existing product"

    again = CliRunner().invoke(cli, ["--home", str(home.root), "match", "--format", "json"])
    assert json.loads(again.output)["rematched_offers"] == 0  # nothing new, nothing changed
    assert groups_of(home) == groups2
    result = CliRunner().invoke(
        cli, ["--home", str(home.root), "report", "--format", "json", "--limit", "0"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    with Store(home.database) as store:
        sku_of = dict(store.db.execute("SELECT id, sku FROM offers").fetchall())
    changed = 0
    for row in rows:
        key = (row["shop"], sku_of[row["offer_id"]])
        assert row["price"] == day2[key], row
        if key in day1:
            assert row["previous_price"] == day1[key], row
            assert row["change"] == day2[key] - day1[key], row
            changed += row["change"] != 0
        else:
            assert row["previous_price"] is None and row["change"] is None
    mall_changes = sum(
        day2[k] != day1[k] for k in day1 if groups2[k] in {r["group_id"] for r in rows}
    )
    assert changed == mall_changes > 0
