"""Network boundaries in a full crawl: photos on a private address other than the shop's are
never fetched, and robots.txt (one that hangs, one redirected to a private address, one with
wildcards) is honoured."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace

import pytest

from crawler.spec import load_builtin_spec
from demo.catalog import Catalog
from demo.classic import ClassicShop
from demo.faults import FaultPlan
from demo.shop import Response
from pipeline.crawling import crawl_shops
from pipeline.settings import Home
from tests.reliability.conftest import NOTHING_LOST, QUICK, crawl_served, lost_or_doubled, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def catalog() -> Catalog:
    return Catalog(4, 45)


class CountingShop(ClassicShop):
    """Classic, keeping every path (and ?page=) it is asked for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.requests: list[tuple[str, str | None]] = []  # list.append is thread-safe

    def handle(self, path, query, cookies=None):
        self.requests.append((path, query.get("page")))
        return super().handle(path, query, cookies)


class LazyPhotoShop(ClassicShop):
    """Classic with lazy-loaded photos (`data-src`, read first by the classic spec) unless
    *lazy* is off (a plain `<img src>`, which a browser showing images would fetch itself).
    The photos live on *photos*, another server: linked directly, or through a redirect from
    the shop's own /images/ when *redirect* is set."""

    photos = ""
    redirect = False
    lazy = True

    def photo_path(self, sku):
        path = super().photo_path(sku)
        return path if self.redirect else self.photos + path

    def handle(self, path, query, cookies=None):
        if self.redirect and path.startswith("/images/"):
            return Response(302, "text/plain", b"moved", (("Location", self.photos + path),))
        response = super().handle(path, query, cookies)
        if not self.lazy or not response.content_type.startswith("text/html"):
            return response
        body = response.body.replace(b'<img class="thumb" src=', b'<img class="thumb" data-src=')
        return Response(response.status, response.content_type, body, response.headers)


@pytest.mark.parametrize(
    "redirect, lazy",
    [(False, True), (True, True), (False, False)],
    ids=["linked", "redirected", "img-src-the-browser-does-not-load"],
)
def test_photos_on_another_private_host_are_refused_and_the_offers_kept(tmp_path, redirect, lazy):
    # 127.0.0.2 is loopback like the shop (Linux routes all of 127/8 to lo) but another host:
    # to the crawler it is what 10.0.0.5 or 169.254.169.254 would be on a real network
    photo_host = CountingShop(catalog(), 0, FaultPlan(), False)
    photos = serve(photo_host, "127.0.0.2")
    shop = LazyPhotoShop(catalog(), 0, FaultPlan(), False)
    shop.photos, shop.redirect, shop.lazy = photos.base_url, redirect, lazy
    home, result, base_url = crawl_served(tmp_path, shop, also=[photos])
    truth = {o["sku"]: o for o in shop.answer_key(base_url)}
    assert photo_host.requests == []  # never contacted, not even once
    assert result.status == "ok" and result.failures == 0, result  # a photo is not a page
    db = sqlite3.connect(home.database)
    stored = {
        sku: (price, sha)
        for sku, price, sha in db.execute("SELECT sku, price, image_sha256 FROM offers")
    }
    assert stored == {sku: (offer["price"], None) for sku, offer in truth.items()}
    assert db.execute("SELECT COUNT(*) FROM images").fetchone() == (0,)
    refusals = [
        message
        for step, message in db.execute("SELECT step, message FROM crawl_errors")
        if step == "extract"
    ]
    assert len(refusals) == len(truth), refusals  # one per photo, each named
    for sku in truth:
        path = ClassicShop.photo_path(shop, sku)
        (message,) = [m for m in refusals if path in m]
        assert "private address 127.0.0.2 (loopback)" in message, message
        first_url = base_url + path if redirect else shop.photos + path
        hop = f": redirected to {shop.photos + path}" if redirect else ""
        assert message.startswith(f"{first_url}{hop}: private address"), message
    assert lost_or_doubled(home.database) == NOTHING_LOST


