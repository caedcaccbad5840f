"""Each demo shop's interaction pattern, proven with real headless Chromium."""

from __future__ import annotations

import json
import re

import pytest
from selenium.common.exceptions import ElementClickInterceptedException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from demo.classic import ClassicShop
from demo.menu import CATEGORIES, MenuShop
from demo.server import ShopServer
from demo.spa import SpaShop

pytestmark = pytest.mark.browser


def wait(browser, seconds: float = 10) -> WebDriverWait:
    return WebDriverWait(browser, seconds)


@pytest.fixture
def fresh(browser):
    """The shared browser with no cookies left from other tests."""
    browser.delete_all_cookies()
    yield browser
    browser.delete_all_cookies()


def accept_consent(browser, base: str) -> None:
    browser.get(base + "/")
    button = wait(browser).until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, "#consent-overlay .accept"))
    )
    button.click()
    wait(browser).until(ec.invisibility_of_element_located((By.ID, "consent-overlay")))


def test_scroll_modal_blocks_clicks_until_accepted(mall, fresh):
    base = mall.base_urls["scroll"]
    fresh.get(base + "/")
    tile = wait(fresh).until(ec.presence_of_element_located((By.CSS_SELECTOR, "a.tile")))
    with pytest.raises(ElementClickInterceptedException):
        tile.click()
    fresh.find_element(By.CSS_SELECTOR, "#consent-overlay .accept").click()
    wait(fresh).until(ec.invisibility_of_element_located((By.ID, "consent-overlay")))
    fresh.find_element(By.CSS_SELECTOR, "a.tile").click()
    wait(fresh).until(ec.url_contains("/item/"))
    assert fresh.find_elements(By.ID, "consent-overlay") == []  # consent remembered


def test_scroll_loads_every_product_by_scrolling_and_shows_no_price(mall, fresh):
    base, shop = mall.base_urls["scroll"], mall.servers["scroll"].shop
    accept_consent(fresh, base)
    while not fresh.find_elements(By.CSS_SELECTOR, ".feed-end"):
        before = len(fresh.find_elements(By.CSS_SELECTOR, "a.tile"))
        fresh.execute_script("window.scrollTo(0, document.body.scrollHeight)")
        wait(fresh).until(
            lambda d, n=before: (
                len(d.find_elements(By.CSS_SELECTOR, "a.tile")) > n
                or d.find_elements(By.CSS_SELECTOR, ".feed-end")
            )
        )
    tiles = fresh.find_elements(By.CSS_SELECTOR, "a.tile")
    assert len(tiles) == len(shop.offers)
    listing = fresh.page_source
    assert not re.search(r"\d원|판매가", re.sub(r"<script.*?</script>", "", listing, flags=re.S))


def test_scroll_detail_page_has_price_stock_and_json_ld(mall, fresh):
    base, shop = mall.base_urls["scroll"], mall.servers["scroll"].shop
    accept_consent(fresh, base)
    sold_out = next(o for o in shop.offers if not o.in_stock)
    fresh.get(base + shop.detail_path(sold_out.sku))
    data = json.loads(
        fresh.find_element(By.CSS_SELECTOR, 'script[type="application/ld+json"]').get_attribute(
            "textContent"
        )
    )
    assert data["@type"] == "Product" and data["name"] == sold_out.title
    assert data["offers"]["price"] == str(sold_out.price)
    assert data["offers"]["availability"].endswith("OutOfStock")
    assert fresh.find_element(By.CSS_SELECTOR, ".price").text == f"판매가 {sold_out.price:,}원"
    assert fresh.find_element(By.CSS_SELECTOR, ".stock").text == "일시품절"


def test_menu_shop_needs_the_menu_and_paginates_each_category(mall, fresh):
    base, shop = mall.base_urls["menu"], mall.servers["menu"].shop
    fresh.get(base + "/")
    assert fresh.find_elements(By.CSS_SELECTOR, ".goods") == []  # nothing without the menu
    seen = set()
    links = [a.get_attribute("href") for a in fresh.find_elements(By.CSS_SELECTOR, "a.cat")]
    assert len(links) == 10
    for index in range(len(links)):
        fresh.find_elements(By.CSS_SELECTOR, "nav.menu a.cat")[index].click()
        wait(fresh).until(ec.url_to_be(links[index]))
        while True:
            seen.update(
                e.get_attribute("data-goods")
                for e in fresh.find_elements(By.CSS_SELECTOR, ".goods")
            )
            following = fresh.find_elements(By.CSS_SELECTOR, "a.more-next")
            if not following:
                break
            page = fresh.find_element(By.TAG_NAME, "html")
            following[0].click()
            wait(fresh).until(ec.staleness_of(page))
    assert seen == {o.sku for o in shop.offers}


def test_menu_size_selector_changes_the_price(mall, fresh):
    base, shop = mall.base_urls["menu"], mall.servers["menu"].shop
    offer = next(o for o in shop.offers if len(shop.sizes(o)) >= 2)
    fresh.get(base + shop.detail_path(offer.sku))
    price = fresh.find_element(By.ID, "price")
    assert price.text == f"from {offer.price:,}원"  # before a size is chosen: the answer key's
    size, dearer = shop.sizes(offer)[-1]
    Select(fresh.find_element(By.ID, "size")).select_by_value(size)
    wait(fresh).until(lambda d: d.find_element(By.ID, "price").text == f"KRW {dearer}")
    assert dearer > offer.price


