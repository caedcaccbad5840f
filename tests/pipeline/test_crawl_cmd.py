"""`pricelens crawl` and `pricelens shops`: parallel sessions, a remote WebDriver, price changes
between mall days, and spec files a user writes."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.spec import builtin_spec_paths, load_builtin_spec
from demo.mall import MallSettings, run_mall
from demo.menu import CATEGORIES
from pipeline.cli import cli
from pipeline.crawling import CrawlOptions, crawl_shops
from pipeline.settings import Home
from tests.remote_chromedriver import chromedriver_on_loopback, free_port

pytestmark = pytest.mark.browser
SHOPS = ("classic", "spa", "scroll", "menu")


def invoke(home: Path, *args: str):
    return CliRunner().invoke(cli, ["--home", str(home), *args])


def summary_row(output: str, shop: str) -> list[str]:
    """The cells of *shop*'s row in the crawl summary table."""
    row = next(line for line in output.splitlines() if line.startswith(f"│{shop} "))
    return [cell.strip() for cell in row.strip("│").split("│")]


def test_crawl_one_shop_prints_a_summary(mall, tmp_path):
    result = invoke(
        tmp_path,
        "crawl",
        "--shop",
        "classic",
        "--base-url",
        mall.base_urls["classic"],
        "--max-pages",
        "1",
    )
    assert result.exit_code == 0, result.output
    page_size = str(mall.servers["classic"].shop.page_size)
    # shop, status, pages, offers, new, price changes, errors, photos, fetched
    assert summary_row(result.output, "classic") == [
        "classic",
        "ok",
        "1",
        page_size,
        page_size,
        "0",
        "0",
        page_size,
        page_size,
    ]
    # a "next" link was left unopened: the run says so, and the report hides nothing by it
    with sqlite3.connect(Home(tmp_path).database) as db:
        assert db.execute("SELECT capped FROM crawl_runs").fetchall() == [(1,)]


def test_a_crawl_that_reads_every_page_is_not_capped(mall, tmp_path):
    shop = mall.servers["classic"].shop
    args = ("crawl", "--shop", "classic", "--base-url", mall.base_urls["classic"])
    for max_pages in (shop.page_count, shop.page_count + 1):  # the last page has no "next"
        result = invoke(tmp_path, *args, "--max-pages", str(max_pages))
        assert result.exit_code == 0, result.output
    with sqlite3.connect(Home(tmp_path).database) as db:
        assert db.execute("SELECT pages, capped FROM crawl_runs").fetchall() == 2 * [
            (shop.page_count, 0)
        ]


def test_a_second_crawl_downloads_only_the_photos_that_changed(mall, tmp_path):
    args = ("crawl", "--shop", "classic", "--base-url", mall.base_urls["classic"])
    first = invoke(tmp_path, *args, "--max-pages", "1")
    second = invoke(tmp_path, *args, "--max-pages", "2")  # page 2's photos are new
    for result in (first, second):
        assert result.exit_code == 0, result.output
    shop = mall.servers["classic"].shop
    one, two = len(shop.page(1)), len(shop.page(2))
    photos = [summary_row(r.output, "classic")[7:] for r in (first, second)]
    assert photos == [[str(one), str(one)], [str(one + two), str(two)]]
    with sqlite3.connect(Home(tmp_path).database) as db:
        unlinked = db.execute("SELECT COUNT(*) FROM offers WHERE image_sha256 IS NULL")
        assert unlinked.fetchone()[0] == 0
        sources = db.execute("SELECT COUNT(*), COUNT(etag) FROM photo_sources").fetchone()
    assert sources == (one + two, one + two)


def test_sessions_in_parallel_store_the_same_as_one_session(tmp_path):
    settings = MallSettings(seed=4, products=40)
    counts = []
    for sessions in (1, 3):
        home = Home(tmp_path / f"s{sessions}").create()
        with run_mall(settings) as running:
            specs = [load_builtin_spec(s).with_base_url(running.base_urls[s]) for s in SHOPS]
            results = crawl_shops(home, specs, CrawlOptions(sessions=sessions))
        assert [r.shop for r in results] == list(SHOPS) and {r.status for r in results} == {"ok"}
        with sqlite3.connect(home.database) as db:
            counts.append(
                sorted(
                    db.execute(
                        "SELECT s.name, o.sku, o.price FROM offers o "
                        "JOIN shops s ON s.id = o.shop_id"
                    )
                )
            )
    assert counts[0] == counts[1]
    assert len(counts[0]) == sum(len(s["offers"]) for s in running.answer_key()["shops"].values())


