"""`pricelens report`: the price comparison of the stored product groups."""

from __future__ import annotations

import click

from db.store import Store
from pipeline.output import FORMATS, render_rows
from pipeline.report import comparison, comparison_table, report_columns, report_rows


def register(group: click.Group) -> None:
    group.add_command(report)


@click.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
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
@click.pass_obj
def report(env, fmt, limit, min_shops):
    """Print the price comparison: one row per product, each shop's price, the cheapest.

    json and csv give one row per product and shop with prices in minor units."""
    with Store(env.home.database) as store:
        rows = comparison(store, min_shops)
        shops = [r["name"] for r in store.db.query("SELECT name FROM shops ORDER BY name")]
    rows = rows[:limit] if limit else rows
    if fmt == "table":
        env.out.print(comparison_table(rows, shops, None))
        return
    render_rows(env.out, report_columns(), report_rows(rows), fmt)
