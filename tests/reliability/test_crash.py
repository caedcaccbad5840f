"""Crash consistency: SIGKILL mid-crawl, a reader during a crawl, a disk that fills up."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from crawler.spec import load_builtin_spec
from demo.mall import MallSettings, run_mall
from pipeline.crawling import CrawlOptions, crawl_shops
from pipeline.settings import Home
from tests.reliability.conftest import (
    NOTHING_LOST,
    QUICK,
    browsers_marked,
    kill_pids,
    lost_or_doubled,
    read,
    wait_until,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PRICELENS = str(Path(sys.executable).parent / "pricelens")


def crawl_cli(home: Path, base_url: str, tmp: Path) -> subprocess.Popen:
    """`pricelens crawl` in a subprocess whose browsers carry *tmp* (their TMPDIR)."""
    tmp.mkdir(parents=True, exist_ok=True)
    command = [PRICELENS, "--home", str(home), "crawl", "--shop", "classic", "--base-url", base_url]
    env = {**os.environ, "TMPDIR": str(tmp)}
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def classic_offers(mall) -> int:
    return len(mall.answer_key()["shops"]["classic"]["offers"])


def test_sigkill_mid_crawl_keeps_whole_pages_and_the_next_crawl_completes(tmp_path):
    home = tmp_path / "home"
    db = home / "pricelens.db"
    marker = Path(tempfile.mkdtemp(prefix="pl-"))  # short: Chrome puts sockets under TMPDIR
    slow = MallSettings(seed=5, products=60, shops=("classic",), faults="slow=0.5")
    with run_mall(slow) as mall:
        crawl = crawl_cli(home, mall.base_urls["classic"], marker / "killed")
        wait_until(
            lambda: (
                crawl.poll() is not None or read(db, "SELECT 1 FROM crawl_runs WHERE pages >= 1")
            )
        )
        assert crawl.poll() is None, crawl.communicate()
        crawl.kill()  # SIGKILL: no finally, no rollback, no quit()
        crawl.wait(timeout=30)
        killed = read(db, "SELECT id, status, pages, offers FROM crawl_runs")
        assert [(s) for _, s, _, _ in killed] == ["running"]
        run_id, _, pages, offers = killed[0]
        page_size = mall.servers["classic"].shop.page_size
        assert pages >= 1 and offers == pages * page_size  # every stored page is whole
        assert read(db, "SELECT COUNT(*) FROM price_observations")[0][0] == offers
        assert lost_or_doubled(db) == NOTHING_LOST

        again = crawl_cli(home, mall.base_urls["classic"], marker / "again")
        _, err = again.communicate(timeout=300)
        assert again.returncode == 0, err
        total = classic_offers(mall)
    last = read(db, "SELECT status, offers FROM crawl_runs WHERE id != ?", run_id)
    assert last == [("ok", total)]
    assert read(db, "SELECT COUNT(*) FROM offers")[0][0] == total
    assert lost_or_doubled(db) == NOTHING_LOST
    assert not browsers_marked(str(marker / "again"))  # a crawl that ends leaves no browser
    killed_browsers = str(marker / "killed")
    try:  # the killed crawler's chromedriver and Chrome die with it
        wait_until(lambda: not browsers_marked(killed_browsers), seconds=30)
    finally:
        kill_pids(browsers_marked(killed_browsers))
        shutil.rmtree(marker, ignore_errors=True)


def test_a_reader_during_a_crawl_sees_whole_pages_and_does_not_block_the_writer(tmp_path):
    home = Home(tmp_path / "home").create()
    settings = MallSettings(seed=6, products=40, shops=("classic",), faults="slow=0.3")
    with run_mall(settings) as mall:
        spec = load_builtin_spec("classic").with_base_url(mall.base_urls["classic"])
        crawl_shops(home, [spec], QUICK)  # day one: an earlier crawl to read
        first = read(home.database, "SELECT COUNT(*) FROM price_observations")[0][0]
        reader = sqlite3.connect(f"file:{home.database}?mode=ro", uri=True)
        reader.execute("BEGIN")
        assert reader.execute("SELECT COUNT(*) FROM price_observations").fetchone()[0] == first
        results: list = []
        writer = threading.Thread(target=lambda: results.extend(crawl_shops(home, [spec], QUICK)))
        writer.start()
        seen = set()
        while writer.is_alive():  # a second reader polls while pages are written
            row = read(
                home.database,
                "SELECT (SELECT SUM(offers) FROM crawl_runs), "
                "(SELECT COUNT(*) FROM price_observations)",
            )[0]
            assert row[0] == row[1], row  # the counter and the rows move in one transaction
            seen.add(row[1])
            writer.join(timeout=0.2)
        # the long-lived snapshot never changed, and it held up no write
        assert reader.execute("SELECT COUNT(*) FROM price_observations").fetchone()[0] == first
        reader.execute("COMMIT")
        assert reader.execute("SELECT COUNT(*) FROM price_observations").fetchone()[0] == 2 * first
        reader.close()
    assert [r.status for r in results] == ["ok"]
    assert len(seen) > 1  # the poller really saw the crawl in progress
    assert lost_or_doubled(home.database) == NOTHING_LOST


@contextlib.contextmanager
def small_disk(path: Path, size: str):
    """A tmpfs of *size* at *path* (needs root, or CAP_SYS_ADMIN)."""
    path.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()}); needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path, leave_bytes: int) -> Path:
    """Fill the file system of *path* up to *leave_bytes* free."""
    free = shutil.disk_usage(path).free
    filler = path / "filler"
    filler.write_bytes(b"\0" * max(free - leave_bytes, 0))
    return filler


@pytest.mark.skipif(shutil.which("mount") is None, reason="no mount command for a small tmpfs")
def test_a_full_disk_mid_crawl_rolls_back_records_the_error_and_keeps_earlier_data(tmp_path):
    settings = MallSettings(seed=8, products=60, shops=("classic",))
    with small_disk(tmp_path / "disk", "8m") as disk, run_mall(settings) as mall:
        home = Home(disk / "home").create()
        spec = load_builtin_spec("classic").with_base_url(mall.base_urls["classic"])
        first = crawl_shops(home, [spec], CrawlOptions(max_pages=1))
        assert [r.status for r in first] == ["ok"]
        earlier = read(home.database, "SELECT * FROM price_observations ORDER BY id")
        filler = fill(disk, leave_bytes=96 * 1024)

        full = crawl_shops(home, [spec], QUICK)
        assert full[0].status in ("failed", "partial") and "full" in (full[0].error or ""), full
        assert (
            read(
                home.database,
                "SELECT * FROM price_observations WHERE crawl_run_id = ?",
                first[0].crawl_run_id,
            )
            == earlier
        )
        assert lost_or_doubled(home.database) == NOTHING_LOST
        filler.unlink()

        again = crawl_shops(home, [spec], QUICK)
        assert [r.status for r in again] == ["ok"]
        assert again[0].offers == classic_offers(mall)
        assert lost_or_doubled(home.database) == NOTHING_LOST
