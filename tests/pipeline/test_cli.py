"""The CLI frame: home resolution, query output, one-line errors and --traceback."""

from __future__ import annotations

import hashlib
import json
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
    assert as_csv.output == 'sku,title,price\nA1,"Tee, ""black""",12900\n'


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
    assert as_csv.output.splitlines()[0] == "id,id,id_2,id"  # csv and table: names as is
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
