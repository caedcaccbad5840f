"""Crawling the demo shops with real headless Chromium through the built-in specs."""

from __future__ import annotations

import hashlib
import urllib.request
from dataclasses import replace

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from crawler.browser import use_page_load_timeout
from crawler.engine import _TAKE_ITEMS, crawl_shop
from crawler.errors import CrawlStopped, StepFailed
from crawler.spec import Listing, Step, load_builtin_spec
from crawler.steps import Browser
from demo.mall import MallSettings, run_mall

pytestmark = pytest.mark.browser


def crawl(mall, browser, tmp_path, name, spec=None):
    spec = spec or load_builtin_spec(name).with_base_url(mall.base_urls[name])
    pages, failures = [], []
    summary = crawl_shop(spec, browser, tmp_path / "images", pages.append, failures.append)
    return summary, pages, failures


@pytest.mark.parametrize(
    "name, render",
    [("classic", None), ("spa", None), ("scroll", None), ("scroll", True), ("menu", None)],
    ids=["classic", "spa", "scroll", "scroll-rendered-details", "menu"],
)
def test_every_offer_is_found_with_its_price_title_stock_photo_and_category(
    mall, browser, tmp_path, name, render
):
    spec = load_builtin_spec(name).with_base_url(mall.base_urls[name])
    if render is not None:  # the bundled spec fetches its detail pages; rendering must agree
        spec = replace(spec, detail=replace(spec.detail, render=render))
    summary, pages, failures = crawl(mall, browser, tmp_path, name, spec)
    assert failures == []
    truth = {o["url"]: o for o in mall.answer_key()["shops"][name]["offers"]}
    found = {offer.url: offer for page in pages for offer in page.offers}
    assert set(found) == set(truth)
    assert summary.offers == len(truth)
    images = {image.sha256: image for page in pages for image in page.images}
    labels = {sha: label for page in pages for sha, label in page.shop_labels.items()}
    spec = load_builtin_spec(name)
    for url, expected in truth.items():
        offer = found[url]
        assert (
            offer.title,
            offer.price,
            offer.currency,
            offer.list_price,
            offer.in_stock,
            offer.price_is_from,
        ) == (
            expected["title"],
            expected["price"],
            "KRW",
            expected["list_price"],
            expected["in_stock"],
            expected["price_is_from"],
        )
        with urllib.request.urlopen(expected["image_url"]) as response:
            assert offer.image_sha256 == hashlib.sha256(response.read()).hexdigest()
        assert offer.image_sha256 in images
        assert spec.label_for(offer.category_raw) == expected["category"]
        assert labels[offer.image_sha256] == expected["category"]


def test_classic_is_walked_through_every_numbered_page(mall, browser, tmp_path):
    summary, pages, _ = crawl(mall, browser, tmp_path, "classic")
    assert summary.pages == mall.servers["classic"].shop.page_count
    assert [p.url.rsplit("=", 1)[1] for p in pages] == [str(n) for n in range(1, summary.pages + 1)]


def test_spa_load_more_appends_cards_until_the_button_is_gone(mall, browser, tmp_path):
    summary, pages, _ = crawl(mall, browser, tmp_path, "spa")
    shop = mall.servers["spa"].shop
    assert summary.pages == shop.page_count
    assert [len(p.offers) for p in pages[:-1]] == [shop.page_size] * (shop.page_count - 1)
    assert browser.find_elements(By.CSS_SELECTOR, "#load-more") == []


@pytest.mark.parametrize(
    "stop", [{"should_stop": lambda: True}, {"first_offers_only": True}], ids=["stop", "first"]
)
def test_a_stop_ends_the_crawl_after_the_current_page_photos_and_all(mall, browser, tmp_path, stop):
    """Photos download while the next page loads; a stop asked for after page 1 (or the
    first page with offers, for `shops test`) hands page 1 over complete, opens no page 2."""
    spec = load_builtin_spec("classic").with_base_url(mall.base_urls["classic"])
    pages = []
    with pytest.raises(CrawlStopped, match="stopped after page 1"):
        crawl_shop(spec, browser, tmp_path, pages.append, pytest.fail, **stop)
    (page,) = pages
    assert page.number == 1 and len(page.offers) == mall.servers["classic"].shop.page_size
    assert len(page.images) == len(page.offers) and all(o.image_sha256 for o in page.offers)
    assert browser.current_url.endswith("page=1")


