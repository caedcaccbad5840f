"""Markup real shops ship, beyond the demo mall's: JSON-LD variants (price specifications,
product groups), srcset, XML declarations, relative links on detail pages, text as a browser
renders it, discount badges, split cents, stock wording."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from crawler.extract import (
    RawItem,
    absolute_fields,
    complete_from_detail,
    extract_items,
    largest_candidate,
    parse_html,
    to_offer,
)
from crawler.jsonld import product_fields
from crawler.prices import parse_price
from crawler.spec import parse_spec
from crawler.stock import in_stock

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def shop(currency="EUR", decimal_separator=None, image_attrs=("data-src", "src")):
    data = {
        "name": "shop",
        "base_url": "https://shop.example",
        "start_urls": ["/shop/list.php"],
        "currency": currency,
        "listing": {
            "item": "li.item",
            "fields": {
                "url": {"selector": "a", "attr": "href"},
                "image": {"selector": "img", "attr": list(image_attrs)},
            },
        },
        "detail": {"fields": {"title": "h1", "price": ".price"}},
    }
    if decimal_separator:
        data["decimal_separator"] = decimal_separator
    return parse_spec(data, "shop.toml")


def ld(*blocks: str) -> str:
    scripts = "".join(f'<script type="application/ld+json">{b}</script>' for b in blocks)
    return f"<html><head>{scripts}</head><body><h1>Page title</h1></body></html>"


def detail_offer(html: str, spec, listed: RawItem | None = None, page="https://shop.example/p/7"):
    listed = listed or RawItem({"url": page, "title": "Listed"}, False)
    item = complete_from_detail(listed, html, spec, page)
    return to_offer(item, spec, "https://shop.example/shop/list.php", NOW)


@pytest.mark.parametrize(
    ("price", "separator", "expected"),
    [
        ('"12.99"', ",", 1299),  # schema.org's '.' whatever the shop's hint
        ("12.99", ",", 1299),
        ("1299.5", ",", 129950),
        ('"1299.000"', None, 129900),  # not read as 1,299,000
        ('"12.99"', None, 1299),
    ],
)
def test_a_json_ld_price_is_read_with_a_decimal_point(price, separator, expected):
    html = ld(f'{{"@type": "Product", "name": "Tee", "offers": {{"price": {price}}}}}')
    offer = detail_offer(html, shop(decimal_separator=separator))
    assert (offer.price, offer.currency) == (expected, "EUR")


def test_the_offer_in_the_shops_currency_and_in_stock_is_the_one_read():
    html = ld(
        '{"@type": "Product", "name": "Tee", "offers": ['
        '{"price": "12.99", "priceCurrency": "USD", "availability": "InStock"},'
        '{"price": "11900", "priceCurrency": "KRW", "availability": "OutOfStock"},'
        '{"price": "12900", "priceCurrency": "KRW", "availability": "https://schema.org/InStock"}]}'
    )
    offer = detail_offer(html, shop(currency="KRW"))
    assert (offer.price, offer.currency, offer.in_stock) == (12900, "KRW", True)


def test_a_product_with_offers_wins_over_an_earlier_stub_and_images_are_urls():
    html = ld(
        '{"@type": "Product", "name": "Theme stub"}',
        '{"@type": "https://schema.org/Product", "name": "Full", "image": '
        '[{"@type": "ImageObject", "url": "/i/front.jpg", "name": "Front view"}], '
        '"offers": {"price": 0}}',
        '{"@type": "schema:Product", "name": "Later", "offers": {"price": "5"}}',
    )
    fields = product_fields(parse_html(html))
    assert fields["title"] == "Full" and fields["image"] == "/i/front.jpg"
    assert fields["price"] is None  # 0 is a placeholder: the page's selectors decide


def test_broken_json_ld_that_shops_commonly_ship_is_forgiven():
    block = '<!-- {"@type": "Product", "name": "Caf\u00e9\n Bar", "offers": {"price": "3"}}; -->'
    html = (
        '<html><head><script type="application/ld+json; charset=utf-8">'
        f"{block}</script></head></html>"
    )
    assert product_fields(parse_html(html))["title"] == "Café Bar"


def test_json_ld_currency_and_availability_are_normalised():
    html = ld(
        '{"@type": "Product", "name": "Tee", "offers": '
        '{"price": "9900", "priceCurrency": "krw", "availability": "schema:InStock/"}}'
    )
    listed = RawItem({"url": "https://shop.example/p/7", "stock": "Sold out"}, False)
    offer = detail_offer(html, shop(), listed)
    assert (offer.price, offer.currency, offer.in_stock) == (9900, "KRW", True)


def test_relative_links_resolve_against_the_page_they_were_read_from():
    page = "https://shop.example/shop/list.php"
    (listed,) = extract_items(
        '<ul><li class="item"><a href="goods/view.php?no=7"><img src="img/t7.jpg"></a></li></ul>',
        shop(),
    )
    link = "https://shop.example/shop/goods/view.php?no=7"
    item = absolute_fields(listed, link, page)
    offer = detail_offer(
        "<html><body><h1>Tee</h1><p class=price>5 €</p></body></html>", shop(), item, link
    )
    assert offer.url == link
    assert offer.image_url == "https://shop.example/shop/img/t7.jpg"
    with_photo = '<html><body><h1>Tee</h1><img src="big/t7.jpg"></body></html>'
    spec = shop()
    spec = replace(
        spec,
        detail=replace(
            spec.detail,
            fields={
                **spec.detail.fields,
                "image": replace(spec.listing.fields["image"], attrs=("src",)),
            },
        ),
    )
    offer = detail_offer(with_photo, spec, item, link)
    assert offer.image_url == "https://shop.example/shop/goods/big/t7.jpg"  # the detail page's


@pytest.mark.parametrize(
    ("srcset", "expected"),
    [
        ("a-320.jpg 320w, a-640.jpg 640w", "a-640.jpg"),
        ("a.jpg 1x, a@2x.jpg 2x", "a@2x.jpg"),
        ("  only.jpg  ", "only.jpg"),
        ("/x/a,b.jpg 100w, /x/c.jpg 50w", "/x/a,b.jpg"),
        ("", ""),
    ],
)
def test_the_largest_srcset_candidate_is_taken(srcset, expected):
    assert largest_candidate(srcset) == expected


def test_an_image_known_only_by_srcset_and_placeholders_fall_back():
    html = (
        '<ul><li class="item"><a href="/p/1"></a>'
        '<img data-src="  " src="#" srcset="/i/1-320.jpg 320w, /i/1-960.jpg 960w"></li></ul>'
    )
    (item,) = extract_items(html, shop(image_attrs=("data-src", "src", "srcset")))
    assert item.fields["image"] == "/i/1-960.jpg"


def test_a_page_with_an_xml_declaration_is_read():
    html = '<?xml version="1.0" encoding="utf-8"?>' + ld(
        '{"@type": "Product", "name": "Tee", "offers": {"price": "5"}}'
    )
    assert product_fields(parse_html(html))["title"] == "Tee"


@pytest.mark.parametrize(
    ("text", "amount", "error"),
    [
        ("12,900원 -10%", 12900, None),  # a discount badge beside the price
        ("-10% 12,900원", 12900, None),
        ("12,900원 (-10%)", 12900, None),
        ("9,900원 - 12,900원", 9900, None),  # a range: its low end
        ("12,99 € - 19,99 €", 1299, None),
        ("$12 99", None, "digits grouped ambiguously"),  # $12<sup>99</sup>: never $1299
        ("1 234,56 €", 123456, None),
        ("-$5.00", None, "negative price"),
        ("T-shirt 12,900원", 12900, None),
    ],
)
def test_badges_ranges_and_split_cents(text, amount, error):
    parsed = parse_price(text, "KRW" if "원" in text else "EUR")
    assert (parsed.amount, parsed.error) == (amount, error)


@pytest.mark.parametrize(
    ("text", "is_from"),
    [
        ("9,900원 - 12,900원", True),
        ("9,900원~12,900원", True),
        ("$9.99 – $19.99", True),
        ("As low as $9.99", True),
        ("Starting from 9,99 €", True),
        ("최저 9,900원", True),
        ("12,900원 -10%", False),
        ("1 234,56 €", False),
        ("12,900원", False),
        ("T-shirt 12,900원", False),
    ],
)
def test_ranges_and_lowest_price_wording_are_from_prices(text, is_from):
    currency = "KRW" if "원" in text else ("USD" if "$" in text else "EUR")
    parsed = parse_price(text, currency)
    assert parsed.amount and parsed.is_from is is_from


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Notify me when available", False),
        ("Email me when available", False),
        ("Not in stock", False),
        ("Nicht auf Lager", False),
        ("Nicht lieferbar", False),
        ("No disponible", False),
        ("Niet op voorraad", False),
        ("Ej i lager", False),
        ("在庫なし", False),
        ("品切れ", None),
        ("품절임박", True),  # almost sold out: still for sale
        ("재고 3개", True),
        ("Low stock", True),
        ("Available", True),
        ("품절", False),
    ],
)
def test_stock_wording_of_real_shops(text, expected):
    assert in_stock(text) is expected


def read_listing(markup: str, price_selector=".price"):
    """The offer of a listing item made of *markup*: its title is `.field`'s text."""
    fields = {
        "title": ".field",
        "price": price_selector,
        "url": {"selector": "a", "attr": "href"},
    }
    data = {
        "name": "shop",
        "base_url": "https://shop.example",
        "start_urls": ["/"],
        "currency": "USD",
        "listing": {"item": "li.item", "fields": fields},
    }
    spec = parse_spec(data, "shop.toml")
    (item,) = extract_items(f'<ul><li class="item"><a href="/p/1"></a>{markup}</li></ul>', spec)
    return to_offer(item, spec, "https://shop.example/", NOW)


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ('<h3 class="field">Ni<b>ke</b> Air</h3>', "Nike Air"),  # inline: no gap
        ('<h3 class="field">Air<x-badge>Max</x-badge></h3>', "AirMax"),  # custom: inline
        ('<p class="field">$<!-- -->12<!-- -->.99</p>', "$12.99"),  # React's text seams
        ('<p class="field">Linen<br>shirt</p>', "Linen shirt"),
        ('<div class="field"><p>Linen</p><p>shirt</p></div>', "Linen shirt"),
        ('<table class="field"><tr><td>Size</td><td>M</td></tr></table>', "Size M"),
        ('<h3 class="field">Tee<span hidden>Old name</span> V2</h3>', "Tee V2"),
        ('<h3 class="field">Tee<i style="display: none">Old</i></h3>', "Tee"),
        ('<h3 class="field">Tee<i style="DISPLAY:NONE !important">Old</i></h3>', "Tee"),
        ('<h3 class="field">Tee<i style="color:red; visibility:hidden">x</i></h3>', "Tee"),
        ('<h3 class="field">Tee<noscript>Turn on JavaScript</noscript></h3>', "Tee"),
        ('<h3 class="field">Tee<svg><title>Heart icon</title></svg></h3>', "Tee"),
        ('<h3 class="field">Tee <i aria-hidden="true">★</i></h3>', "Tee ★"),  # it is shown
        ('<h3 class="field">Tee<span class="sr-only">, new</span></h3>', "Tee, new"),
        ('<h3 class="field" hidden>Tee</h3>', "Tee"),  # a selector may name a hidden element
    ],
)
def test_text_reads_as_a_browser_renders_it(markup, expected):
    assert read_listing(markup).title == expected


