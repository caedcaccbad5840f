"""Crawling the demo mall on day 1 and again on day 2 (real mall, real Chromium): groups keep
their ids, only the new offers are matched, and the report shows the mall's price changes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from classifier.training import TrainConfig
from crawler.spec import load_builtin_spec
from db.store import Store
from demo.mall import MallSettings, run_mall
from pipeline.classifying import classify_images, ensure_model
from pipeline.cli import cli
from pipeline.crawling import crawl_shops
from pipeline.matching import match_stored_offers
from pipeline.settings import Home

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SEED, PRODUCTS = 21, 40


def crawl_and_match(home: Home, day: int, shops: tuple[str, ...]):
    """Crawl *shops* of the mall on *day*, classify, match; returns the mall's prices by
    (shop, sku) and the match result."""
    with run_mall(MallSettings(seed=SEED, products=PRODUCTS, day=day, shops=shops)) as mall:
        specs = [load_builtin_spec(s).with_base_url(mall.base_urls[s]) for s in shops]
        results = crawl_shops(home, specs)
        key = mall.answer_key()
    assert {r.status for r in results} == {"ok"}, results
    prices = {
        (shop, offer["sku"]): offer["price"]
        for shop, data in key["shops"].items()
        for offer in data["offers"]
    }
    with Store(home.database) as store:
        model = ensure_model(store, home, TrainConfig(epochs=1, train_limit=3000))
        classify_images(store, model, "cpu")
        return prices, match_stored_offers(store, model.id)


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
    day1, first = crawl_and_match(home, 1, ("classic", "spa", "scroll"))
    groups1 = groups_of(home)
    assert first.rematched == len(day1) == len(groups1)
    day2, second = crawl_and_match(home, 2, ("classic", "spa", "scroll", "menu"))
    groups2 = groups_of(home)
    new = {k for k in day2 if k not in day1}
    assert new and {shop for shop, _ in new} == {"menu"}
    assert second.rematched == len(new)  # only the new shop's offers were matched
    # every day-1 product keeps its group id (and its members), whoever joined it
    assert {k: groups2[k] for k in groups1} == groups1
    joined = {groups2[k] for k in new} & set(groups1.values())
    assert joined, "no new menu offer joined an existing product"

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
