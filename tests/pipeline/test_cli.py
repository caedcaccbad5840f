"""The CLI frame: home resolution, query output, one-line errors and --traceback."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from db.errors import QueryRefused, StoreError
from db.records import Offer
from db.store import Store
from pipeline.cli import cli
from pipeline.settings import HOME_ENV, Home


@pytest.fixture
def home(tmp_path):
    with Store(tmp_path / "pricelens.db") as store:
        run = store.start_crawl_run("classic", "http://127.0.0.1:1")
        store.save_page(
            run,
            [Offer("classic", "http://127.0.0.1:1/p/1", 'Tee, "black"', 12900, "KRW", sku="A1")],
        )
    return tmp_path


def invoke(*args, **kwargs):
    return CliRunner().invoke(cli, list(args), **kwargs)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_query_prints_json_and_csv(home):
    sql = "SELECT sku, title, price FROM offers"
    as_json = invoke("--home", str(home), "query", sql, "--format", "json")
    assert as_json.exit_code == 0
    assert json.loads(as_json.output) == [{"sku": "A1", "title": 'Tee, "black"', "price": 12900}]
    as_csv = invoke("--home", str(home), "query", sql, "--format", "csv")
    assert as_csv.output == '"sku","title","price"\n"A1","Tee, ""black""",12900\n'


def test_query_json_keeps_every_column_when_names_repeat(home):
    sql = "SELECT o.id, s.id, o.title, s.name FROM offers o JOIN shops s ON s.id = o.shop_id"
    as_json = invoke("--home", str(home), "query", sql, "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output) == [
        {"id": 1, "id_2": 1, "title": 'Tee, "black"', "name": "classic"}
    ]
    sql = "SELECT 1 AS id, 2 AS id, 3 AS id_2, 4 AS id"  # a suffix already taken is skipped
    as_json = invoke("--home", str(home), "query", sql, "--format", "json")
    assert json.loads(as_json.output) == [{"id": 1, "id_3": 2, "id_2": 3, "id_4": 4}]
    as_csv = invoke("--home", str(home), "query", sql, "--format", "csv")
    assert as_csv.output.splitlines()[0] == '"id","id","id_2","id"'  # csv, table: names as is
    assert "id_2" in invoke("query", "--help").output


def test_query_table_shows_nulls(home):
    result = invoke("--home", str(home), "query", "SELECT sku, list_price FROM offers")
    assert result.exit_code == 0 and "NULL" in result.output and "A1" in result.output


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO shops (name, created_at) VALUES ('x', 'y')",
        "UPDATE offers SET price = 1",
        "DELETE FROM offers",
        "ATTACH DATABASE 'other.db' AS other",
        "PRAGMA query_only = 0",
        "PRAGMA user_version = 5",
    ],
)
def test_query_refuses_writes_with_one_line_and_leaves_the_file_unchanged(home, sql):
    before = digest(home / "pricelens.db")
    result = invoke("--home", str(home), "query", sql)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "pricelens.db" in lines[0]
    assert digest(home / "pricelens.db") == before


def test_traceback_flag_lets_the_exception_through(home):
    result = invoke("--home", str(home), "--traceback", "query", "DELETE FROM offers")
    assert isinstance(result.exception, QueryRefused)


def test_a_missing_database_is_a_clear_error(tmp_path):
    result = invoke("--home", str(tmp_path / "nowhere"), "query", "SELECT 1")
    assert result.exit_code == 1
    assert "nowhere" in result.output and "no such database" in result.output
    assert not (tmp_path / "nowhere").exists()


def test_home_comes_from_the_flag_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "from-env"))
    assert Home.resolve().root == tmp_path / "from-env"
    assert Home.resolve(tmp_path / "flag").root == tmp_path / "flag"
    monkeypatch.delenv(HOME_ENV)
    assert "pricelens" in str(Home.resolve().root)


def test_the_environment_variable_reaches_commands(home, monkeypatch):
    monkeypatch.setenv(HOME_ENV, str(home))
    assert (
        invoke("query", "SELECT COUNT(*) AS n FROM offers", "--format", "json")
        .output.strip()
        .replace(" ", "")
        .replace("\n", "")
        == '[{"n":1}]'
    )


def test_match_without_a_model_says_what_to_do(home):
    result = invoke("--home", str(home), "match")
    assert result.exit_code == 1 and "pricelens demo" in result.output