@pytest.mark.parametrize(
    ("markup", "price", "error"),
    [
        ('<span class="price">$12<sup>.99</sup></span>', 1299, None),
        ('<span class="price">$1,<b>299</b>.00</span>', 129900, None),
        # digits meeting at an element boundary stay apart, so split cents (or a footnote
        # mark) are refused: read as $1299 or $4991 they would be a wrong price
        ('<span class="price">$12<sup>99</sup></span>', None, "digits grouped ambiguously"),
        ('<span class="price">$<b>12</b><b>99</b></span>', None, "digits grouped ambiguously"),
        ('<span class="price">$499<sup>1</sup></span>', None, "digits grouped ambiguously"),
    ],
)
def test_split_cents_are_read_or_refused_never_read_as_hundreds(markup, price, error):
    offer = read_listing(f'<h3 class="field">Tee</h3>{markup}')
    assert (offer.price, offer.price_error) == (price, error)


SALE_FIRST = (  # some themes put the sale price first
    '<span class="price"><span class="visually-hidden">Sale price</span>$10.00 '
    '<span class="visually-hidden">Regular price</span><s>$12.00</s></span>'
)
DAWN = (  # Shopify's Dawn theme: the regular price comes first
    '<div class="price"><span class="visually-hidden">Regular price</span>'
    '<s class="price-item--regular">$12.00</s><span class="visually-hidden">Sale price</span>'
    '<span class="price-item--sale">$10.00</span></div>'
)