def test_a_later_mall_day_shows_up_as_price_changes(tmp_path):
    home = Home(tmp_path / "home").create()
    day_prices, results = [], []
    for day in (0, 0, 1):
        with run_mall(MallSettings(seed=9, products=40, day=day, shops=("classic",))) as mall:
            spec = load_builtin_spec("classic").with_base_url(mall.base_urls["classic"])
            (result,) = crawl_shops(home, [spec])
            results.append(result)
            day_prices.append(
                {o["sku"]: o["price"] for o in mall.answer_key()["shops"]["classic"]["offers"]}
            )
    first, same_day, next_day = results
    assert first.new == first.offers and first.price_changes == 0
    assert same_day.new == 0 and same_day.price_changes == 0
    changed = sum(day_prices[1][sku] != day_prices[2][sku] for sku in day_prices[2])
    assert next_day.price_changes == changed > 0


@pytest.mark.skipif(shutil.which("chromedriver") is None, reason="needs a chromedriver binary")
def test_crawl_through_a_remote_webdriver_on_loopback(mall, tmp_path):
    with chromedriver_on_loopback() as remote:
        result = invoke(
            tmp_path,
            "crawl",
            "--shop",
            "spa",
            "--base-url",
            mall.base_urls["spa"],
            "--remote",
            remote,
            "--max-pages",
            "2",
        )
    assert result.exit_code == 0, result.output
    assert " ok " in next(line for line in result.output.splitlines() if "spa" in line)
    with sqlite3.connect(tmp_path / "pricelens.db") as db:
        stored = db.execute("SELECT COUNT(*) FROM offers").fetchone()[0]
        capped = db.execute("SELECT capped FROM crawl_runs").fetchone()[0]
    shop = mall.servers["spa"].shop
    assert stored == min(2 * shop.page_size, len(shop.offers))
    assert capped == (shop.page_count > 2)  # "load more" was still shown after 2 pages


def test_crawl_without_specs_says_where_to_put_them(tmp_path):
    result = invoke(tmp_path, "crawl")
    assert result.exit_code == 1
    assert str(tmp_path / "shops") in result.output and "--shop" in result.output


def test_shops_list_validate_and_a_user_spec_that_overrides_a_builtin(tmp_path):
    (tmp_path / "shops").mkdir()
    mine = tmp_path / "shops" / "classic.toml"
    mine.write_text(
        builtin_spec_paths()["classic"]
        .read_text()
        .replace('display_name = "Hanbit Classic"', 'display_name = "My Classic"')
    )
    listed = invoke(tmp_path, "shops", "list")
    assert listed.exit_code == 0 and "My Classic" in listed.output and "built-in" in listed.output
    bad = tmp_path / "bad.toml"
    bad.write_text(mine.read_text().replace("[pagination]", "[pagination]\nspeed = 3"))
    checked = invoke(tmp_path, "shops", "validate", str(mine), str(bad))
    assert checked.exit_code == 1
    assert f"ok: {mine}" in checked.output
    assert "pagination.speed" in checked.output and "unknown key" in checked.output


def test_shops_test_prints_the_first_page_and_stores_nothing(mall, tmp_path):
    result = invoke(tmp_path, "shops", "test", "menu", "--base-url", mall.base_urls["menu"])
    assert result.exit_code == 0, result.output
    assert "offers" in result.output.splitlines()[-1]
    shop = mall.servers["menu"].shop
    first = next(offers for label in CATEGORIES if (offers := shop.in_category(label)))
    assert first[0].title.split()[0] in result.output  # from the first menu entry with goods
    assert "/c/" + CATEGORIES[first[0].product.category][0] in result.output
    assert not (tmp_path / "pricelens.db").exists()


def test_the_summarys_errors_are_the_rows_in_crawl_errors(tmp_path):
    """Photos refused (not pages failed) still count as the run's errors, as recorded."""
    settings = MallSettings(seed=5, products=12, shops=("classic",), faults="corrupt_image=1")
    with run_mall(settings) as running:
        args = ("crawl", "--shop", "classic", "--base-url", running.base_urls["classic"])
        result = invoke(tmp_path, *args, "--max-pages", "1")
    assert result.exit_code == 0, result.output
    row = summary_row(result.output, "classic")
    with sqlite3.connect(Home(tmp_path).database) as db:
        status, errors = db.execute("SELECT status, errors FROM crawl_runs").fetchone()
        recorded = db.execute("SELECT COUNT(*) FROM crawl_errors").fetchone()[0]
    assert row[1] == status == "ok"  # every page was read; only the photos were refused
    assert int(row[6]) == errors == recorded > 0