def classic_pages(mall, *start_urls: str):
    """The classic spec opening just *start_urls*, no pagination."""
    spec = load_builtin_spec("classic").with_base_url(mall.base_urls["classic"])
    return replace(
        spec, start_urls=start_urls, pagination=replace(spec.pagination, strategy="none")
    )


def test_a_link_on_two_pages_is_taken_once_though_photos_arrive_later(mall, browser, tmp_path):
    """The page waiting for its photos is handed over before the next one is filtered:
    the same listing opened twice gives its offers once."""
    spec = classic_pages(mall, "/products?page=1", "/products?page=1&again")
    summary, pages, failures = crawl(mall, browser, tmp_path, "classic", spec)
    assert failures == [] and [len(p.offers) for p in pages] == [summary.offers, 0]
    assert summary.offers == mall.servers["classic"].shop.page_size


def test_a_listing_page_is_checked_and_read_in_one_script_call(
    mall, browser, tmp_path, monkeypatch
):
    """The load check (status, URL, items shown) and the harvest share one round trip on
    listings without steps, a DevTools Runtime.evaluate after a load; the offers are the
    same as ever."""
    scripts, evaluated = [], []
    real_script, real_cdp = browser.execute_script, browser.execute_cdp_cmd
    monkeypatch.setattr(
        browser,
        "execute_script",
        lambda script, *args: scripts.append(script) or real_script(script, *args),
    )
    monkeypatch.setattr(
        browser,
        "execute_cdp_cmd",
        lambda name, params: evaluated.append(name) or real_cdp(name, params),
    )
    summary, _, failures = crawl(mall, browser, tmp_path, "classic")
    assert failures == [] and summary.offers == len(mall.servers["classic"].shop.offers)
    assert evaluated.count("Runtime.evaluate") == summary.pages  # one per page, at its load
    assert len(scripts) <= 1  # the user agent, read once


def test_max_pages_opens_no_page_beyond_it(mall, browser, tmp_path):
    spec = load_builtin_spec("classic").with_base_url(mall.base_urls["classic"])
    spec = replace(spec, pagination=replace(spec.pagination, max_pages=2))
    summary, _, _ = crawl(mall, browser, tmp_path, "classic", spec)
    assert summary.pages == 2 and browser.current_url.endswith("page=2")


def test_start_urls_that_differ_only_by_fragment_are_one_document(mall, browser, tmp_path):
    """A "#..." change keeps the document (hash-routed shops): not a dropped navigation."""
    spec = classic_pages(mall, "/products?page=1#top", "/products?page=1#list")
    summary, _, failures = crawl(mall, browser, tmp_path, "classic", spec)
    assert failures == []
    assert summary.offers == mall.servers["classic"].shop.page_size  # page 1 once


def test_a_load_more_listing_hands_each_card_over_once(mall, browser):
    """The harvest takes only the cards this document has not handed over yet: after a
    click, the new ones (a growing listing is not serialised again and again)."""
    shop = mall.servers["spa"].shop
    browser.get(mall.base_urls["spa"] + "/")
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "article.card"))
    # the lazy loader swaps a card's photo in when it scrolls into view, whenever its observer
    # gets round to it (even to the same src, a change): a changed card is taken again, so
    # the loader is stopped, its pending entries dropped, and the photos go in first
    browser.execute_script(
        "lazy.takeRecords(); lazy.disconnect();"
        "document.querySelectorAll('img.lazy').forEach(i => i.src = i.dataset.src)"
    )
    url, first, control, _, _ = browser.execute_script(_TAKE_ITEMS, "article.card", None, "t")
    assert control is None  # none asked for
    assert url == mall.base_urls["spa"] + "/" and len(first) == shop.page_size
    assert browser.execute_script(_TAKE_ITEMS, "article.card", None, "t")[1] == []  # none new
    # another crawl in the same browser and document takes them all: marks are per crawl
    assert browser.execute_script(_TAKE_ITEMS, "article.card", None, "u")[1] == first
    # a card whose content changes (a placeholder filled in) is taken again, alone
    browser.execute_script(
        "document.querySelector('article.card h3.card-title')"
        ".insertAdjacentText('beforeend', ' (filled)')"
    )
    (changed,) = browser.execute_script(_TAKE_ITEMS, "article.card", None, "t")[1]
    assert "(filled)" in changed
    browser.find_element(By.ID, "load-more").click()
    WebDriverWait(browser, 10).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "article.card")) > shop.page_size
    )
    _, second, _, _, _ = browser.execute_script(_TAKE_ITEMS, "article.card", None, "t")
    expected = min(shop.page_size, len(shop.offers) - shop.page_size)
    assert len(second) == expected and not set(second) & {*first, changed}


