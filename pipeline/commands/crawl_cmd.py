"""`pricelens crawl`: crawl shops now, in parallel browser sessions."""

from __future__ import annotations

from urllib.parse import urlsplit

import click
from rich.table import Table

from crawler.browser import BrowserConfig
from pipeline.crawling import CrawlOptions, crawl_shops
from pipeline.errors import PipelineError
from pipeline.home_lock import working_on
from pipeline.output import terminal_text
from pipeline.progress import progress_bar
from pipeline.shops import resolve_specs


def register(group: click.Group) -> None:
    group.add_command(crawl)


sessions_option = click.option(
    "--sessions",
    default=1,
    show_default=True,
    type=click.IntRange(1, 16),
    help="Browser sessions in parallel (shops, detail pages and menu listings spread over them).",
)


def _http_url(ctx, param, value: str | None) -> str | None:
    parts = urlsplit(value) if value is not None else None
    if parts is not None and (parts.scheme not in ("http", "https") or not parts.hostname):
        raise click.BadParameter(f"{value!r} is not an http(s) URL such as http://grid:4444")
    return value


def browser_options(command):
    """--remote and --chromedriver, shared by every command that starts browsers."""
    command = click.option(
        "--remote",
        metavar="URL",
        default=None,
        callback=_http_url,
        help="Run every session on a Selenium Grid or any W3C remote WebDriver.",
    )(command)
    return click.option(
        "--chromedriver",
        type=click.Path(dir_okay=False),
        default=None,
        help="chromedriver to use instead of the one on PATH.",
    )(command)


@click.command()
@click.option(
    "--shop",
    "shops",
    multiple=True,
    metavar="NAME",
    help="Crawl this shop (repeatable); default: every spec in <home>/shops.",
)
@sessions_option
@click.option(
    "--max-pages",
    type=click.IntRange(1),
    default=None,
    help="At most this many pages, load-more clicks or scroll rounds per listing "
    "(overrides the specs' max_pages).",
)
@click.option(
    "--base-url",
    metavar="URL",
    default=None,
    help="Crawl the one --shop at this address instead of its spec's base_url.",
)
@click.option(
    "--ignore-robots",
    is_flag=True,
    help="Do not obey robots.txt (only for sites you run yourself).",
)
@browser_options
@click.pass_obj
def crawl(env, shops, sessions, max_pages, base_url, ignore_robots, remote, chromedriver):
    """Crawl shops now and store their offers, prices and photos.

    Prints a summary per shop: pages, offers, new offers, price changes, errors (each
    is in the crawl_errors table; a failed page with its HTML and a screenshot), photos, and how
    many of those were fetched: one the shop says is unchanged since the last crawl (HTTP
    304 to its ETag or date) is not downloaded again.
    """
    specs = resolve_specs(env.home.create(), shops, base_url)
    options = CrawlOptions(
        sessions,
        BrowserConfig(driver_path=chromedriver, remote_url=remote),
        max_pages,
        not ignore_robots,
    )
    with working_on(env.home, "crawl"), progress_bar(env.progress) as progress:
        results = crawl_shops(env.home, specs, options, progress=progress)
    table = Table(title="Crawl", title_justify="left", pad_edge=False)
    columns = ("shop", "status", "pages", "offers", "new", "price changes", "errors")
    for column in (*columns, "photos", "fetched"):
        table.add_column(column, justify="left" if column in ("shop", "status") else "right")
    for r in results:
        table.add_row(
            r.shop,
            r.status,
            str(r.pages),
            str(r.offers),
            str(r.new),
            str(r.price_changes),
            str(r.errors),
            str(r.photos),
            str(r.photos - r.photos_unchanged),
        )
    env.out.print(table)
    for r in results:
        if r.error:
            env.err.print(terminal_text(r.error), highlight=False, markup=False, soft_wrap=True)
    if all(r.status == "failed" for r in results):
        raise PipelineError("every shop failed; see the errors above")
