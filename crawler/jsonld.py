"""schema.org Product/Offer data from a page's JSON-LD blocks: the most reliable source of
price, currency and stock where a shop publishes it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

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
    """Whether *node* is of type *kind*, written plain, prefixed ("schema:Product") or as a
    URL ("https://schema.org/Product")."""
    types = node.get("@type")
    names = types if isinstance(types, list) else [types]
    return any(isinstance(name, str) and _schema_name(name) == kind for name in names)


def _schema_name(value: str) -> str:
    """A schema.org name written plain, prefixed or as a URL: ".../InStock/" -> "InStock"."""
    return value.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def _text(value, keys: tuple[str, ...] = ("name", "url", "@id")) -> str | None:
    """A field's text: an object gives its first of *keys*, a list its first entry."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = next((value[k] for k in keys if isinstance(value.get(k), str)), None)
    return None if value is None else " ".join(str(value).split()) or None


_IMAGE_KEYS = ("url", "contentUrl", "@id")  # an ImageObject's name is a caption


def _price(value) -> str | None:
    """schema.org's price, always with '.' as the decimal point and no grouping ("12.99",
    12.99, "1299.000"), as plain digits ("12.99", "1299"); other text ("12,900") as is."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return str(value).strip() or None
    if not number.is_finite() or number <= 0:  # 0: a placeholder ("ask us"), not a price
        return None
    if number.adjusted() >= 19:  # no price: beyond any SQLite integer (and normalize's range)
        return None
    return f"{number.normalize():f}"


def _offer(offers, currency: str | None) -> dict:
    """The offer to read: among several (one per variant, or per currency), the first in
    *currency* (the shop's) that is in stock, else the first in it, else the first."""
    found = [o for o in _nodes(offers) if isinstance(o, dict)]
    if not found:
        return {}
    mine = [o for o in found if _currency(o) in (None, currency)] or found
    stocked = [o for o in mine if in_stock_availability(_text(o.get("availability")))]
    return (stocked or mine)[0]


def _currency(offer: dict) -> str | None:
    return _text(_current(offer).get("priceCurrency") or offer.get("priceCurrency"))


def _current(offer: dict) -> dict:
    """The node holding *offer*'s price: the offer, else the priceSpecification entry that
    is the current price (no priceType, or a SalePrice); {} if there is none."""
    if any(offer.get(key) is not None for key in ("price", "lowPrice")):
        return offer
    return next((s for s in _specifications(offer) if _price_type(s) in _CURRENT), {})


def _list_price(offer: dict) -> str | None:
    """The struck-through price a priceSpecification states (a ListPrice or StrikethroughPrice
    entry, as Google's merchant listings ask for)."""
    entry = next((s for s in _specifications(offer) if _price_type(s) in _LIST), {})
    return _price(entry.get("price"))


def _specifications(offer: dict) -> list[dict]:
    return [s for s in _nodes(offer.get("priceSpecification")) if isinstance(s, dict)]


def _price_type(specification: dict) -> str | None:
    """priceType's name, lower case: "https://schema.org/SalePrice" -> "saleprice"."""
    name = _text(specification.get("priceType"))
    return _schema_name(name).lower() if name else None


_CURRENT = (None, "saleprice")
_LIST = ("listprice", "strikethroughprice")


def in_stock_availability(value: str | None) -> bool:
    """Whether a schema.org availability ("InStock", ".../InStock", "schema:instock") says
    the item can be bought."""
    if not value:
        return False
    return _schema_name(value).lower() in _AVAILABLE


_AVAILABLE = {
    "instock",
    "instoreonly",
    "onlineonly",
    "limitedavailability",
    "preorder",
    "presale",
    "backorder",
    "madetoorder",
}


def _blocks(root: HtmlElement) -> Iterator[object]:
    """Each JSON-LD block's data. A broken one is skipped (shops ship broken JSON-LD too),
    after forgiving what they commonly break: raw newlines in strings, HTML comment or
    CDATA wrappers, a trailing ';'."""
    for script in root.iter("script"):
        kind = (script.get("type") or "").split(";", 1)[0].strip().lower()
        if kind == "application/ld+json":
            yield from _parsed(script.text)


def _parsed(text: str | None) -> Iterator[object]:
    """One JSON-LD block's data, if it parses (as forgiven in _blocks)."""
    text = _WRAPPERS.sub("", text or "").strip().rstrip(";")
    try:
        yield json.loads(text, strict=False)
    except (json.JSONDecodeError, TypeError):
        return


_WRAPPERS = re.compile(r"^\s*(<!--|//\s*<!\[CDATA\[)|(-->|//\s*\]\]>)\s*$")


def product_fields(root: HtmlElement, currency: str | None = None) -> dict[str, str | None]:
    """Fields of the page's JSON-LD Product or ProductGroup (the first with offers, else the
    first): title, sku, image, category, price, list price, currency, availability; its
    offer in *currency* (the shop's) where it has several, a group's among its variants'."""
    products = [node for data in _blocks(root) for node in _nodes(data) if _is_product(node)]
    if not products:
        return {}
    return _fields(next((p for p in products if _offers(p)), products[0]), currency)


def listed_products(blocks: list[str], currency: str | None = None) -> dict[str, dict]:
    """The fields of each Product (or ProductGroup) a listing page's JSON-LD *blocks* (their
    texts) describe, loose or in an ItemList, by its URL as written (a ListItem's when the
    product has none); the first of a URL wins. Products without a URL are left out: only a
    URL ties one to its card."""
    found: dict[str, dict] = {}
    for text in blocks:
        for data in _parsed(text):
            for url, node in _listed(data):
                if url and url not in found:
                    found[url] = _fields(node, currency)
    return found


def _listed(data, url: str | None = None) -> Iterator[tuple[str | None, dict]]:
    """(URL, product) for each product in *data*: loose, in an ItemList's ListItems, or in
    a page's mainEntity (a CollectionPage's list). A product without a `url` goes by its
    ListItem's, else by its own `@id` when that is a link ("https://shop/p/1#product")."""
    for node in _nodes(data):
        if _is_product(node):
            yield _text(node.get("url"), ("url", "@id")) or url or _link_id(node), node
        elif _is(node, "ItemList"):
            yield from _listed(node.get("itemListElement"))
        elif _is(node, "ListItem") and isinstance(node.get("item"), dict):
            yield from _listed(node["item"], _text(node.get("url"), ("url", "@id")))
        elif isinstance(node.get("mainEntity"), dict | list):
            yield from _listed(node["mainEntity"])


def _link_id(node: dict) -> str | None:
    """The node's `@id` if it is a link (an absolute http(s) URL or a path), else None: an
    `@id` may be any identifier ("_:b0", "sku-123")."""
    value = node.get("@id")
    if isinstance(value, str) and (value.startswith(("http://", "https://", "/"))):
        return value
    return None


def _fields(node: dict, currency: str | None) -> dict[str, str | None]:
    offer = _offer(_offers(node), currency)
    current = _current(offer)
    return {
        "title": _text(node.get("name")),
        "sku": _text(node.get("sku")),
        "image": _text(node.get("image"), _IMAGE_KEYS),
        "category": _text(node.get("category")),
        "price": _price(current.get("price", current.get("lowPrice"))),
        "price_is_from": _is_from(current),
        "list_price": _list_price(offer),
        "currency": _currency(offer),
        "availability": _text(offer.get("availability")),
    }


def _is_from(offer: dict) -> str | None:
    """ "yes" when the price is an AggregateOffer's lowPrice, unless its highPrice is the same:
    the lowest of several offers, as a "from 9,900" price is; else None."""
    low = None if offer.get("price") is not None else _price(offer.get("lowPrice"))
    if low is None or _price(offer.get("highPrice")) == low:  # _price writes numbers alike
        return None
    return "yes"


def _is_product(node: dict) -> bool:
    return _is(node, "Product") or _is(node, "ProductGroup")


def _offers(product: dict):
    """*product*'s offers; a ProductGroup's are its variants' (hasVariant) where it has none."""
    if product.get("offers"):
        return product["offers"]
    return [
        variant["offers"] for variant in _nodes(product.get("hasVariant")) if variant.get("offers")
    ]
