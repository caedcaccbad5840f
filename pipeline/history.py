"""`pricelens history`: one product's (group's) or one offer's price history per shop."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from db.store import Store
from pipeline.errors import PipelineError
from pipeline.matching import parse_ref
from pipeline.report_chart import Series

HISTORY_COLUMNS = ["observed_at", "shop", "offer_id", "price", "change", "currency", "in_stock"]


@dataclass(frozen=True)
class PriceHistory:
    ref: str  # g12 or o34
    title: str
    currency: str | None  # the chart's: the one most observations are in
    rows: list[tuple]  # HISTORY_COLUMNS, oldest first

    @property
    def currencies(self) -> set[str | None]:
        return {row[5] for row in self.rows}

    @property
    def series(self) -> Series:
        """Per shop, the prices in `currency`: one axis cannot carry two currencies."""
        found: Series = {}
        for observed_at, shop, _, price, _, currency, _ in self.rows:
            if currency == self.currency:
                found.setdefault(shop, []).append((observed_at, price))
        return found

    @property
    def not_charted(self) -> list[str]:
        """Shops with prices in another currency than the chart's."""
        return sorted({row[1] for row in self.rows if row[5] != self.currency})


def load_history(store: Store, ref: str) -> PriceHistory:
    """*ref* is g12 (a product group), o34 (an offer) or a bare number (a group)."""
    kind, number = parse_ref(ref, "group")
    if kind == "group":
        offers = store.group_offers(number)
        if not offers:
            raise PipelineError(f"product group g{number} does not exist (see `pricelens report`)")
        title = store.group_title(number) or offers[0].title
    else:
        offer = store.offer_in_group(number)
        if offer is None:
            raise PipelineError(f"offer o{number} does not exist (see `pricelens report`)")
        offers, title = [offer], offer.title
    rows, last = [], {}
    for obs in store.price_history([o.offer_id for o in offers]):
        price, currency = obs["price"], obs["currency"]
        previous = last.get(obs["offer_id"])
        last[obs["offer_id"]] = (price, currency)
        rows.append(
            (
                obs["observed_at"],
                obs["shop"],
                obs["offer_id"],
                price,
                # no change across a change of currency: won less cents says nothing
                price - previous[0] if previous and previous[1] == currency else None,
                currency,
                None if obs["in_stock"] is None else bool(obs["in_stock"]),
            )
        )
    most = Counter(row[5] for row in rows).most_common(1)
    return PriceHistory(f"{kind[0]}{number}", title, most[0][0] if most else None, rows)
