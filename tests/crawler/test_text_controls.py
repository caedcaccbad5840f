"""Control characters in a page never reach the stored text: an ESC (HTML "&#27;", JSON-LD
"\\u001b") starts the sequences that clear a terminal or plant links in it, and the bidi
controls (U+202E ...) reorder what it shows. A browser shows neither, so extraction drops them."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime

from crawler.extract import (
    RawItem,
    complete_from_detail,
    extract_fragments,
    extract_items,
    to_offer,
)
from crawler.spec import parse_spec
from crawler.text import clean_text

BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# every character a terminal may act on: the C0 and C1 controls and the bidi controls
CONTROLS = [chr(c) for c in range(0x100) if unicodedata.category(chr(c)) == "Cc"] + list(BIDI)

SPEC = parse_spec(
    {
        "name": "shop",
        "base_url": "http://shop.test",
        "start_urls": ["/"],
        "listing": {
            "item": "li.product",
            "fields": {
                "title": "h2",
                "price": ".price",
                "category": "nav",
                "url": {"selector": "a", "attr": "href"},
                "sku": {"attr": "data-sku"},
            },
        },
        "detail": {"fields": {"title": "h1"}},
    },
    "shop.toml",
)

# as a hostile shop writes it: character references the parser turns into ESC and U+202E
CARD = (
    '<li class="product" data-sku="A&#27;[5m1">'
    "<h2>Sneaker &#27;[2J&#27;[1;31mFAKE SALE&#27;[0m &#x202E;lieve</h2>"
    '<a href="/p/1">more</a><span class="price">12,900&#27;[8m원</span>'
    "<nav>Shoes &#x2066;&gt;&#x2069; Sneakers\x9b</nav></li>"
)
CLEAN = {
    "title": "Sneaker [2J[1;31mFAKE SALE[0m lieve",
    "price": "12,900[8m원",
    "category": "Shoes > Sneakers",
    "sku": "A[5m1",
}


def _has_controls(text: str) -> bool:
    return any(char in text for char in CONTROLS)


def test_a_listing_keeps_no_control_characters():
    (item,) = extract_items(f"<ul>{CARD}</ul>", SPEC)
    assert {name: item.fields[name] for name in CLEAN} == CLEAN
    (fragment,) = extract_fragments([CARD], SPEC)
    assert {name: fragment.fields[name] for name in CLEAN} == CLEAN


def test_the_stored_offer_keeps_no_control_characters():
    (item,) = extract_items(f"<ul>{CARD}</ul>", SPEC)
    offer = to_offer(item, SPEC, "http://shop.test/", datetime.now(UTC))
    stored = (offer.title, offer.sku, offer.category_raw, offer.price_raw, offer.url)
    assert not any(_has_controls(text) for text in stored)
    assert (offer.title, offer.price) == (CLEAN["title"], 12900)


def test_json_ld_text_keeps_no_control_characters():
    product = {
        "@type": "Product",
        "name": "Tee \u001b]8;;https://evil.example/\u001b\\click \u202ereversed",
        "sku": "T\u0007-1",
        "category": "Tops\u009b > \u200fShirts",
        "offers": {"@type": "Offer", "price": "12\u001b900", "priceCurrency": "KRW"},
    }
    html = f'<script type="application/ld+json">{json.dumps(product)}</script><h1>Page</h1>'
    item = complete_from_detail(RawItem({"title": "Listed"}, False), html, SPEC)
    fields = item.fields
    assert fields["title"] == "Tee ]8;;https://evil.example/\\click reversed"
    assert (fields["sku"], fields["category"], fields["price"]) == ("T-1", "Tops > Shirts", "12900")


def test_whitespace_still_reads_as_one_space_and_a_link_loses_its_line_breaks():
    html = (
        '<ul><li class="product" data-sku="A\x85B"><h2>Linen\t\x1c shirt\r\n \x85 M</h2>'
        '<a href="/p/\n1\t">x</a></li></ul>'
    )
    (item,) = extract_items(html, SPEC)
    assert item.fields["title"] == "Linen shirt M"
    # as a browser's URL parser reads it (and urllib's, which the crawl resolves links with)
    assert (item.fields["url"], item.fields["sku"]) == ("/p/1", "AB")


def test_clean_text_drops_every_control_character():
    kept = [f"U+{ord(c):04X}" for c in CONTROLS if clean_text(f"a{c}b") != "ab"]
    assert kept == []


def test_clean_text_leaves_other_text_as_it_is():
    text = "블랙 코튼 티셔츠 [SALE] – 12,900원 ½ 👟 \u00a0 \u200b \\x1b"
    assert clean_text(text) == text
