"""The price comparison: one row per product group with each shop's price, the cheapest
shop, the saving against the dearest, the change since the previous crawl, and stock.

Every price keeps its own currency. There are no exchange rates (pricelens works offline), so
the cheapest shop and the saving are worked out among the offers in one currency: the one most
of the group's priced offers use; offers in other currencies are shown, marked "not compared".

Filters and sorting live here so the terminal table, CSV, JSON and HTML show the same rows."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from crawler.currencies import exponent
from db.records import LABELS
from db.store import Store
from pipeline.errors import PipelineError
from pipeline.output import literal_markup, terminal_text


def minor_digits(currency: str | None) -> int:
    """Digits after the decimal point of a currency's minor unit, as the crawler stored the
    price (KRW 12,900 is 12900, USD 4.50 is 450, KWD 1.250 is 1250); none for no currency."""
    return 0 if currency is None else exponent(currency)


@dataclass(frozen=True)
class ShopPrice:
    price: int | None
    previous: int | None
    in_stock: bool | None
    url: str
    offer_id: int | None = None
    title: str | None = None
    image_path: str | None = None
    image_format: str | None = None
    price_is_from: bool = False  # "from 9,900": the lowest of the offer's variants
    currency: str | None = None  # ISO 4217 code of price and previous (None: not known)

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
    prices: dict[str, ShopPrice] = field(default_factory=dict)

    @property
    def compared(self) -> dict[str, ShopPrice]:
        """The priced offers the cheapest shop and the saving come from: those in the currency
        most of the group's priced offers use. Minor units of two currencies cannot be
        compared without exchange rates, so when two currencies tie for most, none is."""
        priced = {s: p for s, p in self.prices.items() if p.price is not None}
        if len({p.currency for p in priced.values()}) < 2:
            return priced  # the usual case, and the one the sorts call often: no counting
        top = Counter(p.currency for p in priced.values()).most_common(2)
        if top[0][1] == top[1][1]:
            return {}
        return {s: p for s, p in priced.items() if p.currency == top[0][0]}

    @property
    def currency(self) -> str | None:
        """The currency of the compared offers: the cheapest price's and the saving's."""
        return next((p.currency for p in self.compared.values()), None)

    @property
    def cheapest(self) -> str | None:
        """The lowest compared price among shops that have it in stock (all compared shops if
        none do)."""
        return _cheapest(self.compared)

    @property
    def cheapest_price(self) -> int | None:
        shop = self.cheapest
        return None if shop is None else self.prices[shop].price

    @property
    def dearest_price(self) -> int | None:
        return max((p.price for p in self.compared.values()), default=None)

    @property
    def savings(self) -> int:
        """The dearest compared price less the cheapest: what buying at the cheapest shop
        saves, in `currency`."""
        if len([p for p in self.compared.values() if p.price]) < 2:
            return 0
        return max(self.dearest_price - self.cheapest_price, 0)

    @property
    def savings_pct(self) -> float:
        dearest = self.dearest_price
        return 100.0 * self.savings / dearest if dearest else 0.0

    @property
    def biggest_drop(self) -> int:
        """The largest fall in one compared shop's price since its previous crawl (0 if none
        fell), in `currency`."""
        return min((p.change for p in self.compared.values() if p.change), default=0)

    @property
    def thumbnail(self) -> ShopPrice | None:
        cheapest = self.cheapest
        ordered = sorted(self.prices.items(), key=lambda kv: (kv[0] != cheapest, kv[0]))
        return next((p for _, p in ordered if p.image_path), None)


def _cheapest(compared: dict[str, ShopPrice]) -> str | None:
    """The shop of the lowest of *compared* prices in stock (of any of them if none is)."""
    buyable = {s: p for s, p in compared.items() if p.in_stock is not False} or compared
    return min(buyable, key=lambda s: (buyable[s].price, s)) if buyable else None


# Sort keys of a row and its currency's rank (see `currency_ranks`): amounts in two currencies
# are never compared, so the money sorts order rows within each currency, the currency most
# rows are compared in first; a percentage needs no such care.
SORTS: dict[str, Callable[[ComparisonRow, int], tuple]] = {
    "savings": lambda r, rank: (rank, -r.savings, r.group_id),
    "savings-pct": lambda r, rank: (-r.savings_pct, r.group_id),
    "drop": lambda r, rank: (rank, r.biggest_drop, r.group_id),
    "price": lambda r, rank: (rank, r.cheapest_price is None, r.cheapest_price or 0, r.group_id),
    "shops": lambda r, rank: (-len(r.prices), rank, -r.savings, r.group_id),
    "title": lambda r, rank: (r.title.casefold(), r.group_id),
}


def currency_ranks(rows: Iterable[ComparisonRow]) -> dict[str | None, int]:
    """0 for the currency most *rows* are compared in, 1 for the next...; rows that compare
    nothing (`currency` None) last."""
    counts = Counter(row.currency for row in rows)
    order = sorted(counts, key=lambda c: (c is None, -counts[c], c or ""))
    return {currency: rank for rank, currency in enumerate(order)}


@dataclass(frozen=True)
class ReportFilter:
    min_shops: int = 2
    categories: tuple[str, ...] = ()
    search: str | None = None
    shops: tuple[str, ...] = ()
    min_savings: Decimal | None = None  # in the currency's ordinary units (5000 KRW, 4.50 USD)

    def check(self, known_shops: list[str]) -> None:
        unknown = [c for c in self.categories if c.lower() not in LABELS]
        if unknown:
            raise PipelineError(f"unknown category {unknown[0]!r}; known: {', '.join(LABELS)}")
        unknown = [s for s in self.shops if s not in known_shops]
        if unknown:
            raise PipelineError(
                f"unknown shop {unknown[0]!r}; known: {', '.join(known_shops) or 'none yet'}"
            )

    def keeps(self, row: ComparisonRow) -> bool:
        if len(row.prices) < self.min_shops:
            return False
        if self.categories and (row.category or "").lower() not in {
            c.lower() for c in self.categories
        }:
            return False
        if self.shops and not set(self.shops) & set(row.prices):
            return False
        if self.search:
            text = " ".join([row.title, *(p.title or "" for p in row.prices.values())]).casefold()
            if not all(word in text for word in self.search.casefold().split()):
                return False
        if self.min_savings is not None:  # in the units of the currency the row compares
            minimum = self.min_savings.scaleb(minor_digits(row.currency))
            if row.savings < minimum:
                return False
        return True


def comparison(
    store: Store,
    min_shops: int = 2,
    filters: ReportFilter | None = None,
    sort: str = "savings",
) -> list[ComparisonRow]:
    """Groups sold by at least *min_shops* shops that pass *filters*, in *sort* order."""
    filters = filters or ReportFilter(min_shops=min_shops)
    if sort not in SORTS:
        raise PipelineError(f"unknown sort {sort!r}; choose one of {', '.join(SORTS)}")
    rows: dict[int, ComparisonRow] = {}
    for r in store.comparison_rows():
        row = rows.get(r["group_id"])
        if row is None:
            row = rows[r["group_id"]] = ComparisonRow(
                r["group_id"], r["canonical_title"], r["label"]
            )
        row.prices[r["shop"]] = ShopPrice(
            r["price"],
            r["previous_price"],
            None if r["in_stock"] is None else bool(r["in_stock"]),
            r["url"],
            r["offer_id"],
            r["title"],
            r["image_path"],
            r["image_format"],
            bool(r["price_is_from"]),
            r["currency"],
        )
    chosen = [row for row in rows.values() if filters.keeps(row)]
    ranks = currency_ranks(chosen)
    return sorted(chosen, key=lambda row: SORTS[sort](row, ranks[row.currency]))


def format_money(amount: int | None, currency: str | None) -> str:
    if amount is None:
        return "–"
    digits = minor_digits(currency)
    return f"{Decimal(amount).scaleb(-digits):,.{digits}f}"


def format_change(change: int | None, currency: str | None) -> str:
    if not change:
        return ""
    return ("▲" if change > 0 else "▼") + format_money(abs(change), currency)


def several_currencies(rows: Iterable[ComparisonRow]) -> bool:
    """Whether the prices in *rows* are in more than one currency: then every amount shown
    carries its currency code, since the digits alone would not say which."""
    return len({p.currency for r in rows for p in r.prices.values() if p.price is not None}) > 1


def format_amount(amount: int | None, currency: str | None, with_code: bool) -> str:
    """`format_money`, followed by the currency code when *with_code* (and one is known)."""
    text = format_money(amount, currency)
    return f"{text} {currency}" if with_code and currency and amount is not None else text


def format_savings(row: ComparisonRow, with_code: bool) -> str:
    """The row's saving, or a dash where it compares nothing (two currencies tie)."""
    if not row.compared and any(p.price is not None for p in row.prices.values()):
        return "–"
    return format_amount(row.savings, row.currency, with_code)


