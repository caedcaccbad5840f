"""`pricelens mall serve`: run the demo mall until interrupted."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import click

from demo.faults import FAULTS, FaultPlan, FaultSpecError
from demo.mall import SHOP_TYPES, MallSettings, run_mall


def check_faults(ctx, param, value: str | None) -> str:
    """Validate a --faults value early, as a usage error naming the option."""
    try:
        FaultPlan.parse(value)
    except FaultSpecError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return value or ""


FAULTS_HELP = (
    "Switch faults on, each with a rate: e.g. 'http500=0.1,slow=0.05' or 'all=0.1'. "
    f"Faults: {', '.join(FAULTS)}."
)


def mall_options(command):
    """--products, --seed and --day: which demo mall, and which day of it."""
    options = [
        click.option(
            "--products",
            default=300,
            show_default=True,
            type=click.IntRange(1, 15_000),
            help="Catalog size of the demo mall.",
        ),
        click.option("--seed", default=7, show_default=True, help="Seed of the demo mall."),
        click.option(
            "--day",
            default=0,
            show_default=True,
            type=click.IntRange(0),
            help="Mall day: prices and stock drift from day to day.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def register(group: click.Group) -> None:
    group.add_command(mall)


@click.group()
def mall():
    """The local demo mall of shops built from Fashion-MNIST."""


@mall.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port of the first shop; the others take the next ones (0: free ports).",
)
@mall_options
@click.option("--hard", is_flag=True, help="Heavier photo styles (rotation, crop, tint).")
@click.option("--faults", callback=check_faults, default="", metavar="SPEC", help=FAULTS_HELP)
@click.option(
    "--answer-key",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the ground truth (never served) to this file.",
)
@click.pass_obj
def serve(env, port, seed, products, day, hard, faults, answer_key):
    """Serve every demo shop on loopback and print their base URLs; Ctrl-C stops."""
    ports = {name: port + i for i, name in enumerate(SHOP_TYPES)} if port else None
    settings = MallSettings(seed=seed, products=products, day=day, hard=hard, faults=faults)
    with run_mall(settings, ports) as running:
        if answer_key:
            running.write_answer_key(Path(answer_key))
        for name, url in running.base_urls.items():
            click.echo(f"{name}\t{url}")  # tab-separated, for scripts to read
        sys.stdout.flush()
        try:
            threading.Event().wait()  # until Ctrl-C or SIGTERM
        except KeyboardInterrupt:
            env.err.print("mall stopped")
