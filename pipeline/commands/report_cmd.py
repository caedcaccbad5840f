"""`pricelens report`: the price comparison of the stored product groups."""

from __future__ import annotations

import io
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click
from rich.console import Console

from db.store import Store
from pipeline.output import for_console, print_whole, rows_text, write_text_atomic
from pipeline.report import (
    SORTS,
    ReportFilter,
    comparison,
    comparison_table,
    report_columns,
    report_rows,
)
from pipeline.report_html import render_html


def register(group: click.Group) -> None:
    group.add_command(report)


def _amount(ctx, param, value):
    if value is None:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not an amount such as 5000 or 4.50") from None
    if not amount.is_finite() or amount < 0:
        raise click.BadParameter(f"{value!r} must be 0 or more (an amount such as 5000 or 4.50)")
    return amount


def _describe(filters: ReportFilter, sort: str) -> str:
    return "; ".join([*_filter_parts(filters), f"sorted by {sort}"])


def _filter_parts(filters: ReportFilter) -> list[str]:
    parts = []
    if filters.categories:
        parts.append("category " + ", ".join(filters.categories))
    if filters.search:
        parts.append(f"search {filters.search!r}")
    if filters.shops:
        parts.append("sold at " + ", ".join(filters.shops))
    if filters.min_savings is not None:
        parts.append(f"savings ≥ {filters.min_savings}")
    return parts


def _why_empty(store: Store, filters: ReportFilter) -> str:
    """What to do about a report with no product in it."""
    if not store.db["offers"].count:
        return (
            f"no offers in {store.path} yet: run `pricelens crawl` "
            "(or `pricelens demo` to try the demo mall)"
        )
    if not store.db["product_groups"].count:
        return "the offers are not grouped into products yet: run `pricelens match`"
    shops = f"{filters.min_shops} shop{'' if filters.min_shops == 1 else 's'}"
    parts = _filter_parts(filters)
    return (
        f"no product is sold by at least {shops}"
        + (f" and matches {'; '.join(parts)}" if parts else "")
        + ("; --min-shops 1 shows products sold by one shop" if filters.min_shops > 1 else "")
    )


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "html"]),
    default="table",
    show_default=True,
    help="table for the terminal; csv/json one row per product and shop; html one page.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of the terminal.",
)
@click.option(
    "--limit", default=25, show_default=True, type=click.IntRange(0), help="Rows to show (0: all)."
)
@click.option(
    "--min-shops",
    default=2,
    show_default=True,
    type=click.IntRange(1),
    help="Only products sold by at least this many shops.",
)
@click.option(
    "--category",
    multiple=True,
    help="Only this category (repeatable: any of them), e.g. sneaker, bag, ankle_boot.",
)
@click.option("--search", default=None, help="Only products whose titles contain every word.")
@click.option(
    "--shop", "shops", multiple=True, help="Only products this shop sells (repeatable: any)."
)
@click.option(
    "--min-savings",
    callback=_amount,
    default=None,
    metavar="AMOUNT",
    help="Only products where the cheapest shop saves at least AMOUNT (in the units of the "
    "currency the product is compared in: 5000 for KRW, 4.50 for USD).",
)
@click.option(
    "--sort",
    type=click.Choice(list(SORTS)),
    default="savings",
    show_default=True,
    help="savings / savings-pct (biggest first), drop (biggest fall since the previous "
    "crawl), price (cheapest first), shops (most first), title.",
)
@click.pass_obj
def report(env, fmt, out, limit, min_shops, category, search, shops, min_savings, sort):
    """Print the price comparison: one row per product, each shop's price, the cheapest.

    json and csv give one row per product and shop with prices in minor units; html is one
    self-contained page with photos, price-history charts and the biggest drops on top."""
    filters = ReportFilter(min_shops, tuple(category), search, tuple(shops), min_savings)
    with Store(env.home.database) as store:
        known = store.shop_names()
        filters.check(known)
        matching = comparison(store, filters=filters, sort=sort)
        rows = matching[:limit] if limit else matching
        if not matching:
            env.err.print(_why_empty(store, filters), highlight=False, markup=False, soft_wrap=True)
        if fmt == "html":
            text = render_html(store, rows, known, _describe(filters, sort), matching)
    if fmt == "table":
        console = env.out if out is None else Console(file=io.StringIO(), width=100)
        print_whole(console, comparison_table(rows, known, None))
        if out is None:
            return
        text = console.file.getvalue()
    elif fmt != "html":  # plain text: rich's JSON highlighting takes seconds on 20,000 rows
        text = rows_text(report_columns(), report_rows(rows), fmt)
    if out is None:
        # as is (no markup, no wrapping, no highlighting), but a terminal gets no controls
        env.out.file.write(for_console(env.out, text))
        return
    write_text_atomic(out, text)
    env.err.print(f"wrote {len(rows)} products to {out}", highlight=False)
