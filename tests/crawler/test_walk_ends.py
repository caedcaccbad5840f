"""How a walk goes through a shop and how it ends, on demo shops with markup real shops use:
a category menu that shows the current category as plain text (or opens categories by
script), a last page whose "next" links back, a "load more" button left in place once the
list is complete, an end marker that comes with the last scroll round allowed. Every offer
of the answer key is stored, no failure is recorded, and no listing page is read twice."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from urllib.parse import quote, urlencode

import pytest
from selenium.webdriver.common.by import By

from crawler.browser import BrowserSession
from crawler.engine import STALE_SCROLL_ROUNDS, _is_disabled, crawl_shop
from crawler.spec import Detail, load_builtin_spec
from demo.catalog import Catalog
from demo.classic import ClassicShop
from demo.menu import CATEGORIES, MenuShop
from demo.scroll import FEED_SIZE, ScrollShop
from demo.server import ShopServer
from demo.spa import SpaShop
from pipeline.crawling import CrawlOptions, crawl_shops
from pipeline.settings import Home

pytestmark = pytest.mark.browser


class Asked:
    """Mixed into a demo shop: a log of the paths (with their query) it was asked for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked: list[str] = []

    def handle(self, path, query, cookies=None):
        self.asked.append(path + ("?" + urlencode(query) if query else ""))
        return super().handle(path, query, cookies)


class AskedMenu(Asked, MenuShop):
    current_category_as_text = True


class AskedClassic(Asked, ClassicShop):
    pass


class AskedSpa(Asked, SpaShop):
    pass


class AskedScroll(Asked, ScrollShop):
    pass


@pytest.fixture(scope="module")
def catalog():
    return Catalog(11, 120)


@contextmanager
def serving(shop) -> Iterator[str]:
    server = ShopServer(shop).start()
    try:
        yield server.base_url
    finally:
        server.stop()


def crawl(shop, base_url: str, driver, tmp_path, **options):
    spec = load_builtin_spec(shop.name).with_base_url(base_url)
    pages, failures = [], []
    summary = crawl_shop(
        spec, driver, tmp_path / "images", pages.append, failures.append, **options
    )
    return summary, pages, failures


def stored(pages) -> dict[str, int]:
    return {offer.url: offer.price for page in pages for offer in page.offers}


def answer_key(shop, base_url: str) -> dict[str, int]:
    return {offer["url"]: offer["price"] for offer in shop.answer_key(base_url)}


# the first listing page of each category, as a browser asks for it
CATEGORY_PAGES = sorted(f"/c/{slug}" for slug, _ in CATEGORIES.values())


def test_each_category_is_opened_by_its_url_though_its_page_shows_the_menu_otherwise(
    catalog, tmp_path
):
    """A category page shows its own category as text: its menu has one link fewer, so the
    i-th link there is another category than on the start page. Each is opened by the URL
    the start page gave, once, in a browser recycled every few pages; the start page is
    not opened again."""
    shop = AskedMenu(catalog)
    with serving(shop) as base_url, BrowserSession() as session:
        _, pages, failures = crawl(
            shop, base_url, session.driver, tmp_path, session=session, recycle_after=4
        )
        assert session.starts >= 3  # recycled between categories too
    assert [f.message for f in failures] == []
    assert stored(pages) == answer_key(shop, base_url)
    assert shop.asked.count("/") == 1
    assert sorted(p for p in shop.asked if p in CATEGORY_PAGES) == CATEGORY_PAGES


def test_menu_links_without_a_url_are_clicked_on_the_start_page_opened_again(
    catalog, browser, tmp_path
):
    """The menu's links are "#": a script opens each category. Only a click on the start
    page can open one, so the start page is opened again before each link but the first."""
    shop = AskedMenu(catalog)
    shop.menu_links_by_script = True
    with serving(shop) as base_url:
        _, pages, failures = crawl(shop, base_url, browser, tmp_path)
    assert [f.message for f in failures] == []
    assert stored(pages) == answer_key(shop, base_url)
    assert shop.asked.count("/") == len(CATEGORIES)
    assert sorted(p for p in shop.asked if p in CATEGORY_PAGES) == CATEGORY_PAGES


@pytest.mark.parametrize(
    ("last_page_next", "next_anchor"),
    [("self", ""), ("first", ""), ("self", "list"), ("first", "list")],
    ids=["to-itself", "to-page-1", "to-itself#anchor", "to-page-1#anchor"],
)
def test_a_next_link_back_to_a_page_already_read_ends_the_listing(
    catalog, browser, tmp_path, last_page_next, next_anchor
):
    """The last page's "next" points to itself or round to page 1 (with an anchor on the
    page: "#list", which makes each "next" a link to click): every page is read once."""
    shop = AskedClassic(catalog)
    shop.last_page_next, shop.next_anchor = last_page_next, next_anchor
    with serving(shop) as base_url:
        summary, pages, failures = crawl(shop, base_url, browser, tmp_path)
    assert [f.message for f in failures] == []
    assert stored(pages) == answer_key(shop, base_url)
    assert summary.pages == shop.page_count > 2
    listings = [p for p in shop.asked if p.startswith("/products?")]
    assert listings == [f"/products?page={n}" for n in range(1, shop.page_count + 1)]


@pytest.mark.parametrize("end_of_list", ["disabled", "aria-disabled", "inert", "tucked"])
def test_a_load_more_button_left_disabled_ends_the_listing(catalog, browser, tmp_path, end_of_list):
    """Once the last page is in, the button stays, disabled, or enabled but doing nothing
    when clicked (no request, no change, no error), or hidden where only Selenium's own
    is_displayed sees it is (a box of no height): the end, not a failure and not a wait
    for cards that never come. Each page of the API is asked for once."""
    shop = AskedSpa(catalog)
    shop.end_of_list = end_of_list
    with serving(shop) as base_url:
        summary, pages, failures = crawl(shop, base_url, browser, tmp_path)
    assert [f.message for f in failures] == []
    assert stored(pages) == answer_key(shop, base_url)
    assert summary.pages == shop.page_count > 2
    api = [p for p in shop.asked if p.startswith("/api/")]
    assert api == [f"/api/products?page={n}" for n in range(1, shop.page_count + 1)]


