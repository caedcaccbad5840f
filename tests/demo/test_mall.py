"""The demo mall over real HTTP: determinism, day drift, photos, and the unserved answer key."""

from __future__ import annotations

import hashlib
import io
import json
import urllib.error
import urllib.request

import pytest
from PIL import Image

from crawler.extract import parse_html
from crawler.jsonld import listed_products
from demo.mall import MallSettings, build_shops, run_mall


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_same_seed_serves_the_same_pages_and_photos():
    settings = MallSettings(seed=3, products=40)
    pages = []
    for _ in range(2):
        with run_mall(settings) as running:
            classic, spa = running.base_urls["classic"], running.base_urls["spa"]
            first = running.answer_key()["shops"]["classic"]["offers"][0]
            photo = get(first["image_url"])[1]
            pages.append(
                (
                    get(classic + "/products?page=2")[1],
                    get(spa + "/api/products")[1],
                    hashlib.sha256(photo).hexdigest(),
                )
            )
    assert pages[0] == pages[1]


def test_another_seed_changes_the_assortment():
    one = build_shops(MallSettings(seed=1, products=40))["classic"].offers
    two = build_shops(MallSettings(seed=2, products=40))["classic"].offers
    assert [o.title for o in one] != [o.title for o in two]


def test_a_later_day_changes_some_prices_but_not_all():
    day0 = {o.sku: o.price for o in build_shops(MallSettings(products=200, day=0))["spa"].offers}
    day1 = {o.sku: o.price for o in build_shops(MallSettings(products=200, day=1))["spa"].offers}
    changed = [sku for sku in day0 if day0[sku] != day1[sku]]
    assert 0.2 * len(day0) < len(changed) < 0.6 * len(day0)
    assert any(day1[s] > day0[s] for s in changed) and any(day1[s] < day0[s] for s in changed)


def test_each_shop_carries_about_seventy_percent_of_the_catalog():
    shops = build_shops(MallSettings(products=400))
    for shop in shops.values():
        assert 0.6 * 400 < len(shop.offers) < 0.8 * 400
    skus = [{o.product.id for o in shop.offers} for shop in shops.values()]
    assert len(skus[0] & skus[1]) > 0.35 * 400  # products overlap across shops


def test_classic_pages_link_to_the_next_until_the_last(mall):
    base = mall.base_urls["classic"]
    shop = mall.servers["classic"].shop
    status, last = get(f"{base}/products?page={shop.page_count}")
    assert status == 200 and b'class="next"' not in last
    status, first = get(f"{base}/products?page=1")
    assert b'rel="next" href="/products?page=2"' in first
    assert get(f"{base}/products?page={shop.page_count + 1}")[0] == 404


def test_classic_listing_pages_publish_their_products_as_json_ld(mall):
    """An ItemList of the page's products, as the answer key has them (titles, prices as
    schema.org writes them, stock), for the crawler's listing JSON-LD to read first."""
    base = mall.base_urls["classic"]
    _, page = get(f"{base}/products?page=2")
    blocks = [s.text for s in parse_html(page.decode()).iter("script")]
    listed = listed_products(blocks, "KRW")
    truth = {o["url"]: o for o in mall.answer_key()["shops"]["classic"]["offers"]}
    shop = mall.servers["classic"].shop
    assert len(listed) == len(shop.page(2, shop.page_size)) > 0
    for path, data in listed.items():
        offer = truth[base + path]
        assert (data["title"], data["price"]) == (offer["title"], str(offer["price"]))
        assert data["availability"].endswith("InStock") == offer["in_stock"]


def test_photos_are_real_images_in_each_shop_style(mall):
    for name, expected in (("classic", ("PNG", 112)), ("spa", ("JPEG", 128))):
        offer = mall.answer_key()["shops"][name]["offers"][0]
        status, body = get(offer["image_url"])
        assert status == 200
        with Image.open(io.BytesIO(body)) as photo:
            assert (photo.format, photo.width) == expected


def test_photos_carry_an_etag_and_an_unchanged_one_is_answered_304(mall):
    url = mall.answer_key()["shops"]["classic"]["offers"][0]["image_url"]
    with urllib.request.urlopen(url, timeout=10) as response:
        etag, body = response.headers["ETag"], response.read()
    assert etag.startswith('"') and body
    asked = urllib.request.Request(url, headers={"If-None-Match": etag})
    with pytest.raises(urllib.error.HTTPError) as answer:  # urllib raises on a 304
        urllib.request.urlopen(asked, timeout=10)
    assert answer.value.code == 304 and answer.value.read() == b""
    assert answer.value.headers["ETag"] == etag
    stale = urllib.request.Request(url, headers={"If-None-Match": '"an-older-photo"'})
    with urllib.request.urlopen(stale, timeout=10) as response:
        assert response.status == 200 and response.read() == body


def test_answer_key_lists_every_offer_with_its_truth(mall, tmp_path):
    path = mall.write_answer_key(tmp_path / "key.json")
    key = json.loads(path.read_text())
    for name, data in key["shops"].items():
        shop = mall.servers[name].shop
        assert len(data["offers"]) == len(shop.offers)
        offer = data["offers"][0]
        assert {"url", "product_id", "category", "title", "price", "currency", "in_stock"} <= set(
            offer
        )
        assert offer["url"].startswith(mall.base_urls[name])


@pytest.mark.parametrize(
    "path",
    [
        "/answer-key.json",
        "/demo/answer-key.json",
        "/../key.json",
        "/products/../answer-key.json",
        "/api/answer-key",
    ],
)
def test_the_answer_key_is_not_served(mall, path):
    for base in mall.base_urls.values():
        status, body = get(base + path)
        assert status == 404
        assert b"product_id" not in body


def test_the_mall_scales_to_ten_thousand_offers_per_shop():
    shops = build_shops(MallSettings(products=14_500))
    for shop in shops.values():
        assert len(shop.offers) >= 10_000
    classic = shops["classic"]
    last = classic.handle("/products", {"page": str(classic.page_count)})
    assert last.status == 200 and classic.offers[-1].title.encode() in last.body
    assert b'class="page"' in last.body and last.body.count(b'class="page') < 15
