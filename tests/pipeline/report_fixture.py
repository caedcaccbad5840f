"""A small database built through the Store API (no crawl): three shops, two crawl days,
real PNG photos and embeddings, so report figures can be checked by hand."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from db.records import Image, Offer, Prediction
from db.store import Store

DAY1 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)


@dataclass(frozen=True)
class Listing:
    shop: str
    sku: str
    title: str
    prices: tuple[int, int]  # day 1, day 2, in the currency's minor units (KRW: won)
    product: int  # which product photo (and embedding) it shows
    label: str
    in_stock: tuple[bool, bool] = (True, True)
    url: str | None = None
    image_url: str | None = None
    currency: str = "KRW"


# By hand, on day 2:
#   tee:   classic 11,900 (was 12,900, -1,000), spa 13,500 (=), menu 11,000 sold out (was 12,000)
#          cheapest in stock: classic 11,900; dearest 13,500; savings 1,600
#   boots: classic 59,000 (=), spa 52,000 (was 55,000, -3,000); cheapest spa; savings 7,000
#   bag:   menu only (one shop: not compared)
LISTINGS = (
    Listing("classic", "c-1", "Slim Cotton Tee Black M", (12900, 11900), 0, "tshirt"),
    Listing("spa", "s-1", "[SALE] Black Cotton T-Shirt", (13500, 13500), 0, "tshirt"),
    Listing("menu", "m-1", "블랙 코튼 티셔츠", (12000, 11000), 0, "tshirt", (True, False)),
    Listing("classic", "c-2", "Leather Ankle Boots Brown", (59000, 59000), 1, "ankle_boot"),
    Listing("spa", "s-2", "Brown Leather Ankle Boots", (55000, 52000), 1, "ankle_boot"),
    Listing("menu", "m-3", "Canvas Tote Bag Ivory", (30000, 30000), 2, "bag"),
)


def embedding(product: int, dims: int = 16) -> np.ndarray:
    vector = np.random.default_rng(product).normal(size=dims).astype(np.float32)
    return vector / np.linalg.norm(vector)


def photo(folder: Path, product: int, shop: str) -> Image:
    colour = ((product * 80) % 256, (product * 40 + 60) % 256, len(shop) * 20)
    path = folder / f"{product}-{shop}.png"
    PILImage.new("RGB", (28, 28), colour).save(path, format="PNG")
    data = path.read_bytes()
    return Image(hashlib.sha256(data).hexdigest(), str(path), 28, 28, "PNG", len(data))


def crawl_once(
    path: Path,
    shop: str,
    listings=(),
    day: int = 2,
    status: str = "ok",
    pages: int = 1,
    capped: bool = False,
) -> dict[str, int]:
    """One more crawl run of *shop*, on DAY1 + *day*, that sees *listings* (at their day-2
    price, stock and currency) spread over *pages* pages and ends *status* (*capped*: stopped
    at its page cap with more to read), as `pipeline.crawling` records it. Returns offer ids
    by sku."""
    images = path.parent / "images"
    when = DAY1 + timedelta(days=day)
    ids: dict[str, int] = {}
    with Store(path) as store:
        model_id = store.current_model().id
        run = store.start_crawl_run(shop, f"http://{shop}.test/")
        for page in range(pages):
            chunk = listings[page::pages]
            stored = [photo(images, item.product, shop) for item in chunk]
            offers = [
                Offer(
                    shop=shop,
                    url=item.url or f"http://{shop}.test/p/{item.sku}",
                    title=item.title,
                    price=item.prices[1],
                    currency=item.currency,
                    sku=item.sku,
                    in_stock=item.in_stock[1],
                    image_url=item.image_url or f"http://{shop}.test/img/{item.sku}.png",
                    image_sha256=image.sha256,
                    scraped_at=when,
                )
                for item, image in zip(chunk, stored, strict=True)
            ]
            saved = store.save_page(run, offers, stored)
            ids.update(zip((item.sku for item in chunk), saved, strict=True))
            store.save_predictions(
                Prediction(
                    image.sha256, model_id, item.label, 0.9, embedding(item.product).tobytes()
                )
                for item, image in zip(chunk, stored, strict=True)
            )
        store.finish_crawl_run(run, status, capped=capped)
    return ids


def build_store(path: Path, listings=LISTINGS, days: int = 2) -> dict[str, int]:
    """Create the database; returns offer ids by sku. A model and predictions are stored."""
    images = path.parent / "images"
    images.mkdir(exist_ok=True)
    ids: dict[str, int] = {}
    with Store(path) as store:
        model_id = store.register_model("fixture", "tiny", str(path.parent / "m.pt"), {}, {})
        predictions = []
        for day in range(days):
            when = DAY1 + timedelta(days=day)
            for shop in sorted({item.shop for item in listings}):
                run = store.start_crawl_run(shop, f"http://{shop}.test/")
                offers, stored = [], []
                for item in (i for i in listings if i.shop == shop):
                    image = photo(images, item.product, shop)
                    stored.append(image)
                    offers.append(
                        Offer(
                            shop=shop,
                            url=item.url or f"http://{shop}.test/p/{item.sku}",
                            title=item.title,
                            price=item.prices[day],
                            currency=item.currency,
                            sku=item.sku,
                            in_stock=item.in_stock[day],
                            image_url=item.image_url or f"http://{shop}.test/img/{item.sku}.png",
                            image_sha256=image.sha256,
                            scraped_at=when,
                        )
                    )
                    predictions.append(
                        Prediction(
                            image.sha256,
                            model_id,
                            item.label,
                            0.9,
                            embedding(item.product).tobytes(),
                        )
                    )
                for item, offer_id in zip(
                    (i for i in listings if i.shop == shop),
                    store.save_page(run, offers, stored),
                    strict=True,
                ):
                    ids[item.sku] = offer_id
                store.finish_crawl_run(run, "ok")
        store.save_predictions({p.image_sha256: p for p in predictions}.values())
    return ids
