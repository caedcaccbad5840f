"""Options several commands share, spelled once."""

from __future__ import annotations

import click

from pipeline.output import FORMATS

FORMAT_HELP = "A table for the terminal, or JSON or CSV for programs."


def format_option(help: str = FORMAT_HELP):
    """--format table|json|csv, into `fmt`."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help=help,
    )


def text_or_json_option(help: str = "Text for people, or JSON for programs."):
    """--format text|json, into `fmt`: a command's summary."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help=help,
    )
