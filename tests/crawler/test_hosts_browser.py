"""The shop's host and pace in a real crawl (demo shops, real headless Chromium): a spec
without base_url still keeps the walk on its shop, and detail pages fetched unrendered keep
the Crawl-delay of the shop's robots.txt."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from crawler.browser import BrowserSession
from crawler.engine import crawl_shop
from crawler.robots import RobotsPolicy
from crawler.spec import load_builtin_spec
from crawler.unrendered import FETCH_SCRIPT
from demo.catalog import Catalog
from demo.classic import ClassicShop
from demo.scroll import ScrollShop
from demo.server import ShopServer
from demo.shop import DemoShop, Response

pytestmark = pytest.mark.browser


class Logged:
    """A demo shop's mixin: the paths it was asked for, and a robots.txt of the test's."""

    robots_txt = "User-agent: *\nAllow: /\n"

    def handle(self, path, query, cookies=None):
        self.asked.append(path)
        if path == "/robots.txt":
            return Response(200, "text/plain", self.robots_txt.encode())
        return super().handle(path, query, cookies)


class LeavingClassic(Logged, ClassicShop):
    """Classic whose page 1 "next" link leads to another host (*next_url*)."""

    next_url = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked: list[str] = []

    def _pagination(self, number: int, size: int) -> str:
        if number == 1 and self.next_url:
            return f'<nav class="pagination"><a class="next" href="{self.next_url}">다음</a></nav>'
        return super()._pagination(number, size)


class PacedScroll(Logged, ScrollShop):
    """Scroll (detail pages fetched unrendered) whose robots.txt sets a Crawl-delay."""

    robots_txt = "User-agent: *\nCrawl-delay: 0.01\n"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked: list[str] = []


@contextmanager
def serving(shop: DemoShop, host: str = "127.0.0.1") -> Iterator[ShopServer]:
    server = ShopServer(shop, 0, host).start()
    try:
        yield server
    finally:
        server.stop()


def crawl(spec, tmp_path, robots=None):
    pages, failures = [], []
    with BrowserSession() as session:
        crawl_shop(spec, session.driver, tmp_path / "images", pages.append, failures.append, robots)
    return pages, failures


def test_without_a_base_url_the_walk_stays_on_the_first_start_urls_host(tmp_path):
    """No base_url (its start URL is absolute): the "next" link to another host is refused,
    not opened, and the photos of the shop's own (loopback) host are still fetched."""
    shop, elsewhere = LeavingClassic(Catalog(11, 30)), LeavingClassic(Catalog(11, 30))
    with serving(elsewhere, "127.0.0.2") as other, serving(shop) as server:
        shop.next_url = f"{other.base_url}/products?page=2"
        spec = load_builtin_spec("classic")
        spec = replace(spec, base_url="", start_urls=(f"{server.base_url}/products?page=1",))
        pages, failures = crawl(spec, tmp_path)
    assert elsewhere.asked == []
    assert [f.step for f in failures] == ["next_page"]
    assert "leaves the shop's host 127.0.0.1:" in failures[0].message
    assert len(pages) == 1 and len(pages[0].offers) == len(shop.page(1))
    assert len(pages[0].images) == len({o.image_url for o in pages[0].offers})
    assert not pages[0].problems


def test_fetched_detail_pages_keep_the_crawl_delay_of_robots_txt(tmp_path, monkeypatch):
    """delay_seconds is 0, robots.txt asks for a Crawl-delay: each detail page is fetched in
    a call of its own, after its turn with the pacer, never several in one batch."""
    batches: list[int] = []
    real = WebDriver.execute_async_script

    def counting(driver, script, *args):
        if script == FETCH_SCRIPT:
            batches.append(len(args[0]))
        return real(driver, script, *args)

    monkeypatch.setattr(WebDriver, "execute_async_script", counting)
    shop = PacedScroll(Catalog(4, 12))
    with serving(shop) as server:
        spec = load_builtin_spec("scroll").with_base_url(server.base_url)
        assert spec.politeness.delay_seconds == 0 and spec.politeness.concurrency == 2
        pages, failures = crawl(spec, tmp_path, RobotsPolicy())
    assert failures == []
    details = [path for path in shop.asked if path.startswith("/item/")]
    assert len(details) == len(shop.offers) == sum(len(p.offers) for p in pages)
    assert batches and set(batches) == {1} and sum(batches) == len(details)
