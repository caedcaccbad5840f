"""Markup real shops ship, beyond the demo mall's: JSON-LD variants, srcset, XML
declarations, relative links on detail pages, discount badges, split cents, stock wording."""

from __future__ import annotations

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
