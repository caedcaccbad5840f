"""`pricelens history`: the price history of one product group or offer, table and chart."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from db.store import Store
from pipeline.commands.options import format_option
from pipeline.history import HISTORY_COLUMNS, load_history
from pipeline.output import literal_markup, render_rows
from pipeline.report import format_amount, format_change, format_money
from pipeline.report_chart import write_chart


def register(group: click.Group) -> None:
    group.add_command(history)


@click.command()
@click.argument("group_or_offer")
@format_option("table for the terminal; csv/json one row per observation, prices in minor units.")
@click.option(
    "--chart",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also draw the history, one line per shop, into FILE.png or FILE.svg.",
)
@click.pass_obj
def history(env, group_or_offer, fmt, chart):
    """Show the price history per shop of a product group (g12, or just 12) or of one offer
    (o34); ids are in `pricelens report` (group_id, offer_id)."""
    with Store(env.home.database) as store:
        found = load_history(store, group_or_offer)
    if chart is not None:
        write_chart(found.series, chart, lambda v: format_money(v, found.currency))
    if fmt != "table":
        render_rows(env.out, HISTORY_COLUMNS, found.rows, fmt)
    else:
        table = Table(title=f"{found.ref}: {literal_markup(found.title)}", title_justify="left")
        for column in ("Observed", "Shop", "Offer", "Price", "Change", "Stock"):
            table.add_column(column, justify="right" if column in ("Price", "Change") else "left")
        codes = len(found.currencies) > 1  # then every price says its currency
        for observed_at, shop, offer_id, price, change, currency, in_stock in found.rows:
            table.add_row(
                observed_at[:16].replace("T", " "),
                literal_markup(shop),
                f"o{offer_id}",
                format_amount(price, currency, codes),
                format_change(change, currency),
                {True: "in stock", False: "sold out", None: ""}[in_stock],
            )
        env.out.print(table)
        if not found.rows:
            env.out.print("no prices observed yet", highlight=False)
    if chart is not None:
        env.err.print(f"chart written to {chart}", highlight=False, markup=False)
        if found.not_charted:
            env.err.print(
                f"the chart shows prices in {found.currency} only; in other currencies, not "
                f"charted: {', '.join(found.not_charted)}",
                highlight=False,
                markup=False,
            )
