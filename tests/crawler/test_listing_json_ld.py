"""A listing page's own JSON-LD (an ItemList of Products, or loose Products) completes its
cards, matched by URL: JSON-LD first, then the card's selectors, as on detail pages."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crawler.browser import BrowserSession
from crawler.engine import crawl_shop
from crawler.extract import extract_items, parse_html, to_offer, with_listing_json_ld
from crawler.jsonld import listed_products
from crawler.spec import parse_spec

NOW = datetime(2026, 11, 24, tzinfo=UTC)

ITEM_LIST = {
    "@context": "https://schema.org",
    "@type": "ItemList",
    "itemListElement": [
        {
            "@type": "ListItem",
            "position": 1,
            "item": {
                "@type": "Product",
                "name": "Linen shirt",
                "url": "/p/1",
                "sku": "LS-1",
                "offers": {
                    "@type": "Offer",
                    "price": "1299.50",
                    "priceCurrency": "EUR",
                    "availability": "https://schema.org/OutOfStock",
                },
            },
        },
        {  # the product's URL on its ListItem
            "@type": "ListItem",
            "url": "https://shop.example/p/2",
            "item": {
                "@type": "Product",
                "name": "Wool coat",
                "offers": {"@type": "AggregateOffer", "lowPrice": 80, "highPrice": 120},
            },
        },
        {"@type": "ListItem", "item": {"@type": "Product", "name": "No URL", "offers": {}}},
    ],
}
LOOSE = {"@graph": [{"@type": "schema:Product", "url": "/p/3", "name": "Canvas bag"}]}


def card(n: int, price: str) -> str:
    return (
        f'<li class="item"><a href="/p/{n}">Card title {n}</a>'
        f'<span class="price">{price}</span><span class="stock">in stock</span></li>'
    )


CARDS = card(1, "Call us") + card(2, "80,00 €") + card(3, "15,00 €") + card(4, "9,00 €")
PAGE = (
    "<html><head>"
    f'<script type="application/ld+json">{json.dumps(ITEM_LIST)}</script>'
    f'<script type="application/ld+json; charset=utf-8">{json.dumps(LOOSE)}</script>'
    '<script type="application/ld+json">{ broken</script>'
    f"</head><body><ul>{CARDS}</ul></body></html>"
)


def spec(base_url="https://shop.example", json_ld=True):
    return parse_spec(
        {
            "name": "shop",
            "base_url": base_url,
            "start_urls": ["/list"],
            "currency": "EUR",
            "decimal_separator": ",",
            "listing": {
                "item": "li.item",
                "json_ld": json_ld,
                "fields": {"title": "a", "price": ".price", "url": "a", "stock": ".stock"},
            },
        },
        "shop.toml",
    )


def offers(shop, blocks, page_url="https://shop.example/list"):
    items = extract_items(PAGE, shop)
    completed = with_listing_json_ld(items, blocks, page_url, shop)
    read = (to_offer(item, shop, page_url, NOW) for item in completed)
    return {offer.url.rsplit("/", 1)[1]: offer for offer in read}


def blocks_of(page: str) -> list[str]:
    root = parse_html(page)
    return [s.text for s in root.iter("script")]


def test_products_are_found_in_item_lists_list_items_and_graphs_by_their_url():
    found = listed_products(blocks_of(PAGE), "EUR")
    assert sorted(found) == ["/p/1", "/p/3", "https://shop.example/p/2"]  # none without a URL
    assert found["/p/1"]["price"] == "1299.5" and found["/p/1"]["sku"] == "LS-1"
    assert found["https://shop.example/p/2"]["price_is_from"] == "yes"


def test_products_are_found_in_a_pages_main_entity_and_by_a_link_id():
    page = {
        "@type": "CollectionPage",
        "mainEntity": {
            "@type": "ItemList",
            "itemListElement": [
                {"@type": "Product", "@id": "https://shop.example/p/5#product", "name": "A"},
                {"@type": "Product", "@id": "_:b1", "name": "Not a link"},
            ],
        },
    }
    found = listed_products([json.dumps(page)])
    assert list(found) == ["https://shop.example/p/5#product"]
    shop = spec()
    items = with_listing_json_ld(
        extract_items(card(5, "5,00 €"), shop), [json.dumps(page)], "https://shop.example/", shop
    )
    assert items[0].fields["title"] == "A"  # the fragment of the @id is no part of the link


def test_json_ld_comes_first_then_the_cards_selectors():
    by_path = offers(spec(), blocks_of(PAGE))
    first, second, third, fourth = (by_path[str(n)] for n in (1, 2, 3, 4))
    # the card's "Call us" and stock wording give way to the JSON-LD offer
    assert (first.title, first.sku, first.in_stock) == ("Linen shirt", "LS-1", False)
    assert first.price == 129950
    assert (second.price, second.price_is_from) == (8000, True)  # an AggregateOffer's lowPrice
    assert (third.title, third.price) == ("Canvas bag", 1500)  # no offer there: the card's price
    assert (fourth.title, fourth.price, fourth.in_stock) == ("Card title 4", 900, True)


def test_json_ld_off_reads_the_cards_alone():
    by_path = offers(spec(json_ld=False), blocks_of(PAGE))
    assert by_path["1"].price is None and by_path["1"].title == "Card title 1"
    assert by_path["2"].price_is_from is False


class _Listing(BaseHTTPRequestHandler):
    def do_GET(self):
        body = PAGE.encode() if self.path == "/list" else b"<html><body>no</body></html>"
        self.send_response(200 if self.path in ("/list", "/robots.txt") else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.browser
def test_a_crawl_reads_the_listings_json_ld_in_the_same_round_trip(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Listing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        shop = spec(f"http://127.0.0.1:{server.server_port}")
        pages, failures = [], []
        with BrowserSession() as session:
            crawl_shop(shop, session.driver, tmp_path, pages.append, failures.append)
    finally:
        server.shutdown()
    crawled = {o.url.rsplit("/", 1)[1]: o for p in pages for o in p.offers}
    assert failures == []
    assert (crawled["1"].title, crawled["1"].price, crawled["1"].in_stock) == (
        "Linen shirt",
        129950,
        False,
    )
    assert crawled["3"].title == "Canvas bag" and crawled["4"].title == "Card title 4"
    # a product listed under another host's URL is not this card's
    assert (crawled["2"].title, crawled["2"].price_is_from) == ("Card title 2", False)