def test_menu_single_size_products_show_a_plain_price(mall):
    shop = mall.servers["menu"].shop
    offer = next(o for o in shop.offers if not shop.sizes(o))
    assert shop.price_text(offer) == f"KRW {offer.price}"


def test_classic_settings_choose_the_page_size_by_cookie(mall):
    """The settings form answers a choice with a cookie and a redirect to the listing; the
    listing then shows that many products; anything but 24, 48 or 96 is refused."""
    shop = mall.servers["classic"].shop
    form = shop.handle("/settings", {})
    assert form.status == 200 and b'name="per_page"' in form.body
    saved = shop.handle("/settings", {"per_page": "48"})
    headers = dict(saved.headers)
    assert saved.status == 303 and headers["Location"] == "/products?page=1"
    assert headers["Set-Cookie"].startswith("per_page=48;")
    listing = shop.handle("/products", {"page": "1"}, {"per_page": "48"}).body.decode()
    assert listing.count('<li class="product"') == min(48, len(shop.offers))
    default = shop.handle("/products", {"page": "1"}, {"per_page": "13"}).body.decode()
    assert default.count('<li class="product"') == min(shop.page_size, len(shop.offers))
    assert shop.handle("/settings", {"per_page": "1000"}).status == 400
    last = shop.pages_of(48)
    assert shop.handle("/products", {"page": str(last + 1)}, {"per_page": "48"}).status == 404


# -- variants, off in the mall: markup real shops use, for the crawler's tests -------------


def test_menu_variants_show_the_current_category_as_text_or_open_categories_by_script(mall):
    shop = MenuShop(mall.servers["menu"].shop.catalog)
    slug, text = CATEGORIES["tshirt"]
    default = shop.handle(f"/c/{slug}", {}).body.decode()
    assert f'<a class="cat" href="/c/{slug}">' in default and 'class="cat current"' not in default
    shop.current_category_as_text = True
    page = shop.handle(f"/c/{slug}", {}).body.decode()
    assert f'<span class="cat current" aria-current="page">{text}</span>' in page
    assert f'href="/c/{slug}"' not in page and page.count('<a class="cat"') == len(CATEGORIES) - 1
    shop.menu_links_by_script = True
    home = shop.handle("/", {}).body.decode()
    assert home.count('<a class="cat" href="#" data-href="/c/') == len(CATEGORIES)


def test_a_menu_link_without_a_url_opens_its_category_by_script(mall, fresh):
    shop = MenuShop(mall.servers["menu"].shop.catalog)
    shop.menu_links_by_script = True
    server = ShopServer(shop).start()
    try:
        fresh.get(server.base_url + "/")
        link = fresh.find_elements(By.CSS_SELECTOR, "nav.menu a.cat")[1]
        assert link.get_attribute("href") == server.base_url + "/#"
        link.click()
        wait(fresh).until(ec.url_to_be(server.base_url + "/c/" + CATEGORIES["trouser"][0]))
    finally:
        server.stop()


@pytest.mark.parametrize(("last_page_next", "target"), [("self", "last"), ("first", 1)])
def test_classic_variants_link_the_last_pages_next_back(mall, last_page_next, target):
    shop = ClassicShop(mall.servers["classic"].shop.catalog)
    last = shop.page_count
    assert 'class="next"' not in shop.handle("/products", {"page": str(last)}).body.decode()
    shop.last_page_next, shop.next_anchor = last_page_next, "list"
    page = shop.handle("/products", {"page": str(last)}).body.decode()
    expected = last if target == "last" else target
    assert f'<a class="next" rel="next" href="/products?page={expected}#list">' in page
    assert '<main id="list">' in page


@pytest.mark.parametrize("end_of_list", ["remove", "disabled", "aria-disabled", "repeat"])
def test_spa_variants_end_the_load_more_button_their_way(mall, fresh, end_of_list):
    """The mall's shop removes the button with the last page; variants leave it disabled,
    aria-disabled, or adding the last page's cards again."""
    shop = SpaShop(mall.servers["spa"].shop.catalog)
    shop.end_of_list = end_of_list
    total, last_size = len(shop.offers), len(shop.page(shop.page_count))
    server = ShopServer(shop).start()
    try:
        fresh.get(server.base_url + "/")
        for number in range(1, shop.page_count + 1):
            wait(fresh).until(
                lambda d, n=number: (
                    len(d.find_elements(By.CSS_SELECTOR, "article.card"))
                    >= min(n * shop.page_size, total)
                )
            )
            if number < shop.page_count:
                fresh.execute_script("arguments[0].click()", fresh.find_element(By.ID, "load-more"))
        button = "document.getElementById('load-more')"
        state = fresh.execute_script(
            f"const b = {button}; return b && [b.disabled, b.getAttribute('aria-disabled')]"
        )
        if end_of_list == "repeat":
            fresh.execute_script(f"{button}.click()")
            wait(fresh).until(
                lambda d: len(d.find_elements(By.CSS_SELECTOR, "article.card")) == total + last_size
            )
    finally:
        server.stop()
    assert (
        state
        == {
            "remove": None,
            "disabled": [True, None],
            "aria-disabled": [False, "true"],
            "repeat": [False, None],
        }[end_of_list]
    )