def test_the_harvest_reads_the_pagination_control_in_the_same_trip(mall, browser):
    """Its first match, that one's absolute URL, and the first match shown: a hidden one is
    never clicked, a relative href is resolved as the browser would."""
    browser.get(mall.base_urls["classic"] + "/products?page=1")
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "li.product"))
    TAKE, NEXT = _TAKE_ITEMS, "nav.pagination a.next"
    expected = browser.find_element(By.CSS_SELECTOR, NEXT).get_attribute("href")
    _, _, (link, href, shown), _, _ = browser.execute_script(TAKE, "li.product", NEXT, "t")
    assert href == expected and href.startswith("http") and shown == link
    browser.execute_script(
        "const a = document.querySelector('nav.pagination a.next');"
        "a.insertAdjacentHTML('beforebegin', '<a class=next style=display:none href=x?p=9>n</a>');"
        "a.setAttribute('style', 'visibility: hidden')"
    )
    _, _, (first, href, shown), _, _ = browser.execute_script(TAKE, "li.product", NEXT, "t")
    assert href.endswith("/x?p=9") and shown is None and not first.is_displayed()
    # as Selenium: an empty href stays empty (a script's link, to be clicked), and a
    # transparent or zero-sized control is not shown
    browser.execute_script(
        "const [a, b] = document.querySelectorAll('nav.pagination a.next');"
        "a.setAttribute('href', ''); a.setAttribute('style', 'opacity: 0');"
        "b.setAttribute('style', 'display: inline-block; width: 0; height: 0; overflow: hidden')"
    )
    _, _, (first, href, shown), _, _ = browser.execute_script(TAKE, "li.product", NEXT, "t")
    assert href == first.get_attribute("href") == "" and shown is None
    browser.execute_script(
        "document.querySelectorAll('nav.pagination a.next').forEach(a => a.remove())"
    )
    assert browser.execute_script(TAKE, "li.product", NEXT, "t")[2] is None
    # a selector the browser cannot parse leaves the control unread, not the harvest failed
    _, items, control, _, _ = browser.execute_script(TAKE, "li.product", "a:contains('x')", "u")
    assert control is False and items


def test_spa_photos_load_lazily_when_scrolled_into_view(mall, small_window):
    browser = small_window
    browser.get(mall.base_urls["spa"] + "/")
    cards = "article.card img.lazy"
    for expected in range(1, mall.servers["spa"].shop.page_count + 1):
        WebDriverWait(browser, 10).until(
            lambda d, n=expected: (
                len(d.find_elements(By.CSS_SELECTOR, cards))
                >= min(n * 24, len(mall.servers["spa"].shop.offers))
            )
        )
        buttons = browser.find_elements(By.CSS_SELECTOR, "#load-more")
        if buttons:
            browser.execute_script("arguments[0].click()", buttons[0])
    last = browser.find_elements(By.CSS_SELECTOR, cards)[-1]
    assert last.get_attribute("src").startswith("data:")  # below the fold: not loaded yet
    browser.execute_script("arguments[0].scrollIntoView()", last)
    WebDriverWait(browser, 10).until(
        lambda d: last.get_attribute("src").endswith(last.get_attribute("data-src"))
    )


def test_sale_items_carry_the_struck_through_list_price(mall, browser, tmp_path):
    _, pages, _ = crawl(mall, browser, tmp_path, "spa")
    on_sale = [o for p in pages for o in p.offers if o.list_price]
    assert on_sale and all(o.list_price > o.price for o in on_sale)
    assert all(o.title.startswith("[SALE]") for o in on_sale)


def test_shop_categories_become_shared_labels(mall, browser, tmp_path):
    _, pages, _ = crawl(mall, browser, tmp_path, "classic")
    truth = {o["url"]: o["category"] for o in mall.answer_key()["shops"]["classic"]["offers"]}
    labels = {}
    for page in pages:
        labels.update(page.shop_labels)
    for offer in (o for p in pages for o in p.offers):
        assert labels[offer.image_sha256] == truth[offer.url]


