"""A shop's [[setup]]: steps run once in each browser before its first page of the shop (here
the classic demo shop's "products per page" form), again in a recycled or restarted browser.
Each test has a browser of its own: the setup's cookie must not leak into other tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from urllib.parse import urlencode

import pytest

from crawler.browser import BrowserSession
from crawler.engine import crawl_shop
from crawler.robots import RobotsPolicy
from crawler.spec import Detail, Step, load_builtin_spec
from demo.catalog import Catalog
from demo.classic import ClassicShop
from demo.mall import MallSettings, run_mall
from demo.server import ShopServer
from demo.shop import NOT_FOUND, Response
from pipeline.crawling import CrawlOptions, crawl_shops
from pipeline.settings import Home

pytestmark = pytest.mark.browser

PER_PAGE = "48"


@pytest.fixture(scope="module")
def classic_mall():
    with run_mall(MallSettings(seed=11, products=200, shops=("classic",))) as running:
        yield running


def with_setup(mall, *setup: Step, **politeness):
    spec = load_builtin_spec("classic").with_base_url(mall.base_urls["classic"])
    return replace(spec, setup=setup, politeness=replace(spec.politeness, **politeness))


CHOOSE_48 = (
    Step("goto", url="/settings"),
    Step("select", "form.settings select[name=per_page]", PER_PAGE),
    Step("click", "form.settings button.save", navigates=True),
)


def crawl(spec, session, tmp_path, **options):
    pages, failures = [], []
    summary = crawl_shop(
        spec,
        session.driver,
        tmp_path / "images",
        pages.append,
        failures.append,
        session=session,
        **options,
    )
    return summary, pages, failures


def test_the_setup_applies_to_the_whole_walk_and_to_a_recycled_browser(classic_mall, tmp_path):
    """48 products a page instead of 24: half the pages. The browser is recycled every two
    loads, so later pages are only 48 long if each new browser ran the setup again."""
    shop = classic_mall.servers["classic"].shop
    with BrowserSession() as session:
        summary, pages, failures = crawl(
            with_setup(classic_mall, *CHOOSE_48), session, tmp_path, recycle_after=2
        )
        assert session.starts >= 3  # recycled at least twice
    assert failures == []
    assert summary.pages == shop.pages_of(int(PER_PAGE)) < shop.page_count
    assert [len(p.offers) for p in pages] == [len(shop.page(n, 48)) for n in (1, 2, 3)]
    truth = {o["url"]: o["price"] for o in classic_mall.answer_key()["shops"]["classic"]["offers"]}
    assert {o.url: o.price for p in pages for o in p.offers} == truth


def test_a_failing_setup_is_an_error_naming_its_step_and_is_tried_again(classic_mall, tmp_path):
    """No such option: each start URL fails at the setup (tried again for the second),
    naming the step, selector and URL; nothing is crawled at the wrong page size."""
    broken = (CHOOSE_48[0], Step("select", "select[name=per_page]", "1000"), CHOOSE_48[2])
    spec = replace(
        with_setup(classic_mall, *broken), start_urls=("/products?page=1", "/products?page=2")
    )
    with BrowserSession() as session:
        summary, pages, failures = crawl(spec, session, tmp_path)
    assert pages == [] and summary.offers == 0
    assert [f.step for f in failures] == ["setup[1]:select"] * 2
    message = failures[0].message
    assert "no option '1000'" in message and "select[name=per_page]" in message
    assert message.count("/settings") == 1 and failures[0].url.endswith("/settings")


def test_a_navigating_click_that_opens_no_page_is_a_step_error(classic_mall, tmp_path):
    """The settings form's <select> is no link: waiting for a page it opens ends in an
    error at the wait time-out, not in a crawl of the settings page."""
    setup = (CHOOSE_48[0], Step("click", "select[name=per_page]", navigates=True))
    with BrowserSession() as session:
        _, pages, failures = crawl(
            with_setup(classic_mall, *setup, wait_timeout=1.0), session, tmp_path
        )
    assert pages == []
    assert [f.step for f in failures] == ["setup[1]:click"]
    assert "no new page opened" in failures[0].message


def test_a_setup_goto_obeys_the_shops_host(classic_mall, tmp_path):
    setup = (Step("goto", url="http://example.invalid/settings"),)
    with BrowserSession() as session:
        _, pages, failures = crawl(with_setup(classic_mall, *setup), session, tmp_path)
    assert pages == [] and [f.step for f in failures] == ["setup[0]:goto"]
    assert "leaves the shop's host" in failures[0].message


class GuardedClassic(ClassicShop):
    """Classic with a robots.txt of the test's choosing, a log of the paths asked for, and a
    settings page that answers only its first visitor (a shop allowing one sign-in)."""

    robots_txt = "User-agent: *\nAllow: /\n"
    settings_once = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked: list[str] = []

    def handle(self, path, query, cookies=None):
        self.asked.append(path + ("?" + urlencode(query) if query else ""))
        if path == "/robots.txt":
            return Response(200, "text/plain", self.robots_txt.encode())
        if path == "/settings" and self.settings_once and self.asked.count("/settings") > 1:
            return NOT_FOUND
        return super().handle(path, query, cookies)


@contextmanager
def serving(shop: GuardedClassic) -> Iterator[ShopServer]:
    server = ShopServer(shop).start()
    try:
        yield server
    finally:
        server.stop()


def guarded(robots_txt: str = GuardedClassic.robots_txt, settings_once: bool = False):
    shop = GuardedClassic(Catalog(11, 200))
    shop.robots_txt, shop.settings_once = robots_txt, settings_once
    return shop


FROM_THE_LISTING = (  # the settings reached by clicking, not by a goto
    Step("goto", url="/products?page=1"),
    Step("click", "a.settings", navigates=True),
    *CHOOSE_48[1:],
)


@pytest.mark.parametrize(
    ("disallow", "step", "setup"),
    [
        ("/settings", "setup[1]:click", FROM_THE_LISTING),  # the link clicked
        ("/settings?", "setup[2]:click", CHOOSE_48),  # the form's GET submission
    ],
    ids=["link", "form"],
)
def test_a_navigating_click_obeys_robots_before_it_clicks(tmp_path, disallow, step, setup):
    shop = guarded(f"User-agent: *\nDisallow: {disallow}\n")
    with serving(shop) as server, BrowserSession() as session:
        spec = load_builtin_spec("classic").with_base_url(server.base_url)
        robots = RobotsPolicy()
        _, pages, failures = crawl(replace(spec, setup=setup), session, tmp_path, robots=robots)
    assert pages == [] and [f.step for f in failures] == ["robots"]
    assert "robots.txt" in failures[0].message and "/settings" in failures[0].url
    refused = "/settings" if disallow == "/settings" else "/settings?per_page"
    assert not [path for path in shop.asked if path.startswith(refused)]


def test_a_helper_whose_setup_fails_leaves_the_shops_pages_to_its_own_session(tmp_path):
    """Two sessions, one shop with rendered detail pages: the helper's own setup is refused
    (the settings page answers once), so its detail pages go back to the shop's session;
    none is recorded as failed, every offer is stored."""
    shop = guarded(settings_once=True)
    home = Home(tmp_path / "home").create()
    with serving(shop) as server:
        spec = load_builtin_spec("classic").with_base_url(server.base_url)
        spec = replace(
            spec,
            setup=(Step("goto", url="/settings"),),
            detail=Detail({}, json_ld=False, render=True),
            politeness=replace(spec.politeness, concurrency=2),
        )
        (result,) = crawl_shops(home, [spec], CrawlOptions(sessions=2, backoff_seconds=0.05))
    assert (result.status, result.failures, result.offers) == ("ok", 0, len(shop.offers))
    assert shop.asked.count("/settings") >= 2  # the helper did try its setup
