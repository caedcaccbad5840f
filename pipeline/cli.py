"""The `pricelens` command line: parses options and calls into the library, nothing more."""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import traceback
from dataclasses import dataclass

import click
from rich.console import Console

from pipeline.errors import EXPECTED_ERRORS
from pipeline.settings import HOME_ENV, Home

log = logging.getLogger("pricelens")

INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


@dataclass
class Env:
    """What every command gets: the home folder, the consoles and the error policy."""

    home: Home
    traceback: bool
    progress: bool
    out: Console
    err: Console


class PricelensGroup(click.Group):
    """Turns every failure into one line on stderr and exit status 1 (--traceback shows all),
    and an interrupt (Ctrl-C, or SIGTERM through main) into exit status 130."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            # click would report it as "Aborted!" with status 1, the status of an error
            env = ctx.find_object(Env)
            if env is not None and env.traceback:
                traceback.print_exc()
            click.echo("\ninterrupted", err=True)
            raise click.exceptions.Exit(INTERRUPTED) from None
        except Exception as exc:
            env = ctx.find_object(Env)
            if env is None or env.traceback:
                raise
            if isinstance(exc, EXPECTED_ERRORS):
                raise click.ClickException(str(exc)) from exc
            raise click.ClickException(
                f"unexpected {type(exc).__name__}: {exc} (run with --traceback for details)"
            ) from exc


@click.group(cls=PricelensGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    envvar=HOME_ENV,
    help=f"Folder for the database, images, models and config "
    f"[env {HOME_ENV}; default: the per-user data folder].",
)
@click.option("--traceback", is_flag=True, help="Show the full traceback on errors.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
@click.version_option(package_name="pricelens")
@click.pass_context
def cli(
    ctx: click.Context, home: str | None, traceback: bool, no_progress: bool, verbose: int
) -> None:
    """pricelens compares the prices of the same products across online shops."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    err = Console(stderr=True)
    ctx.obj = Env(
        Home.resolve(home), traceback, not no_progress and err.is_terminal, Console(), err
    )


COMMAND_MODULES = (
    "crawl_cmd",
    "demo_cmd",
    "history_cmd",
    "mall_cmd",
    "match_cmd",
    "models_cmd",
    "query_cmd",
    "report_cmd",
    "service_cmd",
    "shops_cmd",
    "train_cmd",
)


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"pipeline.commands.{name}").register(cli)


_register_commands()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> None:
    # SIGTERM ends like Ctrl-C, so `finally` blocks quit browsers and stop servers
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        cli.main(prog_name="pricelens")
    except KeyboardInterrupt:  # one click let through (it reports those in parsing as Abort)
        sys.exit(INTERRUPTED)
