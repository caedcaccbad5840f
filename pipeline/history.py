"""`pricelens history`: one product's (group's) or one offer's price history per shop."""

from __future__ import annotations

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
    currency: str | None
    rows: list[tuple]  # HISTORY_COLUMNS, oldest first

    @property
    def series(self) -> Series:
        found: Series = {}
        for observed_at, shop, _, price, *_ in self.rows:
            found.setdefault(shop, []).append((observed_at, price))
        return found


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
    rows, last, currency = [], {}, None
    for obs in store.price_history([o.offer_id for o in offers]):
        previous = last.get(obs["offer_id"])
        last[obs["offer_id"]] = obs["price"]
        currency = currency or obs["currency"]
        rows.append(
            (
                obs["observed_at"],
                obs["shop"],
                obs["offer_id"],
                obs["price"],
                None if previous is None else obs["price"] - previous,
                obs["currency"],
                None if obs["in_stock"] is None else bool(obs["in_stock"]),
            )
        )
    return PriceHistory(f"{kind[0]}{number}", title, currency, rows)
