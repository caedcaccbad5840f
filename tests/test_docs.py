"""README and --help agree with the CLI: every command is documented and has help."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pipeline.cli import cli

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def commands(group: click.Group, prefix: str = "pricelens") -> list[tuple[str, click.Command]]:
    found = []
    context = click.Context(group)
    for name in group.list_commands(context):  # what --help lists: lazy commands loaded
        command = group.get_command(context, name)
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            found.extend(commands(command, path))
        else:
            found.append((path, command))
    return found


ALL = commands(cli)


def test_there_are_commands():
    assert {"pricelens demo", "pricelens query", "pricelens report"} <= {p for p, _ in ALL}


@pytest.mark.parametrize(("path", "command"), ALL, ids=[p for p, _ in ALL])
def test_every_command_is_in_the_readme_with_its_options(path, command):
    rows = [line for line in README.splitlines() if line.startswith(f"| `{path}")]
    assert rows, f"{path} has no row in README.md's command table"
    row = rows[0]
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert any(opt in row for opt in param.opts), f"{path}: {param.opts} not in README"


@pytest.mark.parametrize(("path", "command"), ALL, ids=[p for p, _ in ALL])
def test_every_command_has_help(path, command):
    result = CliRunner().invoke(cli, [*path.split()[1:], "--help"])
    assert result.exit_code == 0 and command.help and len(command.help) > 20


def test_readme_quick_start_has_exactly_the_two_commands_ci_runs():
    quick = README.split("## Quick start", 1)[1].split("##", 1)[0]
    block = re.search(r"```sh\n(.*?)```", quick, re.S).group(1)
    assert [line.split("#")[0].strip() for line in block.strip().splitlines()] == [
        "make demo",
        "make test",
    ]
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert [
        line for line in ci.splitlines() if line and not line.startswith(("#", "set", "cd"))
    ] == ["make test"]


def test_global_options_are_documented():
    for param in cli.params:
        for opt in param.opts:
            if opt not in ("--help", "-h", "--version", "-v"):
                assert opt in README, opt