class HangingRobotsShop(CountingShop):
    """A shop whose robots.txt never answers (until the test lets it go)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.release = threading.Event()

    def handle(self, path, query, cookies=None):
        if path == "/robots.txt":
            self.requests.append((path, None))
            self.release.wait()  # not a sleep: the server hangs until the test is over
            return Response(200, "text/plain", b"User-agent: *\nAllow: /\n")
        return super().handle(path, query, cookies)


def test_a_hanging_robots_txt_means_disallow_and_the_next_shop_is_crawled(tmp_path):
    hanging = HangingRobotsShop(catalog(), 0, FaultPlan(), False)
    neighbour = CountingShop(catalog(), 0, FaultPlan(), False)
    servers = [serve(hanging), serve(neighbour)]
    try:
        home = Home(tmp_path / "home").create()
        classic = load_builtin_spec("classic")
        specs = [
            classic.with_base_url(servers[0].base_url),
            replace(classic, name="neighbour").with_base_url(servers[1].base_url),
        ]
        # the shop's 5 s, cut short: the outcome of a time-out is the same however long it is
        first, second = crawl_shops(home, specs, replace(QUICK, robots_timeout=0.5))
    finally:
        hanging.release.set()
        for server in servers:
            server.stop()
    robots = f"{servers[0].base_url}/robots.txt"
    assert first.status == "failed" and first.pages == 0 and first.offers == 0, first
    assert f"{robots} timed out after 0.5 s" in first.error, first.error
    assert "disallowed" in first.error, first.error
    assert {path for path, _ in hanging.requests} == {"/robots.txt"}  # no page was asked for
    assert second.status == "ok" and second.offers == len(neighbour.offers), second
    db = sqlite3.connect(home.database)
    by_shop = dict(
        db.execute(
            "SELECT s.name, COUNT(o.id) FROM shops s LEFT JOIN offers o ON o.shop_id = s.id "
            "GROUP BY s.name"
        )
    )
    assert by_shop == {"classic": 0, "neighbour": len(neighbour.offers)}
    ((step, message),) = db.execute(
        "SELECT step, message FROM crawl_errors WHERE crawl_run_id = ?", (first.crawl_run_id,)
    )
    assert step == "robots" and robots in message, message
    assert lost_or_doubled(home.database) == NOTHING_LOST


class RedirectedRobotsShop(CountingShop):
    """A shop whose robots.txt redirects to *target*."""

    target = ""

    def handle(self, path, query, cookies=None):
        if path == "/robots.txt":
            self.requests.append((path, None))
            return Response(302, "text/plain", b"moved", (("Location", self.target),))
        return super().handle(path, query, cookies)


def test_a_robots_txt_redirected_to_another_private_host_means_disallow(tmp_path):
    elsewhere = CountingShop(catalog(), 0, FaultPlan(), False)
    other = serve(elsewhere, "127.0.0.2")  # loopback, but not the shop's host
    shop = RedirectedRobotsShop(catalog(), 0, FaultPlan(), False)
    shop.target = f"{other.base_url}/robots.txt"
    home, result, base_url = crawl_served(tmp_path, shop, also=[other])
    assert elsewhere.requests == []  # never contacted
    assert shop.requests == [("/robots.txt", None)]  # asked once; no page was
    assert result.status == "failed" and result.pages == 0, result
    assert f"its redirect to {shop.target} is refused" in result.error, result.error
    assert "private address 127.0.0.2 (loopback)" in result.error, result.error
    assert "disallowed" in result.error, result.error
    db = sqlite3.connect(home.database)
    ((step, url),) = db.execute("SELECT step, url FROM crawl_errors")
    assert (step, url) == ("robots", f"{base_url}/products?page=1")
    assert lost_or_doubled(home.database) == NOTHING_LOST


class WildcardRobotsShop(CountingShop):
    robots = b"User-agent: *\nDisallow: /*?page=2$\n"

    def handle(self, path, query, cookies=None):
        if path == "/robots.txt":
            return Response(200, "text/plain", self.robots)
        return super().handle(path, query, cookies)


def test_a_wildcard_disallow_is_honoured_in_a_full_crawl(tmp_path):
    shop = WildcardRobotsShop(catalog(), 0, FaultPlan(), False)
    assert shop.page_count == 2  # page 1 is allowed, page 2 is not
    home, result, base_url = crawl_served(tmp_path, shop)
    pages = [page for path, page in shop.requests if path == "/products"]
    assert pages and set(pages) == {"1"}, shop.requests  # page 2 was never fetched
    assert result.status == "partial" and result.pages == 1, result
    assert result.offers == len(shop.page(1)), result
    db = sqlite3.connect(home.database)
    ((step, url, message),) = db.execute("SELECT step, url, message FROM crawl_errors")
    assert (step, url) == ("robots", f"{base_url}/products?page=2")
    assert f"disallowed for 'pricelens' by {base_url}/robots.txt" in message, message
    assert lost_or_doubled(home.database) == NOTHING_LOST
