"""What reaches a terminal is text, never instructions to it: stored titles (rows crawled before
the crawler dropped control characters) print their ESC and bidi controls as visible escapes,
and shop spec values print as written, not as rich markup. Files keep the data as stored."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from crawler.spec import builtin_spec_paths
from db.records import GroupMember, Offer, ProductGroup
from db.store import Store
from pipeline.cli import cli
from pipeline.output import terminal_text

# clears the screen, turns red, plants a hyperlink whose text is not its target, reverses text
HOSTILE = (
    "Evil \x1b[2J\x1b[31mRED\x1b[0m \x1b]8;;https://evil.example/\x1b\\CLICK\x1b]8;;\x1b\\ "
    "\u202eTXT"
)
RAW_CONTROLS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
# a terminal, as rich sees it, that takes no colours: any ESC in the output came from the data
TERMINAL = {"TTY_COMPATIBLE": "1", "TERM": "dumb", "COLUMNS": "250"}
SQL = "SELECT id, title, category_raw FROM offers"


def invoke(home, *args, env=None):
    return CliRunner(env=env).invoke(cli, ["--home", str(home), *args])


@pytest.fixture
def home(tmp_path):
    """Two shops selling one product, whose stored title and category hold controls."""
    day = datetime(2024, 5, 1, tzinfo=UTC)
    with Store(tmp_path / "pricelens.db") as store:
        ids = []
        for number, shop in enumerate(("classic", "spa")):
            for days in range(2):
                run = store.start_crawl_run(shop, f"http://{shop}.test/")
                offer = Offer(
                    shop=shop,
                    url=f"http://{shop}.test/p/1",
                    title=HOSTILE,
                    price=10000 + 1000 * number - 500 * days,
                    currency="KRW",
                    category_raw="Shoes\x1b[8m",
                    scraped_at=day + timedelta(days=days),
                )
                (offer_id,) = store.save_page(run, [offer])
                store.finish_crawl_run(run, "ok")
            ids.append(offer_id)
        store.save_groups(
            [ProductGroup(None, "sneaker", HOSTILE, tuple(GroupMember(i, 1.0) for i in ids))]
        )
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [
        ("report",),
        ("report", "--format", "csv"),
        ("report", "--format", "json"),
        ("query", SQL),
        ("query", SQL, "--format", "csv"),
        ("query", SQL, "--format", "json"),
        ("history", "o1"),
        ("history", "g1"),
    ],
    ids=" ".join,
)
def test_stored_controls_reach_the_terminal_only_as_visible_escapes(home, args):
    result = invoke(home, *args, env=TERMINAL)
    assert result.exit_code == 0, result.output
    assert not RAW_CONTROLS.search(result.output)
    assert "\\u202e" in result.output  # shown, not hidden
    if "json" in args:  # still JSON, and the same data
        assert {row["title"] for row in json.loads(result.output)} == {HOSTILE}


def test_output_that_is_not_a_terminal_keeps_the_data_as_stored(home):
    piped = invoke(home, "query", SQL, "--format", "csv")
    assert next(csv.DictReader(io.StringIO(piped.output)))["title"] == HOSTILE
    out = home / "report.csv"
    assert invoke(home, "report", "--format", "csv", "--out", str(out), env=TERMINAL).exit_code == 0
    assert next(csv.DictReader(out.open(encoding="utf-8", newline="")))["title"] == HOSTILE


def test_terminal_text_shows_controls_and_keeps_the_rest():
    assert terminal_text("a\x1b[2Jb\u202ec\x9b\r") == "a\\u001b[2Jb\\u202ec\\u009b\\u000d"
    text = "블랙 티셔츠 [bold]x[/bold] \\u001b\tone\ntwo"  # tab and newline lay text out
    assert terminal_text(text) == text
    as_json = json.dumps([HOSTILE, "\x7f\u2066"], ensure_ascii=False)
    assert json.loads(terminal_text(as_json)) == [HOSTILE, "\x7f\u2066"]


def _spec(name: str, display_name: str, base_url: str) -> str:
    classic = builtin_spec_paths()["classic"].read_text(encoding="utf-8")
    classic = re.sub(r"(?m)^name = .*$", f'name = "{name}"', classic)
    classic = re.sub(r"(?m)^display_name = .*$", f'display_name = "{display_name}"', classic)
    return re.sub(r"(?m)^base_url = .*$", f'base_url = "{base_url}"', classic)


def test_spec_values_print_as_written_not_as_markup(tmp_path):
    shops = tmp_path / "shops"
    shops.mkdir()
    base_url = "http://127.0.0.1:8101/a[/]b[link=https://evil.example/]OFFICIAL[/link]"
    (shops / "evil.toml").write_text(_spec("evil", "[bold]Verified[/bold]", base_url))
    listed = invoke(tmp_path, "shops", "list", env={"COLUMNS": "250"})
    assert listed.exit_code == 0, listed.output
    assert base_url in listed.output and "[bold]Verified[/bold]" in listed.output


def test_a_spec_file_name_prints_as_written_not_as_markup(tmp_path):
    shops = tmp_path / "shops"
    shops.mkdir()
    stem = "[link=https:__evil.example]classic[_link]"
    (shops / f"{stem}.toml").write_text(_spec("classic", "Classic", "http://127.0.0.1:8101"))
    listed = invoke(tmp_path, "shops", "list", env={"COLUMNS": "250"})
    assert listed.exit_code == 1  # misnamed: the name key differs from the file name
    rows = [line.split("│") for line in listed.output.splitlines() if "│" in line]
    assert stem in {row[1].strip() for row in rows}


def test_errors_and_log_lines_quoting_scraped_text_show_its_controls(tmp_path):
    """A crawl error or a log line may quote a page (its script error, a title): through the
    real entry point, neither may act on the terminal."""
    script = f"""
import logging, sys
import click
from pipeline.cli import cli
from pipeline.errors import PipelineError

@cli.command("hostile")
def hostile():
    logging.getLogger("crawler.engine").warning("page said %s", {HOSTILE!r})
    raise PipelineError("shop 'spa' failed: " + {HOSTILE!r})

sys.argv = ["pricelens", "--home", {str(tmp_path)!r}, "hostile"]
from pipeline.cli import main
main()
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr
    assert "WARNING crawler.engine: page said Evil \\u001b[2J" in done.stderr
    assert "Error: shop 'spa' failed: Evil \\u001b[2J" in done.stderr
    assert not RAW_CONTROLS.search(done.stderr.replace("\n", "")), done.stderr
