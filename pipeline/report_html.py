"""The HTML report: one self-contained file (inline CSS, photos as data: URIs, SVG charts).

Every scraped string reaches the page through Jinja2 with autoescaping on; links are emitted
only for http(s) URLs; the page carries a Content-Security-Policy that allows no scripts and
no remote loads, so even a missed escape could not run code."""

from __future__ import annotations

import base64
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from db.store import Store
from pipeline.report import (
    ComparisonRow,
    format_amount,
    format_change,
    format_money,
    format_savings,
    priced_shops,
    several_currencies,
)
from pipeline.report_chart import svg_chart

TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_THUMBNAIL_BYTES = 512 * 1024
IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
DROPS = 10


def safe_url(url: str | None) -> str | None:
    """*url* if it is an absolute http(s) URL, else None (javascript:, data:, relative...)."""
    if not url or any(ord(ch) < 33 for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def data_uri(path: str | None, image_format: str | None) -> str | None:
    """The stored photo as a data: URI, or None if missing, too big or not a web format."""
    mime = IMAGE_TYPES.get((image_format or "").upper())
    if not path or mime is None:
        return None
    try:
        file = Path(path)
        if file.stat().st_size > MAX_THUMBNAIL_BYTES:
            return None
        return f"data:{mime};base64,{base64.b64encode(file.read_bytes()).decode('ascii')}"
    except OSError:
        return None


def _history(store: Store, rows: list[ComparisonRow]) -> dict[int, dict[str, list]]:
    """group id -> shop -> [(observed_at, price)] for the rows shown: the compared shops'
    prices in the row's currency only, as one axis cannot carry two currencies."""
    group_of = {
        p.offer_id: (r.group_id, shop, r.currency) for r in rows for shop, p in r.compared.items()
    }
    series: dict[int, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for obs in store.price_history(list(group_of)):
        group_id, shop, currency = group_of[obs["offer_id"]]
        if obs["currency"] == currency:
            series[group_id][shop].append((obs["observed_at"], obs["price"]))
    return series


def _drops(rows: list[ComparisonRow]) -> list[dict]:
    """The biggest falls by share (the same in any currency), each in its own currency."""
    codes = several_currencies(rows)
    fallen = [
        (p.change / p.previous, r, shop, p)
        for r in rows
        for shop, p in r.prices.items()
        if p.change and p.change < 0 and p.previous
    ]
    fallen.sort(key=lambda f: (f[0], f[1].group_id, f[2]))
    return [
        {
            "pct": f"{100 * share:.0f}%",
            "title": r.title,
            "shop": shop,
            "previous": format_amount(p.previous, p.currency, codes),
            "price": format_amount(p.price, p.currency, codes),
            "change": format_change(p.change, p.currency),
            "url": safe_url(p.url),
        }
        for share, r, shop, p in fallen[:DROPS]
    ]


def _row(row: ComparisonRow, shops: list[str], history: dict[str, list], codes: bool) -> dict:
    cheapest, compared = row.cheapest, row.compared
    cells = []
    for shop in shops:
        p = row.prices.get(shop)
        if p is None:
            cells.append(None)
            continue
        cells.append(
            {
                "price": format_amount(p.price, p.currency, codes),
                "change": format_change(p.change, p.currency),
                "direction": "up" if (p.change or 0) > 0 else "down",
                "sold_out": p.in_stock is False,
                "price_is_from": p.price_is_from,
                "cheapest": shop == cheapest,
                "not_compared": p.price is not None and shop not in compared,
                "url": safe_url(p.url),
            }
        )
    thumb = row.thumbnail
    return {
        "group_id": row.group_id,
        "title": row.title,
        "category": row.category or "",
        "thumbnail": data_uri(thumb.image_path, thumb.image_format) if thumb else None,
        "cells": cells,
        "cheapest": cheapest or "–",
        "savings": format_savings(row, codes),
        "chart": Markup(
            svg_chart(history, 240, 90, lambda v: format_money(v, row.currency))
        ),  # built from escaped parts in report_chart
    }


def render_html(
    store: Store,
    rows: list[ComparisonRow],
    shops: list[str],
    filters: str = "",
    drop_rows: list[ComparisonRow] | None = None,
) -> str:
    """The whole page as a string; the drops at the top come from *drop_rows* (all rows that
    passed the filters, before --limit) when given."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    history = _history(store, rows)
    shown = priced_shops(rows, shops)
    codes = several_currencies(rows)
    return environment.get_template("report.html.j2").render(
        products=len(rows),
        filters=filters,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        shops=shown,
        drops=_drops(rows if drop_rows is None else drop_rows),
        several_currencies=codes,
        rows=[_row(r, shown, history.get(r.group_id, {}), codes) for r in rows],
    )