@pytest.mark.parametrize(
    ("markup", "price_selector", "price"),
    [
        (SALE_FIRST, ".price", 1000),  # screen-reader words are text, the first number wins
        (DAWN, ".price", 1200),  # the struck-through price: a spec must not select the block,
        (DAWN, ".price-item--sale", 1000),  # but the sale element (and `s` as list_price)
    ],
)
def test_a_shopify_price_block_reads_its_first_number(markup, price_selector, price):
    assert read_listing(f'<h3 class="field">Tee</h3>{markup}', price_selector).price == price


UNIT = {"@type": "UnitPriceSpecification", "price": "10.00"}  # no priceType: the price
SALE = {"priceType": "schema:SalePrice", "price": 10}
LIST = {"priceType": "ListPrice", "price": 15}
STRIKETHROUGH = {"priceType": "https://schema.org/StrikethroughPrice", "price": 15}


@pytest.mark.parametrize(
    ("offers", "separator", "price", "list_price"),
    [
        ({"priceSpecification": UNIT}, None, 1000, None),
        ({"priceSpecification": [LIST, UNIT]}, None, 1000, 1500),
        ({"priceSpecification": [STRIKETHROUGH, SALE]}, None, 1000, 1500),
        ({"price": 10, "priceSpecification": STRIKETHROUGH}, None, 1000, 1500),  # Google's
        ({"price": 10, "priceSpecification": STRIKETHROUGH}, ",", 1000, 1500),
        ({"priceSpecification": dict(LIST, price=15.5)}, ",", None, 1550),  # the page's price
        ({"lowPrice": "9.5", "highPrice": "20"}, None, 950, None),  # an AggregateOffer
    ],
)
def test_a_json_ld_price_specification_gives_the_price_and_list_price(
    offers, separator, price, list_price
):
    html = ld(json.dumps({"@type": "Product", "name": "Tee", "offers": offers}))
    offer = detail_offer(html, shop(currency="USD", decimal_separator=separator))
    assert (offer.price, offer.list_price, offer.currency) == (price, list_price, "USD")


