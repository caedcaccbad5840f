"""`pricelens query`: read-only SQL over the database."""

from __future__ import annotations

import click

from db.migrations import MIGRATIONS
from db.query import run_readonly_query
from pipeline.commands.options import format_option
from pipeline.output import render_rows


def register(group: click.Group) -> None:
    group.add_command(query)


@click.command()
@click.argument("sql")
@format_option(
    "json: a list of objects, one per row, keyed by column name; a name that repeats "
    "gets _2, _3, ... (SELECT o.id, s.id gives id and id_2). table and csv show names as is."
)
@click.option(
    "--max-rows",
    default=1000,
    show_default=True,
    type=click.IntRange(1),
    help="Stop after this many rows.",
)
@click.option(
    "--timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.01),
    help="Stop the statement after this many seconds.",
)
@click.pass_obj
def query(env, sql, fmt, max_rows, timeout):
    """Run one read-only SQL statement against the database.

    The file is opened read-only: INSERT, UPDATE, DELETE, ATTACH and pragma writes are
    refused, and the file is left unchanged. Example:

        pricelens query "SELECT name, base_url FROM shops"
    """
    result = run_readonly_query(env.home.database, sql, time_limit_s=timeout, max_rows=max_rows)
    render_rows(env.out, result.columns, result.rows, fmt)
    if result.truncated:
        env.err.print(f"(stopped at {max_rows} rows; use --max-rows for more)")
    newest = MIGRATIONS[-1].version
    if result.schema_version is not None and result.schema_version < newest:
        # query never writes, so it cannot upgrade the file as every other command does
        env.err.print(
            f"note: {env.home.database} is at schema version {result.schema_version}, this "
            f"pricelens at {newest}: any other command upgrades it (see the README's "
            "database section for what changed)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
