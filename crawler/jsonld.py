"""schema.org Product/Offer data from a page's JSON-LD blocks: the most reliable source of
price, currency and stock where a shop publishes it."""

from __future__ import annotations

import json
from collections.abc import Iterator

from lxml.html import HtmlElement


def _nodes(data) -> Iterator[dict]:
    if isinstance(data, list):
        for entry in data:
            yield from _nodes(entry)
    elif isinstance(data, dict):
        yield data
        if "@graph" in data:
            yield from _nodes(data["@graph"])


def _is(node: dict, kind: str) -> bool:
    types = node.get("@type")
    return kind in (types if isinstance(types, list) else [types])


def _text(value) -> str | None:
    if isinstance(value, dict):
        value = value.get("name") or value.get("url") or value.get("@id")
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else str(value).strip() or None


def product_fields(root: HtmlElement) -> dict[str, str | None]:
    """Fields of the first JSON-LD Product: title, sku, image, category, price, currency,
    availability. Malformed blocks are skipped (shops ship broken JSON-LD too)."""
    for script in root.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json":
            continue
        try:
            data = json.loads(script.text or "")
        except (json.JSONDecodeError, TypeError):
            continue
        for node in _nodes(data):
            if not _is(node, "Product"):
                continue
            offers = node.get("offers") or {}
            offer = next(_nodes(offers), {}) if not isinstance(offers, dict) else offers
            price = offer.get("price", offer.get("lowPrice"))
            return {
                "title": _text(node.get("name")),
                "sku": _text(node.get("sku")),
                "image": _text(node.get("image")),
                "category": _text(node.get("category")),
                "price": None if price is None else str(price),
                "currency": _text(offer.get("priceCurrency")),
                "availability": _text(offer.get("availability")),
            }
    return {}
