"""Offers a shop no longer lists leave the report once a complete crawl of the shop has gone
by without them; a partial, failed or page-capped (`--max-pages`) crawl hides nothing."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from tests.pipeline.report_fixture import LISTINGS, build_store, crawl_once

TEE, BOOTS = "Slim Cotton Tee Black M", "Leather Ankle Boots Brown"
CLASSIC_TEE, CLASSIC_BOOTS = LISTINGS[0], LISTINGS[3]  # c-1 11,900 (cheapest), c-2 59,000


def invoke(home: Path, *args: str):
    return CliRunner().invoke(cli, ["--home", str(home), *args])


def report(home: Path, *args: str) -> dict[str, dict]:
    """title -> {"shops": {shop: price}, "cheapest": shop, "savings": amount}."""
    result = invoke(home, "report", "--format", "json", "--min-shops", "1", *args)
    assert result.exit_code == 0, result.output
    found: dict[str, dict] = {}
    for row in json.loads(result.output):
        product = found.setdefault(row["title"], {"shops": {}})
        product["shops"][row["shop"]] = row["price"]
        product["cheapest"], product["savings"] = row["cheapest_shop"], row["savings"]
    return found


@pytest.fixture
def home(tmp_path):
    ids = build_store(tmp_path / "pricelens.db")  # every shop crawled ok on day 1 and day 2
    assert invoke(tmp_path, "match").exit_code == 0
    return tmp_path, ids


def test_first_crawls_show_every_offer(home):
    shown = report(home[0])
    assert shown[TEE] == {
        "shops": {"classic": 11900, "menu": 11000, "spa": 13500},
        "cheapest": "classic",
        "savings": 1600,
    }
    assert set(shown[BOOTS]["shops"]) == {"classic", "spa"}


def test_an_offer_a_complete_crawl_did_not_find_leaves_the_report(home):
    path, ids = home
    crawl_once(path / "pricelens.db", "classic", [CLASSIC_BOOTS], day=3)  # the tee is gone
    shown = report(path)
    # classic's 11,900 is no longer named the cheapest: menu's is sold out, so spa's 13,500
    assert shown[TEE] == {"shops": {"menu": 11000, "spa": 13500}, "cheapest": "spa", "savings": 0}
    assert shown[BOOTS]["shops"] == {"classic": 59000, "spa": 52000}
    compared = report(path, "--min-shops", "2")
    assert set(compared) == {TEE, BOOTS}
    # the same in every format, and the offer keeps its group and its history
    csv_text = invoke(path, "report", "--format", "csv").output
    assert f"http://classic.test/p/{CLASSIC_TEE.sku}" not in csv_text
    html = invoke(path, "report", "--format", "html").output
    assert "classic.test/p/c-1" not in html and "classic.test/p/c-2" in html
    history = invoke(path, "history", f"o{ids['c-1']}", "--format", "json")
    assert history.exit_code == 0 and len(json.loads(history.output)) == 2


def test_an_offer_listed_again_is_back(home):
    path, _ = home
    crawl_once(path / "pricelens.db", "classic", [CLASSIC_BOOTS], day=3)
    crawl_once(path / "pricelens.db", "classic", [CLASSIC_TEE, CLASSIC_BOOTS], day=4)
    assert report(path)[TEE]["cheapest"] == "classic"


@pytest.mark.parametrize("status", ["partial", "failed", "interrupted", "stopped", "running"])
def test_a_crawl_that_did_not_end_ok_hides_nothing(home, status):
    path, _ = home
    crawl_once(path / "pricelens.db", "classic", [CLASSIC_BOOTS], day=3, status=status)
    shown = report(path)
    assert shown[TEE]["shops"]["classic"] == 11900 and shown[TEE]["cheapest"] == "classic"


def test_a_crawl_of_another_shop_hides_nothing(home):
    path, _ = home
    crawl_once(path / "pricelens.db", "spa", LISTINGS[1:2], day=3)  # spa without its boots
    shown = report(path)
    assert shown[TEE]["shops"]["classic"] == 11900
    assert shown[BOOTS]["shops"] == {"classic": 59000}  # spa's boots gone, classic's stay


def test_a_crawl_capped_by_max_pages_hides_only_what_it_walked_past(home):
    path, _ = home
    db = path / "pricelens.db"
    crawl_once(db, "classic", [CLASSIC_TEE, CLASSIC_BOOTS], day=3, pages=2)  # the tee on page 1
    # `pricelens crawl --max-pages 1` ends ok with the first page only: the boots on page 2
    # were not looked for, so they stay
    crawl_once(db, "classic", [CLASSIC_TEE], day=4, pages=1)
    assert report(path)[BOOTS]["shops"] == {"classic": 59000, "spa": 52000}
    # a complete crawl (both pages again) without the boots hides them
    scarf = replace(CLASSIC_TEE, sku="c-9", title="Wool Scarf Grey", product=5, label="bag")
    crawl_once(db, "classic", [CLASSIC_TEE, scarf], day=5, pages=2)
    assert report(path)[BOOTS]["shops"] == {"spa": 52000}


def test_a_capped_crawl_of_a_listing_grown_a_page_hides_nothing(home):
    """The listing got longer: a crawl capped at as many pages as the last full one walks
    them all, yet the boots were pushed past its cap; they stay."""
    path, _ = home
    db = path / "pricelens.db"
    crawl_once(db, "classic", [CLASSIC_TEE, CLASSIC_BOOTS], day=3, pages=2)
    scarf = replace(CLASSIC_TEE, sku="c-9", title="Wool Scarf Grey", product=5, label="bag")
    crawl_once(db, "classic", [scarf, CLASSIC_TEE], day=4, pages=2, capped=True)
    assert report(path)[BOOTS]["shops"] == {"classic": 59000, "spa": 52000}


def test_hiding_goes_by_crawl_order_not_by_the_shops_clock(home):
    path, _ = home
    # the fixture's offers were scraped in 2024 while their runs started today: the runs that
    # saw them, not the clocks, decide
    crawl_once(path / "pricelens.db", "classic", [CLASSIC_BOOTS], day=-400)
    assert "classic" not in report(path)[TEE]["shops"]