def _cell(price: ShopPrice | None, cheapest: bool, compared: bool, with_code: bool) -> str:
    if price is None:
        return ""
    text = format_amount(price.price, price.currency, with_code)
    change = price.change
    if change:
        colour = "red" if change > 0 else "green"
        text += f"\n[{colour}]{format_change(change, price.currency)}[/]"
    if price.price_is_from:
        text += "\n[dim]from: variants[/]"
    if price.in_stock is False:
        text += "\n[dim]sold out[/]"
    if price.price is not None and not compared:
        text += "\n[dim]not compared[/]"  # another currency than the cheapest's
    return f"[bold green]{text}[/]" if cheapest else text


class _Folding:
    """A Product cell: the title, with the category dimmed under it. It measures as narrow
    as its column's min_width, so a table is only as wide as its unbreakable money columns
    need, and it breaks the title between words or after a "/" or "-" ("beige/" "canvas"),
    cutting inside a word only when the word alone is wider than the column."""

    def __init__(self, title: str, category: str):
        # Text() takes no markup: a scraped "[b]" prints as written
        self.title, self.category = terminal_text(title), terminal_text(category)

    def _text(self, width: int | None) -> Text:
        text = Text(self.title if width is None else wrap_title(self.title, width))
        text.append("\n" + self.category, style="dim")
        text.overflow = "fold"
        return text

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self._text(options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(1, Measurement.get(console, options, self._text(None)).maximum)


_PIECES = re.compile(r"[^/\-]*[/\-]+|[^/\-]+")  # "beige/canvas" -> "beige/", "canvas"


def wrap_title(title: str, width: int) -> str:
    """*title* in lines of at most *width* cells, broken at spaces or after "/" and "-"; a
    piece wider than *width* keeps a line of its own (the table folds it)."""
    lines: list[str] = []
    line = ""
    for word in title.split():
        for k, piece in enumerate(_PIECES.findall(word)):
            joined = f"{line} {piece}" if k == 0 and line else line + piece
            if not line or cell_len(joined) <= width:
                line = joined
            else:
                lines.append(line)
                line = piece
    lines.append(line)
    return "\n".join(lines)


def _widest(cells: list[str]) -> int:
    """The display width of the longest line in markup *cells*."""
    return max(
        (line.cell_len for cell in cells for line in Text.from_markup(cell).split("\n")),
        default=1,
    )


def priced_shops(rows: list[ComparisonRow], shops: list[str]) -> list[str]:
    """The *shops* (in their order) with a price in at least one of *rows*: the columns worth
    showing. A shop crawled once and never matched, or filtered out, gets no empty column."""
    priced = {shop for r in rows for shop, p in r.prices.items() if p.price is not None}
    return [s for s in shops if s in priced]


def comparison_table(rows: list[ComparisonRow], shops: list[str], limit: int | None) -> Table:
    """Fits 100 columns with five shops: the category goes under the title, the change and
    stock under the price in each cell. Money and shop names are never cut: their columns
    do not wrap and are as wide as their widest cell; the Product column wraps (and the
    headers fold) when the terminal is narrow. Only shops with a price in the rows shown
    get a column."""
    shown = rows[:limit] if limit else rows
    shops = priced_shops(shown, shops)
    codes = several_currencies(shown)
    lines = []
    for row in shown:
        cheapest, compared = row.cheapest, row.compared
        lines.append(
            (
                str(row.group_id),
                # scraped text may contain [markup] and control characters
                _Folding(row.title, row.category or "?"),
                *(_cell(row.prices.get(s), s == cheapest, s in compared, codes) for s in shops),
                literal_markup(cheapest or "–"),
                format_savings(row, codes),
            )
        )
    table = Table(
        title="Price comparison",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1),
        collapse_padding=True,  # two spaces between columns, none at the edges
        pad_edge=False,
    )

    def whole(header: str, index: int, justify: str = "left", style: str = "") -> None:
        """A column that never cuts its cells; only its header may fold."""
        table.add_column(
            Text(header, overflow="fold"),
            justify=justify,
            style=style,
            no_wrap=True,
            min_width=_widest([line[index] for line in lines]),
        )

    whole("#", 0, "right", "dim")
    table.add_column("Product", overflow="fold", min_width=10, max_width=28, ratio=3)
    for index, shop in enumerate(shops, start=2):
        whole(shop, index, "right")
    whole("Cheapest", len(shops) + 2)
    whole("Save", len(shops) + 3, "right")
    for line in lines:
        table.add_row(*line)
    return table


