"""Navigation errors in a full crawl: chromedriver raises WebDriverException for a page whose
name does not resolve, whose connection is refused or when the network is gone
(net::ERR_NAME_NOT_RESOLVED, ERR_CONNECTION_REFUSED, ERR_INTERNET_DISCONNECTED). That page
is recorded with its URL, the crawl goes on with the others, and the browser, which is fine,
is not restarted."""

from __future__ import annotations

import socket
import sqlite3
from dataclasses import replace

import pytest

from crawler.browser import BrowserSession, navigation_error, session_is_dead
from crawler.engine import crawl_shop
from crawler.robots import RobotsPolicy
from crawler.spec import load_builtin_spec
from demo.catalog import Catalog
from demo.classic import ClassicShop
from demo.faults import FaultPlan
from demo.scroll import ScrollShop
from demo.shop import Response
from pipeline.crawling import apply_overrides
from tests.reliability.conftest import NOTHING_LOST, QUICK, crawl_served, lost_or_doubled, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]

UNRESOLVABLE = "http://pricelens-test.invalid/products"  # .invalid never resolves (RFC 6761)
ATTEMPTS = load_builtin_spec("classic").politeness.retries + 1  # QUICK keeps retries


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def catalog() -> Catalog:
    return Catalog(4, 45)


class DeadEndShop(ClassicShop):
    """Classic, except that *paths* answer with a redirect to *target*, where the browser's
    navigation fails in the network (the shop's own URL is what the crawler asks for)."""

    target = ""
    paths: frozenset[tuple[str, str | None]] = frozenset()

    def route(self, path, query, cookies):
        if (path, query.get("page")) in self.paths:
            return Response(302, "text/plain", b"moved", (("Location", self.target),))
        return super().route(path, query, cookies)


TARGETS = {
    "name-not-resolved": (lambda: UNRESOLVABLE, "net::ERR_NAME_NOT_RESOLVED"),
    "connection-refused": (
        lambda: f"http://127.0.0.1:{closed_port()}/products",
        "net::ERR_CONNECTION_REFUSED",
    ),
}


def crawl_errors(database, run_id: int) -> list[tuple[str, str, str]]:
    db = sqlite3.connect(database)
    return db.execute(
        "SELECT step, url, message FROM crawl_errors WHERE crawl_run_id = ? ORDER BY id",
        (run_id,),
    ).fetchall()


@pytest.mark.parametrize("kind", TARGETS)
def test_a_start_page_that_cannot_be_reached_is_recorded_and_the_crawl_goes_on(tmp_path, kind):
    target, code = TARGETS[kind]
    shop = DeadEndShop(catalog(), 0, FaultPlan(), False)
    shop.target, shop.paths = target(), frozenset({("/gone", None)})
    home, result, base_url = crawl_served(
        tmp_path, shop, edit=lambda spec: replace(spec, start_urls=("/gone", *spec.start_urls))
    )
    assert result.status == "partial", result  # not "failed": the shop went on
    assert result.pages == shop.page_count and result.offers == len(shop.offers), result
    gone = f"{base_url}/gone"
    # one row, the page's own: no "session" row, so the browser was not restarted
    ((step, url, message),) = crawl_errors(home.database, result.crawl_run_id)
    assert (step, url) == ("goto", gone), message
    assert f"network error ({code})" in message and gone in message, message
    assert f"(after {ATTEMPTS} attempts)" in message  # retried like any network error
    assert lost_or_doubled(home.database) == NOTHING_LOST


def test_a_listing_page_that_cannot_be_reached_keeps_the_pages_before_it(tmp_path):
    shop = DeadEndShop(catalog(), 0, FaultPlan(), False)
    assert shop.page_count == 2
    shop.target, shop.paths = UNRESOLVABLE, frozenset({("/products", "2")})
    home, result, base_url = crawl_served(tmp_path, shop)
    assert result.status == "partial" and result.pages == 1, result
    assert result.offers == len(shop.page(1)), result
    ((step, url, message),) = crawl_errors(home.database, result.crawl_run_id)
    assert (step, url) == ("next_page", f"{base_url}/products?page=2"), message
    assert "net::ERR_NAME_NOT_RESOLVED" in message, message
    assert lost_or_doubled(home.database) == NOTHING_LOST


