"""A category menu shared among sessions: with `--sessions 2` and a shop whose concurrency
allows two, a helper walks some categories in its own browser while the shop's session walks
the others. Every offer is stored once, under the shop's one crawl run, and no listing page
is read twice, even where two categories list the same products."""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlencode

import pytest

import crawler
from crawler.spec import load_builtin_spec, load_spec
from demo.catalog import Catalog
from demo.menu import CATEGORIES, MenuShop
from demo.server import ShopServer
from demo.shop import NOT_FOUND
from pipeline.crawling import CrawlOptions, crawl_shops
from pipeline.settings import Home
from tests.reliability.conftest import NOTHING_LOST, lost_or_doubled

pytestmark = pytest.mark.browser

FIRST_LABEL, SECOND_LABEL = list(CATEGORIES)[:2]
FIRST = f"/c/{CATEGORIES[FIRST_LABEL][0]}"


class GatedMenu(MenuShop):
    """The menu shop whose first category holds its first visitor until some other category
    is asked for (only another session can ask, the first being held), and whose second
    category lists the first's products too."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked: list[str] = []
        self.other_asked = threading.Event()
        self.held_in_vain = False

    def handle(self, path, query, cookies=None):
        self.asked.append(path + ("?" + urlencode(query) if query else ""))
        if path == FIRST and not query:
            self.held_in_vain = not self.other_asked.wait(30)
        elif path.startswith("/c/"):
            self.other_asked.set()
        return super().handle(path, query, cookies)

    def in_category(self, label):
        offers = super().in_category(label)
        return super().in_category(FIRST_LABEL) + offers if label == SECOND_LABEL else offers


def crawl_in_two_sessions(shop: MenuShop, tmp_path, stop: threading.Event | None = None):
    """Crawl *shop* with two sessions, both allowed on it: (result, home, the shop's URL)."""
    server = ShopServer(shop).start()
    try:
        spec = load_builtin_spec("menu").with_base_url(server.base_url)
        spec = replace(spec, politeness=replace(spec.politeness, concurrency=2))
        home = Home(tmp_path / "home").create()
        options = CrawlOptions(sessions=2, backoff_seconds=0.05)
        (result,) = crawl_shops(home, [spec], options, stop=stop)
    finally:
        if isinstance(shop, GatedMenu):
            shop.other_asked.set()  # a page still held would hold the server's stop
        server.stop()
    return result, home, server.base_url


def test_a_helper_walks_categories_and_the_shops_session_stores_them_once(tmp_path):
    shop = GatedMenu(Catalog(11, 120))
    assert shop.in_category(FIRST_LABEL)  # the products listed twice
    result, home, base_url = crawl_in_two_sessions(shop, tmp_path)
    assert not shop.held_in_vain  # another session walked a category meanwhile
    assert (result.status, result.failures) == ("ok", 0), result.error
    assert result.offers == len(shop.offers)  # each once, though two categories list some
    listings = [p for p in shop.asked if p.startswith("/c/")]
    assert len(listings) == len(set(listings)) == result.pages  # every page read once
    assert shop.asked.count("/") == 1  # the menu read once; helpers open links by URL
    with sqlite3.connect(home.database) as db:
        stored = dict(db.execute("SELECT url, price FROM offers"))
        (runs,) = db.execute("SELECT COUNT(*) FROM crawl_runs").fetchone()
    assert stored == {o["url"]: o["price"] for o in shop.answer_key(base_url)}
    assert runs == 1 and lost_or_doubled(home.database) == NOTHING_LOST


class BrokenCategory(MenuShop):
    """The menu shop whose third category is gone (404)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked: list[str] = []

    def handle(self, path, query, cookies=None):
        self.asked.append(path)
        return NOT_FOUND if path == BROKEN else super().handle(path, query, cookies)


BROKEN = f"/c/{list(CATEGORIES.values())[2][0]}"


def test_a_shared_category_that_fails_is_recorded_once_and_not_walked_again(tmp_path):
    shop = BrokenCategory(Catalog(11, 120))
    result, home, base_url = crawl_in_two_sessions(shop, tmp_path)
    assert (result.status, result.failures) == ("partial", 1), result.error
    assert shop.asked.count(BROKEN) == 1
    with sqlite3.connect(home.database) as db:
        errors = [url for (url,) in db.execute("SELECT url FROM crawl_errors")]
        stored = {url for (url,) in db.execute("SELECT url FROM offers")}
    assert errors == [base_url + BROKEN]
    broken_label = list(CATEGORIES)[2]
    expected = {o["url"] for o in shop.answer_key(base_url)}
    lost = {base_url + shop.detail_path(o.sku) for o in shop.in_category(broken_label)}
    assert stored == expected - lost


class StoppingMenu(GatedMenu):
    """The gated menu shop that asks the crawl to stop when a second category is asked for:
    both sessions are then on a listing page of their own."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stop = threading.Event()

    def handle(self, path, query, cookies=None):
        if path.startswith("/c/") and path != FIRST:
            self.stop.set()
        return super().handle(path, query, cookies)


def test_a_stop_ends_the_helpers_walk_too_and_stores_what_both_sessions_read(tmp_path, caplog):
    shop = StoppingMenu(Catalog(11, 120))
    result, home, base_url = crawl_in_two_sessions(shop, tmp_path, shop.stop)
    assert result.status == "stopped", result.error
    assert not [r for r in caplog.records if r.levelname == "WARNING"]  # a stop is no failure
    key = {o["url"]: o for o in shop.answer_key(base_url)}
    with sqlite3.connect(home.database) as db:
        stored = dict(db.execute("SELECT url, price FROM offers"))
        (runs,) = db.execute("SELECT COUNT(*) FROM crawl_runs").fetchone()
    assert runs == 1 and len(stored) == result.offers
    assert all(key[url]["price"] == price for url, price in stored.items())
    # the page each session was on when asked to stop: the held first category's, the other's
    assert len({key[url]["category"] for url in stored}) == 2


def test_detail_pages_a_helper_renders_name_pricelens_too(tmp_path):
    """A helper walking a category renders its products' detail pages in a tab of its own,
    which must send our user agent as the shop's own session's tabs do."""
    text = (Path(crawler.__file__).parent / "shops" / "menu.toml").read_text()
    path = tmp_path / "menu.toml"
    path.write_text(text + '\n[detail]\nrender = true\n[detail.fields]\nprice = ".goods-price"\n')
    shop = GatedMenu(Catalog(11, 120))
    server = ShopServer(shop).start()
    try:
        spec = load_spec(path).with_base_url(server.base_url)
        home = Home(tmp_path / "home").create()
        (result,) = crawl_shops(home, [spec], CrawlOptions(sessions=2, backoff_seconds=0.05))
    finally:
        shop.other_asked.set()
        server.stop()
    assert not shop.held_in_vain and result.status == "ok", result.error
    details = {p: agent for p, agent in server.agents.items() if p.startswith("/goods/")}
    assert len(details) == len(shop.offers)
    assert all(agent and "pricelens" in agent for agent in details.values()), details


def test_browsers_are_recycled_within_the_listings_helpers_walk(tmp_path, caplog):
    """A helper's crawler recycles its browser on the way (it goes on in a fresh one, and
    the helper takes its next work there), and nothing is lost or doubled."""
    caplog.set_level(logging.INFO, logger="crawler.engine")
    shop = GatedMenu(Catalog(11, 240))
    server = ShopServer(shop).start()
    try:
        spec = load_builtin_spec("menu").with_base_url(server.base_url)
        home = Home(tmp_path / "home").create()
        options = CrawlOptions(sessions=2, backoff_seconds=0.05, recycle_after=2)
        (result,) = crawl_shops(home, [spec], options)
    finally:
        shop.other_asked.set()
        server.stop()
    assert not shop.held_in_vain
    assert (result.status, result.failures) == ("ok", 0), result.error
    recycled = [r for r in caplog.records if "recycling the browser" in r.getMessage()]
    assert len({r.threadName for r in recycled}) == 2, recycled  # the helper's session too
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    with sqlite3.connect(home.database) as db:
        stored = dict(db.execute("SELECT url, price FROM offers"))
    assert stored == {o["url"]: o["price"] for o in shop.answer_key(server.base_url)}
    assert lost_or_doubled(home.database) == NOTHING_LOST
