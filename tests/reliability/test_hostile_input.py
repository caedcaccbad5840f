"""Hostile input that needs no browser: SQL through `pricelens query`, scraped text in CSV
reports, broken config files. Each is refused whole and changes nothing on disk."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.output import write_csv
from tests.db.test_query import REFUSED, RUNAWAY
from tests.pipeline.report_fixture import LISTINGS, Listing, build_store
from tests.pipeline.test_schedule import test_a_bad_config_names_the_file_and_key as config_case
from tests.reliability.conftest import digest

BAD_CONFIGS = config_case.pytestmark[0].args[1]  # the schedule tests' bad configs, at the CLI


def invoke(home: Path, *args: str):
    return CliRunner().invoke(cli, ["--home", str(home), *args])


def files_of(home: Path) -> dict[str, bytes]:
    """The database's bytes: the file and its write-ahead log (a missing log is an empty one;
    -shm is SQLite's shared-memory index, rebuilt by any reader, not data)."""
    wal = home / "pricelens.db-wal"
    return {
        "db": digest(home / "pricelens.db"),
        "wal": wal.read_bytes() if wal.exists() else b"",
    }


@pytest.fixture(scope="module")
def hostile_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("hostile")
    formulas = (
        Listing("classic", "x-1", '=HYPERLINK("http://evil","x")', (100, 100), 0, "tshirt"),
        Listing("spa", "x-2", "+1+cmd|' /C calc'!A0", (100, 100), 0, "tshirt"),
        Listing("menu", "x-3", "-2+3", (100, 100), 0, "tshirt"),
        Listing("classic", "x-4", "@SUM(1+1)*cmd|' /C calc'!A0", (90, 90), 1, "ankle_boot"),
        Listing("spa", "x-5", "\t=1+1", (90, 90), 1, "ankle_boot"),
    )
    build_store(home / "pricelens.db", LISTINGS + formulas)
    assert invoke(home, "match").exit_code == 0
    return home


@pytest.mark.parametrize("sql", [*REFUSED, "PRAGMA query_only=0; DELETE FROM offers", RUNAWAY])
def test_query_refuses_or_stops_and_the_file_bytes_are_unchanged(hostile_home, tmp_path, sql):
    before = files_of(hostile_home)
    result = invoke(hostile_home, "query", "--timeout", "0.5", sql.format(other=tmp_path / "o"))
    assert result.exit_code == 1, result.output
    message = result.output.strip()
    assert len(message.splitlines()) == 1 and str(hostile_home) in message
    assert ("stopped after 0.5s" in message) == (sql == RUNAWAY)
    assert files_of(hostile_home) == before
    assert not (tmp_path / "o").exists()


def test_csv_cells_that_would_run_as_formulas_are_neutralised(hostile_home):
    result = invoke(hostile_home, "report", "--format", "csv", "--min-shops", "1")
    assert result.exit_code == 0, result.output
    cells = [cell for row in csv.reader(io.StringIO(result.output)) for cell in row]
    assert cells
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r")]
    assert not [c for c in cells if c[:1] == "-" and not c[1:].replace(".", "").isdigit()]
    assert '\'=HYPERLINK("http://evil","x")' in cells


def test_a_spreadsheet_that_splits_on_semicolons_finds_no_formula_either():
    out = io.StringIO()
    write_csv(out, ["title", "price"], [["Tee x;=1+1;@SUM(A1)", 12900], ["-5;+1", None]])
    for delimiter in (",", ";"):
        read = csv.reader(io.StringIO(out.getvalue()), delimiter=delimiter)
        cells = [cell for row in read for cell in row]
        assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")], (delimiter, cells)


@pytest.mark.parametrize(("text", "key", "problem"), BAD_CONFIGS)
def test_a_bad_config_stops_the_run_before_anything_runs(tmp_path, text, key, problem):
    (tmp_path / "pricelens.toml").write_text(text)
    result = invoke(tmp_path, "run", "--steps", "crawl,match,report")
    assert result.exit_code != 0
    message = result.output.strip()
    assert len(message.splitlines()) == 1, message
    assert str(tmp_path / "pricelens.toml") in message and key in message and problem in message
    assert not (tmp_path / "pricelens.db").exists()  # nothing ran half-configured