def test_a_page_without_the_expected_items_is_recorded_and_the_crawl_goes_on(
    mall, browser, tmp_path
):
    spec = load_builtin_spec("classic").with_base_url(mall.base_urls["classic"])
    first = mall.servers["classic"].shop.offers[0].sku
    broken = replace(
        spec,
        start_urls=("/nowhere", f"/products/{first}", "/products?page=1"),
        pagination=replace(spec.pagination, max_pages=1),
        politeness=replace(spec.politeness, wait_timeout=1.0),
    )
    summary, pages, failures = crawl(mall, browser, tmp_path, "classic", broken)
    assert [(f.url.rsplit("/", 1)[1], f.step) for f in failures] == [
        ("nowhere", "goto"),
        (first, "wait_for"),
    ]
    missing, empty = failures
    assert "HTTP 404" in missing.message  # a 404 is not retried
    assert "li.product" in empty.message and "classic" in empty.message
    assert empty.html and empty.screenshot_png.startswith(b"\x89PNG")
    assert summary.pages == 1 and len(pages[0].offers) == spec_page_size(mall)


def spec_page_size(mall):
    return mall.servers["classic"].shop.page_size


def test_items_without_a_link_are_skipped_and_reported(mall, browser, tmp_path):
    spec = load_builtin_spec("classic").with_base_url(mall.base_urls["classic"])
    fields = dict(spec.listing.fields)
    fields["url"] = replace(fields["url"], selector="a.missing")
    broken = replace(
        spec,
        listing=Listing(spec.listing.item, fields, spec.listing.sold_out),
        pagination=replace(spec.pagination, max_pages=1),
    )
    _, pages, failures = crawl(mall, browser, tmp_path, "classic", broken)
    assert failures == [] and pages[0].offers == []
    assert len(pages[0].problems) == spec_page_size(mall)


def test_select_type_and_scroll_steps(mall, browser):
    shop = mall.servers["menu"].shop
    offer = next(o for o in shop.offers if len(shop.sizes(o)) >= 2)
    size, price = shop.sizes(offer)[1]
    spec = replace(
        load_builtin_spec("menu").with_base_url(mall.base_urls["menu"]),
        steps=(Step("scroll", "#size"), Step("select", "#size", size)),
    )
    browser.get(mall.base_urls["menu"] + shop.detail_path(offer.sku))
    Browser(spec, browser).run_steps()
    assert browser.find_element(By.ID, "price").text == f"KRW {price}"
    browser.get("data:text/html,<input id=q>")
    Browser(replace(spec, steps=(Step("type", "#q", "코튼 티셔츠"),)), browser).run_steps()
    assert browser.find_element(By.ID, "q").get_attribute("value") == "코튼 티셔츠"


def test_a_missing_option_is_a_step_error_naming_the_step(mall, browser):
    shop = mall.servers["menu"].shop
    offer = next(o for o in shop.offers if shop.sizes(o))
    spec = replace(
        load_builtin_spec("menu").with_base_url(mall.base_urls["menu"]),
        steps=(Step("select", "#size", "XXXL"),),
    )
    browser.get(mall.base_urls["menu"] + shop.detail_path(offer.sku))
    with pytest.raises(StepFailed, match=r"steps\[0\]:select.*#size.*XXXL"):
        Browser(spec, browser).run_steps()


@pytest.mark.parametrize(
    ("step", "problem"),
    [
        (Step("select", "#title", "M"), "not a <select> but a <h1>"),
        (Step("type", "#title", "shirt"), "cannot type into a <h1>"),
    ],
    ids=["select", "type"],
)
def test_a_step_on_the_wrong_kind_of_element_is_a_step_error(browser, step, problem):
    page = "data:text/html,<h1 id=title>Shop</h1>"
    browser.get(page)
    spec = replace(load_builtin_spec("menu"), steps=(step,))
    with pytest.raises(StepFailed) as caught:
        Browser(spec, browser).run_steps()
    message = str(caught.value)
    assert f"steps[0]:{step.action}" in message and "'#title'" in message
    assert problem in message and page in message


def test_a_specs_page_load_timeout_bounds_every_page_load(browser):
    settings = MallSettings(seed=3, products=12, shops=("classic",), faults="slow=1")
    spec = load_builtin_spec("classic")
    quick = replace(spec.politeness, page_load_timeout=0.3, retries=0)
    try:
        with run_mall(settings) as slow:  # every answer takes 1.5 s
            shop = replace(spec, politeness=quick).with_base_url(slow.base_urls["classic"])
            with pytest.raises(StepFailed, match="page load timed out"):
                Browser(shop, browser).load(shop.absolute(shop.start_urls[0]), "goto")
    finally:
        use_page_load_timeout(browser, 30.0)  # the shared browser's usual limit
