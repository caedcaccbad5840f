"""Extraction from page HTML (lxml + compiled CSS selectors): the text a reader sees, attribute
fallbacks, sold-out markers, JSON-LD Product data before the detail selectors, and pages that
are empty or broken."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crawler.errors import SpecError
from crawler.extract import (
    RawItem,
    complete_from_detail,
    extract_fragments,
    extract_items,
    list_price_problem,
    to_offer,
)
from crawler.spec import parse_spec
from crawler.stock import in_stock

LISTING = """<!doctype html><html><body><ul class="grid">
<li class="product" data-sku="A1">
  <a class="link" href="/p/a1"><h2 class="name">  Linen
     <b>shirt</b><!-- a comment --> <script>var hidden = 1;</script><style>.x{}</style>
  </h2></a>
  <img src="data:image/gif;base64,R0lGOD" data-src="/img/a1.jpg">
  <span class="price">12,900원</span>
</li>
<li class="product" data-sku="B2">
  <a class="link" href="/p/b2"><h2 class="name">Wool coat</h2></a>
  <img src="/img/b2.jpg">
  <span class="sold-out">품절</span>
</li>
<li class="product"><h2 class="name">No link, no price</h2></li>
</ul></body></html>"""

DETAIL = """<html><head>
<script type="application/ld+json">{not json</script>
<script type="application/ld+json">{"@context": "https://schema.org", "@graph": [
  {"@type": "BreadcrumbList"},
  {"@type": ["Product"], "name": "Linen shirt (JSON-LD)", "sku": "A1",
   "offers": [{"@type": "Offer", "price": "11900", "priceCurrency": "USD",
               "availability": "https://schema.org/OutOfStock"}]}]}</script>
</head><body><h1 class="title">Linen shirt (page)</h1><p class="price">13,900원</p>
<nav class="crumbs">Tops &gt; Shirts</nav></body></html>"""


def spec(**detail):
    data = {
        "name": "shop",
        "base_url": "http://shop.test",
        "start_urls": ["/"],
        "listing": {
            "item": "ul.grid > li.product",
            "sold_out": ".sold-out",
            "fields": {
                "title": "h2.name",
                "price": ".price",
                "url": {"selector": "a.link", "attr": "href"},
                "image": {"selector": "img", "attr": ["data-src", "src"]},
                "sku": {"attr": "data-sku"},
            },
        },
    }
    if detail:
        data["detail"] = detail
    return parse_spec(data, "shop.toml")


def test_items_read_as_a_reader_sees_them():
    items = extract_items(LISTING, spec())
    assert [item.fields["title"] for item in items] == [
        "Linen shirt",  # whitespace folded; comments, scripts and styles are not text
        "Wool coat",
        "No link, no price",
    ]
    assert [item.fields["price"] for item in items] == ["12,900원", None, None]
    assert [item.fields["url"] for item in items] == ["/p/a1", "/p/b2", None]
    # the first non-empty attribute wins, and a data: placeholder is not a photo
    assert [item.fields["image"] for item in items] == ["/img/a1.jpg", "/img/b2.jpg", None]
    assert [item.fields["sku"] for item in items] == ["A1", "B2", None]  # the item's own attr
    assert [item.sold_out for item in items] == [False, True, False]


def test_a_link_or_photo_without_attr_is_read_from_its_address_not_its_text():
    """`url = "a.link"`, `image = "img"`: the href, and a lazy photo's real address (data-src,
    else the widest of a srcset, else src), as a spec that names them would read them."""
    data = {
        "name": "shop",
        "start_urls": ["/"],
        "listing": {
            "item": "ul.grid > li.product",
            "fields": {"title": "h2.name", "price": ".price", "url": "a.link", "image": "img"},
        },
    }
    srcset = '<img src="/s.jpg" srcset="/m.jpg 320w, /l.jpg 640w">'
    html = LISTING.replace('<img src="/img/b2.jpg">', srcset)
    items = extract_items(html, parse_spec(data, "shop.toml"))
    assert [item.fields["url"] for item in items] == ["/p/a1", "/p/b2", None]
    assert [item.fields["image"] for item in items] == ["/img/a1.jpg", "/l.jpg", None]


def test_field_selectors_look_inside_the_item_not_at_it():
    html = '<div class="card"><div class="card">inner</div><b>x</b></div>'
    fields = {"title": "div.card", "price": "b", "url": "b"}
    data = {
        "name": "shop",
        "start_urls": ["/"],
        "listing": {"item": "body > div", "fields": fields},
    }
    (item,) = extract_items(html, parse_spec(data, "shop.toml"))
    assert item.fields["title"] == "inner"  # like querySelector: the item itself never matches


def test_a_field_may_repeat_the_items_own_selector():
    data = {
        "name": "shop",
        "start_urls": ["/"],
        "listing": {
            "item": "li.product",
            "fields": {"title": "li.product .name", "price": ".price", "url": "a"},
        },
    }
    html = '<ul><li class="product"><b class="name">Cap</b><i class="price">1</i></li></ul>'
    (item,) = extract_items(html, parse_spec(data, "shop.toml"))
    assert (item.fields["title"], item.fields["price"]) == ("Cap", "1")
    (same,) = extract_fragments([html[4:-5]], parse_spec(data, "shop.toml"))
    assert same.fields["title"] == "Cap"


def test_an_item_the_parser_splits_is_read_whole():
    # a link inside a link: HTML parsers split it in two; both parts stay one item
    (item,) = extract_fragments(
        [
            '<a class="card" href="/p/1" data-sku="S1"><b class="name">Hat</b>'
            '<a href="/brand">Brand</a><span class="price">9</span></a>'
        ],
        parse_spec(
            {
                "name": "shop",
                "start_urls": ["/"],
                "listing": {
                    "item": "a.card",
                    "fields": {
                        "title": ".name",
                        "price": ".price",
                        "url": {"attr": "href"},
                        "sku": {"attr": "data-sku"},
                    },
                },
            },
            "shop.toml",
        ),
    )
    assert (item.fields["title"], item.fields["price"]) == ("Hat", "9")
    assert (item.fields["url"], item.fields["sku"]) == ("/p/1", "S1")


def test_items_from_their_own_html_read_like_items_in_a_page():
    fragments = [
        '<li class="product" data-sku="Z9"><h2 class="name">Cap</h2>'
        '<span class="price">5,000원</span><a class="link" href="/p/z9">x</a></li>',
        "text, not an element",
        "",
    ]
    item, junk = extract_fragments(fragments, spec())  # "" is nothing at all
    assert (item.fields["title"], item.fields["price"], item.fields["sku"]) == (
        "Cap",
        "5,000원",
        "Z9",
    )
    # text alone is an item with nothing usable: the crawl skips it for want of a link and
    # says so, instead of losing it silently
    assert junk.fields["url"] is None and junk.fields["title"] is None


@pytest.mark.parametrize("html", ["", "   ", "<html>", "not html at all", "<li class=product>"])
def test_empty_or_broken_pages_give_no_items_and_no_error(html):
    assert extract_items(html, spec()) == []


def test_json_ld_product_comes_before_the_detail_selectors_and_the_listing():
    detail_spec = spec(fields={"title": "h1.title", "price": ".price", "category": "nav.crumbs"})
    listed = RawItem({"title": "Linen shirt", "price": None, "url": "/p/a1"}, False)
    item = complete_from_detail(listed, DETAIL, detail_spec)
    assert item.fields["title"] == "Linen shirt (JSON-LD)"  # a broken block is skipped
    assert item.fields["price"] == "11900"
    assert item.fields["category"] == "Tops > Shirts"  # not in JSON-LD: the selector's
    assert item.fields["url"] == "/p/a1"  # only the listing has it
    assert item.currency == "USD" and item.sold_out  # availability OutOfStock


def test_without_json_ld_the_detail_selectors_decide():
    detail_spec = spec(json_ld=False, fields={"title": "h1.title", "price": ".price"})
    listed = RawItem({"title": "Linen shirt", "price": None}, False)
    item = complete_from_detail(listed, DETAIL, detail_spec)
    assert (item.fields["title"], item.fields["price"]) == ("Linen shirt (page)", "13,900원")
    assert item.currency is None and not item.sold_out


@pytest.mark.parametrize(
    "selector, reason",
    [("li..product", "Expected"), ("li::before", "Pseudo-elements"), ("li[", "Expected")],
)
def test_a_selector_the_extractor_cannot_run_is_refused_when_the_spec_loads(selector, reason):
    data = {
        "name": "shop",
        "start_urls": ["/"],
        "listing": {"item": selector, "fields": {"title": "h2", "price": "p", "url": "a"}},
    }
    with pytest.raises(SpecError) as caught:
        parse_spec(data, "shop.toml")
    message = str(caught.value)
    assert "shop.toml" in message and "'listing.item'" in message and reason in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("In stock", True),
        ("Only 3 left!", True),
        ("https://schema.org/InStock", True),
        ("재고 있음", True),
        ("Sold out", False),
        ("Out of stock", False),
        ("Not available", False),
        ("0 left", False),
        ("https://schema.org/OutOfStock", False),
        ("품절", False),
        ("Ausverkauft", False),
        ("Ships in 3 weeks", None),
        ("", None),
        (None, None),
    ],
)
def test_stock_text_is_read_as_in_or_out_of_stock_or_unknown(text, expected):
    assert in_stock(text) is expected


def test_a_stock_field_decides_stock_unless_the_sold_out_marker_is_there():
    data = {
        "name": "shop",
        "base_url": "http://shop.example",
        "start_urls": ["/"],
        "listing": {
            "item": "li",
            "sold_out": ".gone",
            "fields": {"title": "b", "price": "i", "url": {"attr": "data-url"}, "stock": "em"},
        },
    }
    html = (
        '<ul><li data-url="/1"><b>A</b><i>1</i><em>In stock</em></li>'
        '<li data-url="/2"><b>B</b><i>1</i><em>Out of stock</em></li>'
        '<li data-url="/3"><b>C</b><i>1</i><em>In stock</em><s class="gone"></s></li>'
        '<li data-url="/4"><b>D</b><i>1</i><em>Ask us</em></li></ul>'
    )
    spec = parse_spec(data, "shop.toml")
    now = datetime.now(UTC)
    offers = [
        to_offer(item, spec, "http://shop.example/", now) for item in extract_items(html, spec)
    ]
    assert [offer.in_stock for offer in offers] == [True, False, False, None]


def test_a_from_price_is_kept_as_such():
    spec = parse_spec(
        {
            "name": "shop",
            "base_url": "http://shop.example",
            "start_urls": ["/"],
            "listing": {"item": "li", "fields": {"title": "b", "price": "i", "url": "a"}},
        },
        "shop.toml",
    )
    html = '<ul><li><a href="/cap"><b>Cap</b></a><i>from 9,900원</i></li></ul>'
    items = extract_items(html, spec)
    offer = to_offer(items[0], spec, "http://shop.example/", datetime.now(UTC))
    assert (offer.price, offer.price_is_from) == (9900, True)


def test_an_unreadable_list_price_is_said_and_the_offer_kept_without_it():
    data = {
        "name": "shop",
        "start_urls": ["/"],
        "listing": {
            "item": "li",
            "fields": {"title": "b", "price": "i", "url": "a", "list_price": "s"},
        },
    }
    spec = parse_spec(data, "shop.toml")
    html = (
        '<ul><li><a href="/a"><b>Cap</b></a><i>9,900원</i><s>was 12,9OO원</s></li>'
        '<li><a href="/b"><b>Hat</b></a><i>9,900원</i><s>12,900원</s></li></ul>'
    )
    bad, good = extract_items(html, spec)
    offer = to_offer(bad, spec, "http://shop.example/", datetime.now(UTC))
    assert (offer.price, offer.list_price) == (9900, None)
    problem = list_price_problem(bad, spec)
    assert problem.startswith("list price 'was 12,9OO원' not read (")
    assert problem.endswith("; stored without it")
    assert list_price_problem(good, spec) is None
