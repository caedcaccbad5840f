"""Extraction from one page source in one pass: no WebDriver call per field."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, Tag

from crawler.jsonld import product_fields
from crawler.prices import parse_price
from crawler.spec import FIELD_NAMES, FieldRule, ShopSpec
from db.records import Offer


@dataclass(frozen=True)
class RawItem:
    """The strings found for one listing item, before any interpretation."""

    fields: dict[str, str | None]
    sold_out: bool
    currency: str | None = None  # stated by the page (JSON-LD), else the spec's


_AVAILABLE = ("InStock", "InStoreOnly", "OnlineOnly", "LimitedAvailability", "PreOrder")


def _text(element: Tag) -> str:
    return " ".join(element.get_text(" ", strip=True).split())


def _read(item: Tag, rule: FieldRule) -> str | None:
    element = item if rule.selector is None else item.select_one(rule.selector)
    if element is None:
        return None
    if not rule.attrs:
        return _text(element) or None
    for attr in rule.attrs:
        value = element.get(attr)
        if isinstance(value, list):
            value = " ".join(value)
        if value and not value.startswith("data:"):
            return value.strip()
    return None


def extract_items(html: str, spec: ShopSpec) -> list[RawItem]:
    soup = BeautifulSoup(html, "lxml")
    items = []
    for element in soup.select(spec.listing.item):
        fields = {name: _read(element, rule) for name, rule in spec.listing.fields.items()}
        sold_out = bool(spec.listing.sold_out and element.select_one(spec.listing.sold_out))
        items.append(RawItem(fields, sold_out))
    return items


def complete_from_detail(item: RawItem, html: str, spec: ShopSpec) -> RawItem:
    """Merge a detail page into a listing item: JSON-LD first, then the detail selectors,
    then what the listing showed."""
    detail = spec.detail
    soup = BeautifulSoup(html, "lxml")
    found = {name: _read(soup, rule) for name, rule in detail.fields.items()}
    data = product_fields(soup) if detail.json_ld else {}
    fields = dict(item.fields)
    for name in FIELD_NAMES:
        value = data.get(name) or found.get(name)
        if value:
            fields[name] = value
    sold_out = item.sold_out
    if detail.sold_out:
        sold_out = soup.select_one(detail.sold_out) is not None
    if data.get("availability"):
        sold_out = not data["availability"].rsplit("/", 1)[-1].startswith(_AVAILABLE)
    return RawItem(fields, sold_out, data.get("currency") or item.currency)


def safe_http_url(url: str | None, page_url: str) -> str | None:
    """Resolve *url* against the page; only http(s) links survive (no javascript:, data:)."""
    if not url:
        return None
    absolute = urljoin(page_url, url.strip())
    return absolute if urlsplit(absolute).scheme in ("http", "https") else None


def to_offer(item: RawItem, spec: ShopSpec, page_url: str, scraped_at: datetime) -> Offer | None:
    """Interpret one item; None when it has no usable URL or title (nothing to key it by)."""
    f = item.fields
    url = safe_http_url(f.get("url"), page_url)
    title = f.get("title")
    if not url or not title:
        return None
    currency = item.currency or spec.currency
    price = parse_price(f.get("price"), currency, spec.decimal_separator)
    was = (
        parse_price(f.get("list_price"), currency, spec.decimal_separator)
        if f.get("list_price")
        else None
    )
    return Offer(
        shop=spec.name,
        url=url.split("#", 1)[0],
        sku=f.get("sku"),
        title=title,
        price=price.amount,
        currency=price.currency,
        list_price=was.amount if was else None,
        in_stock=not item.sold_out,
        category_raw=f.get("category"),
        image_url=safe_http_url(f.get("image"), page_url),
        price_raw=price.raw or None,
        price_error=price.error,
        scraped_at=scraped_at,
    )