class DeadEndDetailShop(ScrollShop):
    """The scroll shop (detail pages), one of whose detail pages redirects to *target*."""

    target = UNRESOLVABLE
    dead_sku = ""

    def route(self, path, query, cookies):
        if path == self.detail_path(self.dead_sku):
            return Response(302, "text/plain", b"moved", (("Location", self.target),))
        return super().route(path, query, cookies)


def test_a_detail_page_that_cannot_be_reached_fails_alone(tmp_path):
    shop = DeadEndDetailShop(catalog(), 0, FaultPlan(), False)
    shop.dead_sku = shop.offers[1].sku
    home, result, base_url = crawl_served(tmp_path, shop, "scroll")
    dead = base_url + shop.detail_path(shop.dead_sku)
    assert result.status == "partial" and result.offers == len(shop.offers), result
    ((step, url, message),) = crawl_errors(home.database, result.crawl_run_id)
    assert (step, url) == ("open_detail", dead), message
    assert "net::ERR_NAME_NOT_RESOLVED" in message, message
    db = sqlite3.connect(home.database)
    prices = dict(db.execute("SELECT sku, price FROM offers"))
    expected = {o.sku: o.price for o in shop.offers if o.sku != shop.dead_sku}
    assert {sku: price for sku, price in prices.items() if sku != shop.dead_sku} == expected
    assert prices[shop.dead_sku] is None  # kept as the listing showed it: no price there
    assert lost_or_doubled(home.database) == NOTHING_LOST


def _network(driver, online: bool) -> None:
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": not online, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )


class _NetworkGoesAt(RobotsPolicy):
    """The real robots check, which also takes the browser offline just before the first
    request for *url*: the robots check is the last thing before a page load."""

    def __init__(self, url: str):
        super().__init__()
        self.url, self.driver = url, None

    def why_not(self, url: str, timeout: float | None = None) -> str | None:
        if url == self.url and self.driver is not None:
            _network(self.driver, online=False)
            self.driver = None  # once
        return super().why_not(url, timeout)


def test_a_network_gone_for_one_page_is_not_a_dead_browser(tmp_path):
    """net::ERR_INTERNET_DISCONNECTED says "disconnected", as a dead chromedriver does: the
    page fails, the browser stays. The network goes away as page 2 is opened (Chrome's own
    offline mode) and comes back once the failure is recorded."""
    shop = ClassicShop(catalog(), 0, FaultPlan(), False)
    server = serve(shop)
    pages, failures = [], []
    try:
        classic = load_builtin_spec("classic").with_base_url(server.base_url)
        spec = replace(
            apply_overrides(classic, QUICK), start_urls=("/products?page=1", "/products?page=2")
        )
        robots = _NetworkGoesAt(f"{server.base_url}/products?page=2")
        with BrowserSession() as session:
            robots.driver = session.driver

            def on_failure(failure):
                failures.append(failure)
                _network(session.driver, online=True)

            summary = crawl_shop(
                spec, session.driver, tmp_path, pages.append, on_failure, robots, session
            )
            starts = session.starts
    finally:
        server.stop()
    assert starts == 1  # never restarted
    assert [(f.step, f.url) for f in failures] == [
        ("next_page", f"{server.base_url}/products?page=2")
    ]
    assert "net::ERR_INTERNET_DISCONNECTED" in failures[0].message, failures[0].message
    found = {o.sku for page in pages for o in page.offers}
    assert found == {o.sku for o in shop.offers}  # page 2 came from the next start URL
    assert summary.failures == 1 and summary.offers == len(found)


def test_chromedrivers_navigation_errors_are_told_from_a_dead_session(tmp_path):
    """The exceptions themselves, from the real browser: a page error names its code and is
    not a dead session."""
    with BrowserSession() as session:
        caught = []
        for url in (UNRESOLVABLE, f"http://127.0.0.1:{closed_port()}/"):
            with pytest.raises(Exception) as error:
                session.driver.get(url)
            caught.append(error.value)
        _network(session.driver, online=False)
        with pytest.raises(Exception) as error:
            session.driver.get(f"http://127.0.0.1:{closed_port()}/")
        caught.append(error.value)
        _network(session.driver, online=True)
    codes = [navigation_error(exc) for exc in caught]
    assert codes == [
        "net::ERR_NAME_NOT_RESOLVED",
        "net::ERR_CONNECTION_REFUSED",
        "net::ERR_INTERNET_DISCONNECTED",
    ]
    assert not any(session_is_dead(exc) for exc in caught)
