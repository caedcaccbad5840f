"""`pricelens run`: what the shops' crawl results make of the pipeline run, and its exit."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.spec import builtin_spec_paths
from db.store import Store
from pipeline.cli import cli
from pipeline.crawling import ShopCrawlResult
from pipeline.runner import crawl_verdict


def result(shop: str, status: str, pages: int = 3, error: str | None = None) -> ShopCrawlResult:
    failures = 0 if status == "ok" else 1
    return ShopCrawlResult(shop, 1, status, pages, pages * 10, failures, error=error)


@pytest.mark.parametrize(
    ("statuses", "ending", "error"),
    [
        (["ok", "ok"], None, None),
        (["failed"], "failed", "every shop failed (a: refused)"),
        (["failed", "failed"], "failed", "every shop failed (a: refused)"),
        (["ok", "failed"], None, "crawl: b failed (b: refused)"),
        (["partial", "ok"], None, "crawl: a partial (a: refused)"),
        (["partial", "failed"], None, "crawl: a partial, b failed (a: refused)"),
        (["ok", "stopped"], "stopped", "stopped on request"),
        (["failed", "stopped"], "stopped", "stopped on request"),
    ],
)
def test_the_crawl_results_decide_how_the_run_ends(statuses, ending, error):
    results = [
        result(shop, status, error=None if status == "ok" else f"{shop}: refused")
        for shop, status in zip("ab", statuses, strict=False)
    ]
    assert crawl_verdict(results) == (ending, error)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.browser
def test_run_in_which_every_shop_failed_is_recorded_failed_and_exits_1(tmp_path: Path):
    (tmp_path / "pricelens.toml").write_text(
        f'[shops.classic]\nbase_url = "http://127.0.0.1:{closed_port()}"\n'
    )
    ran = CliRunner().invoke(
        cli, ["--home", str(tmp_path), "run", "--steps", "crawl,match", "--shop", "classic"]
    )
    assert ran.exit_code == 1, ran.output
    assert "ended failed: every shop failed (classic:" in ran.output
    with Store(tmp_path / "pricelens.db") as store:
        (run,) = store.pipeline_runs(5)
    assert (run["kind"], run["status"]) == ("manual", "failed")
    assert run["error"].startswith("every shop failed (classic:")
    assert '"crawl_failures": 1' in run["counts_json"] and '"groups"' not in run["counts_json"]


@pytest.mark.browser
def test_run_in_which_some_shops_failed_goes_on_ends_partial_and_exits_0(mall, tmp_path: Path):
    """One shop refused, the other crawled: the later steps run, the run is `partial` with the
    failed shop named (on stderr too), and the exit is 0, as `pricelens crawl`'s."""
    (tmp_path / "pricelens.toml").write_text(
        f'[shops.classic]\nbase_url = "{mall.base_urls["classic"]}"\n'
        f'[shops.spa]\nbase_url = "http://127.0.0.1:{closed_port()}"\n'
    )
    ran = CliRunner().invoke(
        cli,
        [
            "--home",
            str(tmp_path),
            "run",
            "--steps",
            "crawl,match",
            "--shop",
            "classic",
            "--shop",
            "spa",
        ],
    )
    assert ran.exit_code == 0, ran.output
    assert "ended partial: crawl: spa failed (spa:" in ran.output
    with Store(tmp_path / "pricelens.db") as store:
        (run,) = store.pipeline_runs(5)
    assert (run["kind"], run["status"]) == ("manual", "partial")
    assert run["error"].startswith("crawl: spa failed (spa:")
    assert '"groups"' in run["counts_json"]  # match ran after the crawl


@pytest.mark.browser
def test_a_user_spec_without_base_url_takes_its_address_from_pricelens_toml(mall, tmp_path):
    """A spec with relative start URLs and no base_url is crawlable once pricelens.toml
    says where the shop is; the check that it is reachable comes after that address."""
    text = (builtin_spec_paths()["classic"]).read_text(encoding="utf-8")
    text = text.replace('name = "classic"', 'name = "mine"')
    text = "\n".join(line for line in text.splitlines() if not line.startswith("base_url"))
    (tmp_path / "shops").mkdir()
    (tmp_path / "shops" / "mine.toml").write_text(text, encoding="utf-8")
    (tmp_path / "pricelens.toml").write_text(
        f'[shops.mine]\nbase_url = "{mall.base_urls["classic"]}"\n'
    )
    ran = CliRunner().invoke(
        cli, ["--home", str(tmp_path), "run", "--steps", "crawl", "--shop", "mine"]
    )
    assert ran.exit_code == 0, ran.output
    with Store(tmp_path / "pricelens.db") as store:
        (run,) = store.pipeline_runs(5)
    assert run["status"] == "ok"
    assert f'"offers": {len(mall.servers["classic"].shop.offers)}' in run["counts_json"]


def test_run_with_no_steps_is_refused_and_records_nothing(tmp_path):
    ran = CliRunner().invoke(cli, ["--home", str(tmp_path), "run", "--steps", " , "])
    assert ran.exit_code == 2 and "give at least one of crawl" in ran.output, ran.output
    assert not (tmp_path / "pricelens.db").exists()