def test_shops_list_marks_invalid_and_misnamed_specs_and_crawl_refuses_them(tmp_path):
    shops = tmp_path / "shops"
    shops.mkdir()
    classic = builtin_spec_paths()["classic"].read_text(encoding="utf-8")
    (shops / "mine.toml").write_text(classic.replace('name = "classic"', 'name = "myshop"'))
    (shops / "typo.toml").write_text(classic.replace('name = "classic"', 'name = "typo"\ncolor=1'))
    (shops / "latin.toml").write_bytes(b'name = "caf\xe9"\n')
    listed = invoke(tmp_path, "shops", "list")
    assert listed.exit_code == 1
    names = {line.split("│")[1].strip() for line in listed.output.splitlines() if "│" in line}
    assert {"classic", "spa", "mine", "typo", "latin"} <= names  # every spec is still listed
    assert f"{shops / 'mine.toml'}: key 'name': 'myshop' differs from the file name" in (
        listed.output
    )
    assert f"{shops / 'typo.toml'}: key 'color': unknown key" in listed.output
    assert f"{shops / 'latin.toml'}: not UTF-8" in listed.output
    crawled = invoke(tmp_path, "crawl", "--shop", "mine")
    assert crawled.exit_code == 1 and "differs from the file name" in crawled.output
    assert not Home(tmp_path).database.exists()  # refused before anything ran


def test_a_remote_webdriver_that_is_not_there_is_named(mall, tmp_path):
    args = ("crawl", "--shop", "classic", "--base-url", mall.base_urls["classic"])
    not_a_url = invoke(tmp_path, *args, "--remote", "grid:4444")
    assert not_a_url.exit_code == 2 and "'grid:4444' is not an http(s) URL" in not_a_url.output
    remote = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    gone = invoke(tmp_path, *args, "--remote", remote)
    assert gone.exit_code == 1
    assert f"the remote WebDriver at {remote} cannot be reached" in gone.output


def test_shops_validate_applies_the_file_name_rule_of_home_shops(tmp_path):
    """What `shops list` and `crawl` would refuse, validate refuses; a draft elsewhere is ok,
    with a note on where it must go under its name."""
    classic = builtin_spec_paths()["classic"].read_text(encoding="utf-8")
    (tmp_path / "shops").mkdir()
    installed = tmp_path / "shops" / "mine.toml"
    installed.write_text(classic)  # name = "classic"
    draft = tmp_path / "draft.toml"
    draft.write_text(classic)
    checked = invoke(tmp_path, "shops", "validate", str(installed), str(draft))
    assert checked.exit_code == 1
    assert f"invalid: {installed}: key 'name': 'classic' differs from the file name" in (
        checked.stderr
    )
    assert f"ok: {draft} (classic)" in checked.output
    assert f"note: {draft}: install it as {tmp_path / 'shops' / 'classic.toml'}" in checked.stderr
    assert invoke(tmp_path, "shops", "list").exit_code == 1  # as validate said


def test_shops_validate_takes_a_link_by_its_own_name_as_the_crawl_does(tmp_path):
    classic = builtin_spec_paths()["classic"].read_text(encoding="utf-8")
    (tmp_path / "shops").mkdir()
    target = tmp_path / "classic.toml"
    target.write_text(classic)
    (tmp_path / "shops" / "mine.toml").symlink_to(target)  # named mine there: refused
    (tmp_path / "shops" / "classic.txt").write_text(classic)  # not a spec file there
    link = tmp_path / "elsewhere.toml"
    link.symlink_to(tmp_path / "shops" / "classic.txt")
    files = [tmp_path / "shops" / "mine.toml", tmp_path / "shops" / "classic.txt", link]
    checked = invoke(tmp_path, "shops", "validate", *map(str, files))
    assert "invalid: " in checked.stderr and "mine.toml: key 'name'" in checked.stderr
    assert f"ok: {tmp_path / 'shops' / 'classic.txt'} (classic)" in checked.output
    assert f"ok: {link} (classic)" in checked.output
    assert checked.exit_code == 1
