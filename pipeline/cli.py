"""The `pricelens` command line: parses options and calls into the library, nothing more."""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import signal
import sys
import traceback
from dataclasses import dataclass

import click
from rich.console import Console

from pipeline.errors import EXPECTED_ERRORS
from pipeline.output import terminal_text
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
    and an interrupt (Ctrl-C, or SIGTERM through main) into exit status 130.

    A command's module is imported when the command is asked for: `pricelens report` does
    not wait for PyTorch (1.5 s) or Selenium to load."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMANDS:
            importlib.import_module(f"pipeline.commands.{COMMANDS[name]}").register(self)
        return super().get_command(ctx, name)

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
            # messages quote scraped text (page errors, titles, URLs): shown, never obeyed
            if isinstance(exc, EXPECTED_ERRORS):
                raise click.ClickException(terminal_text(str(exc))) from exc
            raise click.ClickException(
                terminal_text(
                    f"unexpected {type(exc).__name__}: {exc} (run with --traceback for details)"
                )
            ) from exc


class _VisibleFormatter(logging.Formatter):
    """Log lines quote scraped text too: a control character in one is shown as an escape."""

    def format(self, record: logging.LogRecord) -> str:
        return terminal_text(super().format(record))


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
    handler = logging.StreamHandler()
    handler.setFormatter(_VisibleFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    err = Console(stderr=True)
    ctx.obj = Env(
        Home.resolve(home), traceback, not no_progress and err.is_terminal, Console(), err
    )


# command -> the module in pipeline/commands that defines it (its `register` adds it)
COMMANDS = {
    "classify": "models_cmd",
    "crawl": "crawl_cmd",
    "demo": "demo_cmd",
    "eval": "train_cmd",
    "history": "history_cmd",
    "label": "models_cmd",
    "mall": "mall_cmd",
    "match": "match_cmd",
    "models": "models_cmd",
    "query": "query_cmd",
    "report": "report_cmd",
    "run": "service_cmd",
    "runs": "service_cmd",
    "schedule": "service_cmd",
    "serve": "service_cmd",
    "shops": "shops_cmd",
    "train": "train_cmd",
}


# The command's exit status once it has ended: a stop request after that (threads being
# joined, Python shutting down) ends the process at once with it instead of changing it.
_ENDED: list[int] = []


def _interrupt(signum, frame) -> None:
    if _ENDED:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(_ENDED[0])
    raise KeyboardInterrupt


def _ignore_stops() -> None:
    # Python restores the default actions late in its shutdown: a SIGTERM then would end
    # a finished command as killed (143)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)


def main() -> None:
    # SIGTERM ends like Ctrl-C, so `finally` blocks quit browsers and stop servers
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _interrupt)
    try:
        _ENDED.append(_run_command())
    except KeyboardInterrupt:  # between the command's end and its status being kept
        _ENDED.append(INTERRUPTED)
    atexit.register(_ignore_stops)  # last in, first out: before the other exit handlers
    sys.exit(_ENDED[0])


def _run_command() -> int:
    """The command's exit status, with an interrupt anywhere in it (click's own code
    around the command included) as INTERRUPTED."""
    try:
        result = cli.main(prog_name="pricelens", standalone_mode=False)
    except click.exceptions.Abort as exc:
        interrupted = isinstance(exc.__cause__, KeyboardInterrupt)
        click.echo("interrupted" if interrupted else "Aborted!", err=True)
        return INTERRUPTED if interrupted else 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except SystemExit as exc:  # click's answer to a closed pipe
        return exc.code if isinstance(exc.code, int) else 1
    # without standalone mode click returns an Exit's code (--help, ours for an interrupt)
    # or the command's return value, None for every command here
    return result if isinstance(result, int) else 0