COLUMNS: dict[str, str] = {
    "group_id": "product group id (g12 in `pricelens history`)",
    "title": "the group's canonical title",
    "category": "the group's category",
    "shop": "the shop of this row",
    "price": "the shop's latest price, in minor units (KRW: won; USD: cents)",
    "previous_price": "its price on the previous crawl, minor units (empty: none in currency)",
    "change": "price - previous_price (negative: cheaper than on the previous crawl)",
    "currency": "ISO 4217 code of this row's price, previous_price and change",
    "in_stock": "true, false or empty (the shop did not say)",
    "price_is_from": "true when the shop says 'from' this price (the lowest of its variants)",
    "cheapest": "true on the row of the cheapest shop",
    "cheapest_shop": "the compared shop with the lowest price in stock (any, if none has stock)",
    "savings": "the dearest compared price less the cheapest, minor units (same on each row)",
    "offer_id": "the offer's id (o34 in `pricelens history`, `match link`)",
    "offer_title": "the title as this shop writes it",
    "url": "the offer's page at the shop",
    "compared": "true when this price is compared: in the currency of cheapest_shop and savings",
}


def report_columns() -> list[str]:
    """The columns of the CSV/JSON report: one row per product group and shop."""
    return list(COLUMNS)


def report_rows(rows: list[ComparisonRow]) -> list[tuple]:
    result = []
    for r in rows:
        cheapest, savings, compared = r.cheapest, r.savings, r.compared
        for shop, p in sorted(r.prices.items()):
            result.append(
                (
                    r.group_id,
                    r.title,
                    r.category,
                    shop,
                    p.price,
                    p.previous,
                    p.change,
                    p.currency,
                    p.in_stock,
                    p.price_is_from,
                    shop == cheapest,
                    cheapest,
                    savings,
                    p.offer_id,
                    p.title,
                    p.url,
                    shop in compared,
                )
            )
    return result
