"""`pricelens shops list | validate | test`: the shop specs."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from crawler.browser import BrowserConfig
from crawler.errors import SpecError
from crawler.spec import load_spec
from pipeline.commands.crawl_cmd import browser_options
from pipeline.errors import PipelineError
from pipeline.output import literal_markup, terminal_text
from pipeline.report import format_money
from pipeline.shop_test import test_spec
from pipeline.shops import SpecFile, load_spec_file, resolve_specs, spec_files


def register(group: click.Group) -> None:
    group.add_command(shops)


@click.group()
def shops():
    """Shop specs: the built-in demo shops and yours in <home>/shops/."""


@shops.command(name="list")
@click.pass_obj
def list_(env):
    """List every shop spec: name, where it comes from, its base URL."""
    table = Table(title="Shops", title_justify="left")
    for column in ("name", "display name", "base url", "spec"):
        table.add_column(column, overflow="fold")
    problems = []
    for name, file in spec_files(env.home).items():
        where = "built-in" if file.builtin else str(file.path)
        try:
            spec = load_spec_file(file)
        except SpecError as exc:
            problems.append(str(exc))
            table.add_row(literal_markup(name), "[red]invalid[/red]", "", literal_markup(where))
        else:
            # every cell comes from a spec file someone downloaded: text, never markup
            table.add_row(*map(literal_markup, (name, spec.display_name, spec.base_url, where)))
    env.out.print(table)
    for problem in problems:
        env.err.print(f"invalid: {problem}", highlight=False, markup=False, soft_wrap=True)
    if problems:
        raise PipelineError(f"{len(problems)} shop specs are invalid (listed above)")


@shops.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.pass_obj
def validate(env, files):
    """Check shop spec FILES: every key, type and CSS selector, and for a file in
    <home>/shops/ that `name` is the file's name. Exit 1 if one is invalid."""
    bad = 0
    for path in files:
        file = Path(path)
        # as spec_files finds them: a .toml file in the folder (a link is named by itself)
        installed = file.suffix == ".toml" and (
            file.absolute().parent.resolve() == env.home.shops.resolve()
        )
        try:
            if installed:
                spec = load_spec_file(SpecFile(file.stem, file, builtin=False))
            else:
                spec = load_spec(file)
        except SpecError as exc:
            bad += 1
            env.err.print(f"invalid: {exc}", highlight=False, markup=False, soft_wrap=True)
            continue
        env.out.print(f"ok: {path} ({spec.name})", highlight=False, markup=False, soft_wrap=True)
        if spec.name != file.stem and not installed:
            env.err.print(
                f"note: {path}: install it as {env.home.shops / f'{spec.name}.toml'} (a spec "
                "there is named by its file)",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
    if bad:
        raise PipelineError(f"{bad} of {len(files)} spec files are invalid")


@shops.command(name="test")
@click.argument("name")
@click.option(
    "--base-url",
    metavar="URL",
    default=None,
    help="Test the shop at this address instead of its spec's base_url.",
)
@click.option("--ignore-robots", is_flag=True, help="Do not obey robots.txt.")
@browser_options
@click.pass_obj
def test_(env, name, base_url, ignore_robots, remote, chromedriver):
    """Crawl NAME's first listing page and print the offers extracted; stores nothing."""
    (spec,) = resolve_specs(env.home, (name,), base_url)
    page, failures = test_spec(
        spec, BrowserConfig(driver_path=chromedriver, remote_url=remote), not ignore_robots
    )
    for failure in failures:
        message = terminal_text(failure.message)  # it may quote the page
        env.err.print(message, highlight=False, markup=False, soft_wrap=True)
    if page is None or not page.offers:
        raise PipelineError(f"{name}: no offers extracted from the first listing page")
    title = f"{literal_markup(spec.display_name)}: {literal_markup(page.url)}"
    table = Table(title=title, title_justify="left")
    for column in ("title", "price", "list price", "stock", "category", "url"):
        table.add_column(column, overflow="fold")
    for offer in page.offers:
        price = (
            ("from " if offer.price_is_from else "") + format_money(offer.price, offer.currency)
            if offer.price is not None
            else f"NULL ({offer.price_error}: {offer.price_raw!r})"
        )
        table.add_row(
            literal_markup(offer.title),
            literal_markup(f"{price} {offer.currency}"),
            format_money(offer.list_price, offer.currency) if offer.list_price else "",
            {True: "in stock", False: "sold out", None: "?"}[offer.in_stock],
            literal_markup(offer.category_raw or ""),
            literal_markup(offer.url),
        )
    env.out.print(table)
    env.out.print(
        f"{len(page.offers)} offers, {len(page.images)} photos, {len(page.problems)} problems",
        highlight=False,
    )