def test_a_load_more_click_that_only_raises_a_script_error_is_recorded_with_it(
    catalog, browser, tmp_path
):
    """A click whose handler throws adds nothing: the listing keeps what it has, and the
    failure recorded quotes the page's error (the list may not be complete)."""
    shop = AskedSpa(catalog)
    shop.end_of_list = "broken"
    with serving(shop) as base_url:
        _, pages, failures = crawl(shop, base_url, browser, tmp_path)
    assert stored(pages) == answer_key(shop, base_url)
    assert [f.step for f in failures] == ["load_more"]
    assert "did nothing" in failures[0].message
    assert "demo: no next page to load" in failures[0].message
    assert failures[0].url == base_url + "/"


def test_a_load_more_button_that_adds_the_same_cards_again_is_given_up(catalog, browser, tmp_path):
    """Once the last page is in, each click adds its cards again: after STALE_SCROLL_ROUNDS
    clicks that bring nothing new the walk stops and says so, every offer stored."""
    shop = AskedSpa(catalog)
    shop.end_of_list = "repeat"
    with serving(shop) as base_url:
        _, pages, failures = crawl(shop, base_url, browser, tmp_path)
    assert stored(pages) == answer_key(shop, base_url)
    assert [f.step for f in failures] == ["load_more"]
    assert "only items already seen" in failures[0].message
    last = f"/api/products?page={shop.page_count}"
    assert shop.asked.count(last) == 1 + STALE_SCROLL_ROUNDS


def test_a_listing_of_products_already_stored_is_walked_to_its_end(catalog, browser, tmp_path):
    """A second listing showing the same products (another sort order, or a category that
    repeats another's) grows with each click though it brings nothing new to the shop: it
    is walked to its end, not given up as a listing that repeats itself."""
    shop = AskedSpa(catalog)
    with serving(shop) as base_url:
        spec = load_builtin_spec(shop.name).with_base_url(base_url)
        spec = replace(spec, start_urls=("/", "/?sort=new"))
        pages, failures = [], []
        crawl_shop(spec, browser, tmp_path / "images", pages.append, failures.append)
    assert [f.message for f in failures] == []
    assert stored(pages) == answer_key(shop, base_url)
    assert len({offer.url for page in pages for offer in page.offers}) == len(
        [offer for page in pages for offer in page.offers]
    )
    api = [p for p in shop.asked if p.startswith("/api/")]
    assert shop.page_count > STALE_SCROLL_ROUNDS  # enough clicks to be given up
    assert api == 2 * [f"/api/products?page={n}" for n in range(1, shop.page_count + 1)]


def test_an_end_marker_shown_in_the_last_scroll_round_allowed_is_the_end(
    catalog, small_window, tmp_path
):
    """max_pages allows just the scroll rounds the feed needs: the end marker comes with
    the last one, so nothing was cut short and nothing is recorded."""
    shop = AskedScroll(catalog)
    batches = -(-len(shop.offers) // FEED_SIZE)
    assert batches >= 3
    with serving(shop) as base_url:
        spec = load_builtin_spec("scroll").with_base_url(base_url)
        rounds = batches - 1  # the first batch comes unscrolled
        spec = replace(spec, pagination=replace(spec.pagination, max_pages=rounds))
        pages, failures = [], []
        summary = crawl_shop(spec, small_window, tmp_path / "images", pages.append, failures.append)
    assert [f.message for f in failures] == []
    assert stored(pages) == answer_key(shop, base_url)
    assert len([p for p in shop.asked if p.startswith("/api/feed")]) == batches
    assert not summary.capped


def test_a_menu_walked_by_its_urls_shares_its_detail_pages_with_a_helper(tmp_path):
    """Two sessions on the menu variant with rendered detail pages: the shop's session
    walks the categories by URL, a helper loads some detail pages; every offer stored."""
    shop = AskedMenu(Catalog(11, 40))
    home = Home(tmp_path / "home").create()
    with serving(shop) as base_url:
        spec = load_builtin_spec("menu").with_base_url(base_url)
        spec = replace(
            spec,
            detail=Detail({}, json_ld=False, render=True),
            politeness=replace(spec.politeness, concurrency=2),
        )
        (result,) = crawl_shops(home, [spec], CrawlOptions(sessions=2, backoff_seconds=0.05))
    assert (result.status, result.failures, result.offers) == ("ok", 0, len(shop.offers))
    assert shop.asked.count("/") == 1


def test_a_buttons_disabled_state_after_a_click_is_read_as_selenium_reads_it(browser):
    """The check after a "load more" click (did the button disable itself while loading?)
    says what Selenium's get_attribute("disabled") says, in a smaller script."""
    cases = (
        "<button disabled>a</button><button>b</button><a href='#' disabled>c</a>"
        "<fieldset disabled><button>d</button></fieldset><input disabled><input>"
        "<div disabled='false'>e</div><button id=f>f</button>"
        "<script>document.getElementById('f').disabled = true</script>"
    )
    browser.get("data:text/html," + quote(cases))
    elements = browser.find_elements(By.CSS_SELECTOR, "button, a, input, div")
    said = [_is_disabled(e) for e in elements]
    assert said == [e.get_attribute("disabled") is not None for e in elements]
    assert said == [True, False, True, False, True, False, True, True]
