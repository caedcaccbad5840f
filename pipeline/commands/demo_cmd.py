"""`pricelens demo`: the whole pipeline on the local demo mall."""

from __future__ import annotations

import click

from classifier.training import TrainConfig
from crawler.browser import BrowserConfig
from db.store import Store
from demo.mall import MallSettings
from pipeline.commands.crawl_cmd import browser_options, sessions_option
from pipeline.commands.mall_cmd import FAULTS_HELP, check_faults, mall_options
from pipeline.crawling import CrawlOptions
from pipeline.demo import run_demo
from pipeline.output import print_whole
from pipeline.progress import progress_bar
from pipeline.report import comparison, comparison_table


def register(group: click.Group) -> None:
    group.add_command(demo)


@click.command()
@mall_options
@click.option("--hard", is_flag=True, help="Heavier photo styles in the demo mall.")
@click.option("--faults", callback=check_faults, default="", metavar="SPEC", help=FAULTS_HELP)
@click.option(
    "--epochs",
    default=2,
    show_default=True,
    type=click.IntRange(1),
    help="Training epochs when no model exists yet.",
)
@click.option(
    "--train-limit",
    type=click.IntRange(1),
    default=None,
    help="Train on only the first N Fashion-MNIST images (quick try-outs).",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where to train and classify.",
)
@sessions_option
@browser_options
@click.option(
    "--limit",
    default=25,
    show_default=True,
    type=click.IntRange(0),
    help="Rows of the comparison to print (0: all).",
)
@click.pass_obj
def demo(
    env,
    products,
    seed,
    day,
    hard,
    faults,
    epochs,
    train_limit,
    device,
    sessions,
    chromedriver,
    remote,
    limit,
):
    """Crawl the local demo mall, train a model if none exists, classify, match and report.

    Starts the demo shops on free loopback ports, stops them when done, and writes the
    mall's answer key to <home>/demo/answer-key.json.
    """
    train = TrainConfig(epochs=epochs, train_limit=train_limit, device=device)
    with progress_bar(env.progress) as progress:
        result = run_demo(
            env.home,
            MallSettings(seed=seed, products=products, day=day, hard=hard, faults=faults),
            train,
            CrawlOptions(sessions, BrowserConfig(driver_path=chromedriver, remote_url=remote)),
            progress,
        )
    with Store(env.home.database) as store:
        rows = comparison(store)
    print_whole(env.out, comparison_table(rows, result.shops, limit or None))
    for crawl in result.crawls:
        line = f"{crawl.shop}: {crawl.offers} offers on {crawl.pages} pages ({crawl.status})"
        if crawl.error:
            line += f": {crawl.error}"
        env.out.print(line, highlight=False, soft_wrap=True)
    trained = "trained" if result.trained else "reused"
    env.out.print(
        f"{len(rows)} products sold by 2+ shops; {result.groups} groups; model "
        f"{result.model_version} ({trained}); {result.classified} new images classified; "
        f"home {env.home.root}",
        highlight=False,
        soft_wrap=True,  # one line, also when piped
    )