@pytest.mark.parametrize(
    ("offers", "is_from"),
    [
        ({"@type": "AggregateOffer", "lowPrice": "9.5", "highPrice": "20"}, True),
        ({"@type": "AggregateOffer", "lowPrice": 9.5}, True),  # no highPrice: still the lowest
        ({"@type": "AggregateOffer", "lowPrice": "9.50", "highPrice": 9.5}, False),  # one price
        ({"price": "9.5", "lowPrice": "9.5", "highPrice": "20"}, False),  # its own price
        ({"price": "9.5"}, False),
    ],
)
def test_an_aggregate_offers_low_price_is_a_from_price(offers, is_from):
    html = ld(json.dumps({"@type": "Product", "name": "Tee", "offers": offers}))
    offer = detail_offer(html, shop(currency="USD"))
    assert (offer.price, offer.price_is_from) == (950, is_from)


def test_the_price_specifications_currency_chooses_the_offer():
    html = ld(
        '{"@type": "Product", "name": "Tee", "offers": ['
        '{"priceSpecification": {"price": 12.99, "priceCurrency": "USD"}},'
        '{"priceSpecification": {"price": 12900, "priceCurrency": "KRW"}}]}'
    )
    offer = detail_offer(html, shop(currency="KRW"))
    assert (offer.price, offer.currency) == (12900, "KRW")


def variant(size: str, price: str, currency: str, availability: str) -> dict:
    offer = {"price": price, "priceCurrency": currency, "availability": availability}
    return {"@type": "Product", "name": f"Tee {size}", "sku": f"T1-{size}", "offers": offer}


@pytest.mark.parametrize(
    ("variants", "price", "in_stock"),
    [
        (
            [
                variant("S", "9.00", "USD", "InStock"),
                variant("M", "11.00", "EUR", "OutOfStock"),
                variant("L", "12.00", "EUR", "https://schema.org/InStock"),
            ],
            1200,  # the first in stock in the shop's currency
            True,
        ),
        (
            [variant("M", "11", "EUR", "OutOfStock"), variant("L", "12", "EUR", "Discontinued")],
            1100,  # none in stock: the first in the shop's currency
            False,
        ),
    ],
)
def test_a_product_group_is_read_from_its_variants(variants, price, in_stock):
    group = {"@type": "ProductGroup", "name": "Tee", "image": "/i/tee.jpg", "hasVariant": variants}
    html = ld(json.dumps({"@context": "https://schema.org", "@graph": [group]}))
    fields = product_fields(parse_html(html), "EUR")
    assert (fields["title"], fields["image"], fields["sku"]) == ("Tee", "/i/tee.jpg", None)
    offer = detail_offer(html, shop(currency="EUR"))
    assert (offer.title, offer.price, offer.currency) == ("Tee", price, "EUR")
    assert offer.in_stock is in_stock


@pytest.mark.parametrize(
    ("price", "error"),
    [
        ('"1e999999999"', "no number in price text"),  # raised decimal.Overflow
        ('"99999999999999999999"', "no number in price text"),  # the page's price decides
        ('"9999999999999999999"', "amount too large"),  # in cents, beyond SQLite's integers
    ],
)
def test_a_json_ld_price_too_large_to_store_is_refused(price, error):
    html = ld(f'{{"@type": "Product", "name": "Tee", "offers": {{"price": {price}}}}}')
    html = html.replace("</body>", '<p class="price">Ask us</p></body>')
    offer = detail_offer(html, shop(currency="USD"))
    assert (offer.price, offer.price_error) == (None, error)
