"""The price comparison: one row per product group with each shop's price, the cheapest
shop, the saving against the dearest, and the change since the previous crawl."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.table import Table

from db.store import Store


@dataclass(frozen=True)
class ShopPrice:
    price: int | None
    previous: int | None
    in_stock: bool | None
    url: str

    @property
    def change(self) -> int | None:
        if self.price is None or self.previous is None:
            return None
        return self.price - self.previous


@dataclass
class ComparisonRow:
    group_id: int
    title: str
    category: str | None
    currency: str | None
    prices: dict[str, ShopPrice] = field(default_factory=dict)

    @property
    def cheapest(self) -> str | None:
        priced = {s: p.price for s, p in self.prices.items() if p.price is not None}
        return min(priced, key=priced.get) if priced else None

    @property
    def savings(self) -> int:
        priced = [p.price for p in self.prices.values() if p.price is not None]
        return max(priced) - min(priced) if len(priced) > 1 else 0


def comparison(store: Store, min_shops: int = 2) -> list[ComparisonRow]:
    """Groups sold by at least *min_shops* shops, biggest saving first."""
    rows: dict[int, ComparisonRow] = {}
    for r in store.comparison_rows():
        row = rows.setdefault(
            r["group_id"],
            ComparisonRow(r["group_id"], r["canonical_title"], r["label"], r["currency"]),
        )
        row.prices[r["shop"]] = ShopPrice(
            r["price"],
            r["previous_price"],
            None if r["in_stock"] is None else bool(r["in_stock"]),
            r["url"],
        )
    chosen = [row for row in rows.values() if len(row.prices) >= min_shops]
    return sorted(chosen, key=lambda row: (-row.savings, row.group_id))


def format_money(amount: int | None, currency: str | None) -> str:
    if amount is None:
        return "–"
    if currency in (None, "KRW", "JPY"):
        return f"{amount:,}"
    return f"{amount / 100:,.2f}"


def _cell(price: ShopPrice | None, currency: str | None, cheapest: bool) -> str:
    if price is None:
        return ""
    text = format_money(price.price, currency)
    change = price.change
    if change:
        text += f" [red]▲{change:,}[/]" if change > 0 else f" [green]▼{-change:,}[/]"
    if price.in_stock is False:
        text += " [dim](sold out)[/]"
    return f"[bold green]{text}[/]" if cheapest else text


def comparison_table(rows: list[ComparisonRow], shops: list[str], limit: int | None) -> Table:
    table = Table(title="Price comparison", title_justify="left", expand=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("Product", overflow="fold", max_width=34)
    table.add_column("Category")
    for shop in shops:
        table.add_column(shop, justify="right")
    table.add_column("Cheapest")
    table.add_column("Save", justify="right")
    for row in rows[:limit] if limit else rows:
        cheapest = row.cheapest
        table.add_row(
            str(row.group_id),
            row.title,
            row.category or "?",
            *(_cell(row.prices.get(s), row.currency, s == cheapest) for s in shops),
            cheapest or "–",
            format_money(row.savings, row.currency),
        )
    return table


def report_columns() -> list[str]:
    """The columns of the CSV/JSON report: one row per product group and shop."""
    return [
        "group_id",
        "title",
        "category",
        "shop",
        "price",
        "previous_price",
        "currency",
        "in_stock",
        "cheapest",
        "url",
    ]


def report_rows(rows: list[ComparisonRow]) -> list[tuple]:
    return [
        (
            r.group_id,
            r.title,
            r.category,
            shop,
            p.price,
            p.previous,
            r.currency,
            p.in_stock,
            shop == r.cheapest,
            p.url,
        )
        for r in rows
        for shop, p in sorted(r.prices.items())
    ]
