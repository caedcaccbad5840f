"""What every demo shop shares: its assortment for a day, photos, robots.txt, the answer key."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from functools import cached_property, lru_cache

from demo.catalog import Catalog, Product
from demo.faults import NO_FAULTS, FaultPlan
from demo.photos import PhotoStyle, corrupt, decompression_bomb_png, render_photo
from demo.pricing import carries, in_stock, list_price, shop_price


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def html_response(markup: str, status: int = 200) -> Response:
    return Response(status, "text/html; charset=utf-8", markup.encode())


NOT_FOUND = Response(404, "text/plain; charset=utf-8", b"not found")


@dataclass(frozen=True)
class ShopOffer:
    """One product as this shop shows it on one day."""

    sku: str
    product: Product
    title: str
    category_name: str
    price: int
    list_price: int | None
    in_stock: bool
    faults: tuple[str, ...] = ()  # content faults switched on for this offer


class DemoShop:
    """A shop over a catalog. Subclasses choose wording, markup and interaction."""

    name = "shop"
    display_name = "Shop"
    sku_prefix = "S"
    photo_style = PhotoStyle()
    hard_photo_style = PhotoStyle()  # the `hard` mall: heavier restyling of the same photos
    page_size = 24
    shows_list_price = True  # whether sale items show a struck-through list price
    unreadable_price = "가격문의"  # what the shop shows instead of a price ("ask us")

    def __init__(
        self, catalog: Catalog, day: int = 0, faults: FaultPlan = NO_FAULTS, hard: bool = False
    ):
        self.catalog = catalog
        self.day = day
        self.faults = faults
        if hard:
            self.photo_style = self.hard_photo_style
        self._photo = lru_cache(maxsize=None)(self._render_photo)

    # -- wording, for subclasses --------------------------------------------------------

    def title_for(self, product: Product, on_sale: bool) -> str:
        raise NotImplementedError

    def category_name(self, category: str) -> str:
        raise NotImplementedError

    def detail_path(self, sku: str) -> str:
        raise NotImplementedError

    def photo_path(self, sku: str) -> str:
        return f"/images/{sku}.{self.photo_style.extension}"

    def format_price(self, amount: int) -> str:
        raise NotImplementedError

    def price_text(self, offer: ShopOffer) -> str | None:
        """The price as the page shows it; None when the price fault removed it."""
        if "missing_price" in offer.faults:
            return None
        if "bad_price" in offer.faults:
            return self.unreadable_price
        return self.format_price(offer.price)

    def product_data(self, offer: ShopOffer) -> dict:
        """The offer as schema.org JSON-LD `Product` data (KRW); a price fault shows there
        as on the page: no price, or the text shown instead of one."""
        data = {
            "@type": "Product",
            "name": offer.title,
            "sku": offer.sku,
            "url": self.detail_path(offer.sku),
            "image": self.photo_path(offer.sku),
            "category": offer.category_name,
            "brand": {"@type": "Brand", "name": offer.product.brand},
            "offers": {
                "@type": "Offer",
                "priceCurrency": "KRW",
                "availability": "https://schema.org/"
                + ("InStock" if offer.in_stock else "OutOfStock"),
                "url": self.detail_path(offer.sku),
            },
        }
        if "missing_price" not in offer.faults:
            data["offers"]["price"] = (
                self.unreadable_price if "bad_price" in offer.faults else str(offer.price)
            )
        return data

    # -- assortment ---------------------------------------------------------------------

    @cached_property
    def offers(self) -> list[ShopOffer]:
        seed, offers = self.catalog.seed, []
        for product in self.catalog.products:
            if not carries(self.name, product, seed):
                continue
            price = shop_price(self.name, product, seed, self.day)
            was = (
                list_price(self.name, product, seed, self.day, price)
                if self.shows_list_price
                else None
            )
            offers.append(
                ShopOffer(
                    sku=f"{self.sku_prefix}-{product.id[1:]}",
                    product=product,
                    title=self.title_for(product, on_sale=was is not None),
                    category_name=self.category_name(product.category),
                    price=price,
                    list_price=was,
                    in_stock=in_stock(self.name, product, seed, self.day),
                    faults=self.faults.offer_faults(self.name, product.id),
                )
            )
        return offers

    @cached_property
    def by_sku(self) -> dict[str, ShopOffer]:
        return {offer.sku: offer for offer in self.offers}

    def page(self, number: int, size: int | None = None) -> list[ShopOffer]:
        size = size or self.page_size
        start = (number - 1) * size
        return self.offers[start : start + size]

    def page_number(self, query: dict[str, str], pages: int | None = None) -> int | None:
        """The ?page= of a listing request if it exists, else None (a 404)."""
        try:
            number = int(query.get("page", "1"))
        except ValueError:
            return None
        return number if 1 <= number <= (pages or self.page_count) else None

    @property
    def page_count(self) -> int:
        return self.pages_of(self.page_size)

    def pages_of(self, size: int) -> int:
        """Listing pages at *size* offers a page."""
        return max(1, -(-len(self.offers) // size))

    # -- shared routes --------------------------------------------------------------------

    def handle(
        self, path: str, query: dict[str, str], cookies: dict[str, str] | None = None
    ) -> Response:
        if path == "/robots.txt":
            return Response(200, "text/plain", b"User-agent: *\nAllow: /\n")
        prefix = "/images/"
        if path.startswith(prefix):
            sku = path[len(prefix) :].rsplit(".", 1)[0]
            if sku in self.by_sku:
                return Response(200, self.photo_style.content_type, self._photo(sku))
            return NOT_FOUND
        return self.route(path, query, cookies or {})

    def route(self, path: str, query: dict[str, str], cookies: dict[str, str]) -> Response:
        raise NotImplementedError

    def _render_photo(self, sku: str) -> bytes:
        offer = self.by_sku[sku]
        if "bomb_image" in offer.faults:
            return decompression_bomb_png()
        photo = render_photo(self.catalog.photo(offer.product), self.photo_style)
        return corrupt(photo) if "corrupt_image" in offer.faults else photo

    def price_is_from(self, offer: ShopOffer) -> bool:
        """Whether the listing shows the price as a "from" price (sizes priced apart)."""
        text = self.price_text(offer)
        return bool(text) and text.startswith("from ")

    def answer_key(self, base_url: str) -> list[dict]:
        return [
            {
                "url": base_url + self.detail_path(o.sku),
                "sku": o.sku,
                "product_id": o.product.id,
                "category": o.product.category,
                "title": o.title,
                "price": o.price,
                "list_price": o.list_price,
                "price_is_from": self.price_is_from(o),
                "currency": "KRW",
                "in_stock": o.in_stock,
                "image_url": base_url + self.photo_path(o.sku),
                "faults": list(o.faults),
            }
            for o in self.offers
        ]


def json_ld_script(data: dict) -> str:
    """*data* in a JSON-LD script element ("</" escaped: it would end the element early)."""
    text = json.dumps({"@context": "https://schema.org", **data}, ensure_ascii=False)
    text = text.replace("</", "<\\/")  # JSON allows escaping the slash
    return f'<script type="application/ld+json">{text}</script>'


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def won(amount: int) -> str:
    return f"{amount:,}"
