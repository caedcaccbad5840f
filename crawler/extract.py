"""Extraction from one page source in one pass: no WebDriver call per field.

lxml parses and compiled CSS selectors (cssselect) query: on a listing page of 24 items that is
about 0.3 ms to parse where BeautifulSoup's tree took 5.5 ms, and a "load more" listing is
parsed again after every click."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

import lxml.html
from cssselect import HTMLTranslator
from lxml import etree
from lxml.etree import ParserError

from crawler.jsonld import product_fields
from crawler.prices import parse_price
from crawler.spec import FIELD_NAMES, FieldRule, ShopSpec
from crawler.stock import in_stock
from db.records import Offer


@dataclass(frozen=True)
class RawItem:
    """The strings found for one listing item, before any interpretation."""

    fields: dict[str, str | None]
    sold_out: bool
    currency: str | None = None  # stated by the page (JSON-LD), else the spec's


_AVAILABLE = ("InStock", "InStoreOnly", "OnlineOnly", "LimitedAvailability", "PreOrder")
_UNREAD = frozenset({"script", "style", "template"})  # their text is code, not content


@lru_cache(maxsize=512)
def css(selector: str) -> etree.XPath:
    """*selector* compiled once (to XPath); spec loading has already checked it compiles.
    It is matched within the element it is applied to, that element included, so a field
    may repeat the item's own selector ("li.product .name"); see `below`."""
    return etree.XPath(HTMLTranslator().css_to_xpath(selector, prefix="descendant-or-self::"))


def below(root: lxml.html.HtmlElement, selector: str) -> list[lxml.html.HtmlElement]:
    """Elements under *root* that *selector* matches: never *root* itself."""
    return [element for element in css(selector)(root) if element is not root]


def parse_html(html: str) -> lxml.html.HtmlElement:
    try:
        return lxml.html.document_fromstring(html)
    except (ParserError, ValueError):  # an empty document
        return lxml.html.document_fromstring("<html></html>")


def first(root: lxml.html.HtmlElement, selector: str) -> lxml.html.HtmlElement | None:
    found = below(root, selector)
    return found[0] if found else None


def _text(element: lxml.html.HtmlElement) -> str:
    parts: list[str] = []

    def walk(node) -> None:
        if isinstance(node.tag, str) and node.tag not in _UNREAD:  # not a comment
            parts.append(node.text or "")
            for child in node:
                walk(child)
                parts.append(child.tail or "")

    walk(element)
    return " ".join(" ".join(parts).split())


def _read(item: lxml.html.HtmlElement, rule: FieldRule) -> str | None:
    element = item if rule.selector is None else first(item, rule.selector)
    if element is None:
        return None
    if not rule.attrs:
        return _text(element) or None
    for attr in rule.attrs:
        value = element.get(attr)
        if value and not value.strip().startswith("data:"):
            return value.strip()
    return None


def _item(element: lxml.html.HtmlElement, spec: ShopSpec) -> RawItem:
    sold_out = spec.listing.sold_out
    return RawItem(
        {name: _read(element, rule) for name, rule in spec.listing.fields.items()},
        bool(sold_out and first(element, sold_out) is not None),
    )


def extract_items(html: str, spec: ShopSpec) -> list[RawItem]:
    """The listing items of a whole page."""
    return [_item(element, spec) for element in below(parse_html(html), spec.listing.item)]


def extract_fragments(fragments: list[str], spec: ShopSpec) -> list[RawItem]:
    """Listing items from their own HTML (each item element's outerHTML)."""
    return [_item(_element(fragment), spec) for fragment in fragments if fragment.strip()]


def _element(fragment: str) -> lxml.html.HtmlElement:
    """The item element of *fragment*. HTML the parser splits (a link inside a link) comes
    back whole: its parts under one element carrying the first part's attributes."""
    parts = lxml.html.fragment_fromstring(fragment, create_parent="div")
    if len(parts) == 1 and not (parts.text or "").strip():
        return parts[0]
    if len(parts):
        parts.attrib.update(parts[0].attrib)
    return parts


def complete_from_detail(item: RawItem, html: str, spec: ShopSpec) -> RawItem:
    """Merge a detail page into a listing item: JSON-LD first, then the detail selectors,
    then what the listing showed."""
    detail = spec.detail
    root = parse_html(html)
    found = {name: _read(root, rule) for name, rule in detail.fields.items()}
    data = product_fields(root) if detail.json_ld else {}
    fields = dict(item.fields)
    for name in FIELD_NAMES:
        value = data.get(name) or found.get(name)
        if value:
            fields[name] = value
    sold_out = item.sold_out
    if detail.sold_out:
        sold_out = first(root, detail.sold_out) is not None
    if data.get("availability"):
        sold_out = not data["availability"].rsplit("/", 1)[-1].startswith(_AVAILABLE)
    return RawItem(fields, sold_out, data.get("currency") or item.currency)


def safe_http_url(url: str | None, page_url: str) -> str | None:
    """Resolve *url* against the page; only http(s) links survive (no javascript:, data:)."""
    if not url:
        return None
    absolute = urljoin(page_url, url.strip())
    return absolute if urlsplit(absolute).scheme in ("http", "https") else None


def _in_stock(item: RawItem) -> bool | None:
    """Out of stock if the sold-out marker (or JSON-LD) says so; else what the stock text
    says; with no stock text, in stock; with text that says neither, unknown (NULL)."""
    if item.sold_out:
        return False
    if "stock" not in item.fields:
        return True
    return in_stock(item.fields["stock"])


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
        in_stock=_in_stock(item),
        category_raw=f.get("category"),
        image_url=safe_http_url(f.get("image"), page_url),
        price_raw=price.raw or None,
        price_error=price.error,
        scraped_at=scraped_at,
        price_is_from=price.is_from,
    )