def test_the_console_script_is_installed():
    script = Path(sys.executable).parent / "pricelens"
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "Usage: pricelens" in done.stdout


def test_store_errors_name_the_file(tmp_path):
    bad = tmp_path / "not-a-db.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"not-a-db\.db"):
        Store(bad)


def test_query_on_an_older_schema_says_so_and_leaves_the_file_as_it_is(tmp_path, monkeypatch):
    """query never writes, so it cannot upgrade the file as other commands do: it says the
    file is behind (paths still absolute, say) and changes nothing."""
    import db.migrations

    with monkeypatch.context() as patch:
        patch.setattr(db.migrations, "MIGRATIONS", db.migrations.MIGRATIONS[:5])
        Store(tmp_path / "pricelens.db").close()
    before = digest(tmp_path / "pricelens.db")
    old = CliRunner().invoke(cli, ["--home", str(tmp_path), "query", "SELECT 1 AS one"])
    assert old.exit_code == 0, old.output
    assert "one" in old.stdout and "schema version" not in old.stdout
    newest = db.migrations.MIGRATIONS[-1].version
    assert f"is at schema version 5, this pricelens at {newest}" in old.stderr
    assert digest(tmp_path / "pricelens.db") == before
    Store(tmp_path / "pricelens.db").close()  # any other command upgrades it
    upgraded = CliRunner().invoke(cli, ["--home", str(tmp_path), "query", "SELECT 1 AS one"])
    assert upgraded.exit_code == 0 and "schema version" not in upgraded.stderr


def test_every_command_is_found_where_the_lazy_table_says():
    import importlib

    import click

    from pipeline.cli import COMMANDS

    modules = set(COMMANDS.values())
    registered = {}
    for module in modules:
        group = click.Group()
        importlib.import_module(f"pipeline.commands.{module}").register(group)
        registered.update(dict.fromkeys(group.commands, module))
    assert registered == COMMANDS
    folder = Path(importlib.import_module("pipeline.commands").__file__).parent
    assert {p.stem for p in folder.glob("*_cmd.py")} == modules


def test_a_command_loads_only_what_it_needs(tmp_path):
    """`pricelens report` and `query` answer without loading PyTorch or Selenium (2.5 s of
    imports on the 2-core machine); `train` loads PyTorch."""
    script = f"""
import sys
from pipeline.cli import main
sys.argv = ["pricelens", "--home", {str(tmp_path)!r}] + sys.argv[1:]
try:
    main()
except SystemExit:
    pass
print("LOADED", "torch" in sys.modules, "selenium" in sys.modules, file=sys.stderr)
"""
    for args, loaded in [
        (["report"], "LOADED False False"),
        (["query", "SELECT 1"], "LOADED False False"),
        (["train", "--help"], "LOADED True False"),
    ]:
        done = subprocess.run(
            [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120
        )
        assert loaded in done.stderr, (args, done.stderr)


ENDING = """
import sys, threading
import click
import pipeline.cli
from pipeline.cli import cli, main


class SaysEnded(list):  # the command's status stored: a stop from now on comes after it
    def append(self, status):
        super().append(status)
        print("ended", flush=True)


pipeline.cli._ENDED = SaysEnded()

@cli.command("finish")
@click.option("--late-interrupt", is_flag=True)
@click.pass_context
def finish(ctx, late_interrupt):
    if late_interrupt:  # a Ctrl-C in click's own code after the command returned
        ctx.find_root().call_on_close(lambda: (_ for _ in ()).throw(KeyboardInterrupt))
    else:  # a thread Python waits for at exit, as a slow browser quit would be
        threading.Thread(target=threading.Event().wait).start()
    print("done", flush=True)

sys.argv = ["pricelens", "--home", sys.argv[1], "finish", *sys.argv[2:]]
main()
"""


def test_a_sigterm_after_the_command_ended_keeps_its_exit_status(tmp_path):
    """The output is written and the data stored: a stop request while Python shuts down
    ends the process at once, with the command's status (not 143, not a hang)."""
    child = subprocess.Popen(
        [sys.executable, "-c", ENDING, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline() == "done\n"
    assert child.stdout.readline() == "ended\n"  # a stop before this is one during the command
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=60)
    assert (child.returncode, stderr) == (0, "")


def test_an_interrupt_in_clicks_code_around_the_command_is_an_interrupt(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", ENDING, str(tmp_path), "--late-interrupt"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stderr.strip()) == (130, "interrupted"), done.stderr
    assert done.stdout == "done\nended\n"
