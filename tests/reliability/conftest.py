"""Shared helpers for the reliability suite: browser-process counts, file digests, polling,
and crawling one demo shop served on this machine.

Each case is "given X, pricelens does Y and loses nothing", against the real demo mall, real
headless Chromium and a real database file. Polling helpers come from the service tests."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

from crawler.spec import ShopSpec, load_builtin_spec
from demo.server import ShopServer
from demo.shop import DemoShop
from pipeline.crawling import CrawlOptions, ShopCrawlResult, crawl_shops
from pipeline.settings import Home
from tests.pipeline.test_service import wait_until  # noqa: F401  (re-exported for the suite)

QUICK = CrawlOptions(wait_timeout=4.0, backoff_seconds=0.05)

BROWSER_NAMES = (b"chrome", b"chromium", b"chromedriver")


def browser_pids() -> set[int]:
    """Live (not zombie) Chrome, Chromium and chromedriver processes on this machine."""
    found = set()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0", 1)[0].lower()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # it ended while we looked
        if state != "Z" and any(
            name in Path(cmdline.decode()).name.encode() for name in BROWSER_NAMES
        ):
            found.add(int(entry.name))
    return found


def browsers_marked(marker: str) -> set[int]:
    """Live browser processes whose command line or environment carries *marker* (give a
    crawl its own TMPDIR: Chrome's profile and chromedriver's environment both show it).
    Other developers' browsers on the same machine are not counted."""
    found = set()
    for pid in browser_pids():
        try:
            proc = Path("/proc", str(pid))
            if marker.encode() in (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes():
                found.add(pid)
        except OSError:
            continue
    return found


def kill_pids(pids: set[int]) -> None:
    """End browser processes this test started (by id), e.g. what a SIGKILLed crawl left."""
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read(db: Path, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute(sql, args).fetchall()


def lost_or_doubled(db: Path) -> dict[str, int]:
    """Rows that would mean lost or doubled data; every value must be 0."""
    checks = {
        "integrity": "SELECT COUNT(*) FROM pragma_integrity_check WHERE integrity_check != 'ok'",
        "doubled_observations": "SELECT COUNT(*) FROM (SELECT 1 FROM price_observations "
        "GROUP BY offer_id, crawl_run_id HAVING COUNT(*) > 1)",
        "zero_prices": "SELECT COUNT(*) FROM price_observations WHERE price = 0",
        "null_price_without_reason": "SELECT COUNT(*) FROM price_observations "
        "WHERE price IS NULL AND price_error IS NULL",
        "pages_not_whole": "SELECT COUNT(*) FROM crawl_runs r WHERE r.offers != "
        "(SELECT COUNT(*) FROM price_observations o WHERE o.crawl_run_id = r.id)",
        "offers_without_observation": "SELECT COUNT(*) FROM offers o WHERE NOT EXISTS "
        "(SELECT 1 FROM price_observations p WHERE p.offer_id = o.id)",
    }
    return {name: read(db, sql)[0][0] for name, sql in checks.items()}


NOTHING_LOST = {
    "integrity": 0,
    "doubled_observations": 0,
    "zero_prices": 0,
    "null_price_without_reason": 0,
    "pages_not_whole": 0,
    "offers_without_observation": 0,
}


def serve(shop: DemoShop, host: str = "127.0.0.1") -> ShopServer:
    """*shop* served on a free port of *host* (started; the caller stops it)."""
    return ShopServer(shop, 0, host).start()


class Crawled(NamedTuple):
    home: Home
    result: ShopCrawlResult
    base_url: str  # where the shop was served (it is stopped by now)


def crawl_served(
    tmp_path: Path,
    shop: DemoShop,
    spec_name: str = "classic",
    *,
    options: CrawlOptions = QUICK,
    edit: Callable[[ShopSpec], ShopSpec] | None = None,
    also: Iterable[ShopServer] = (),
) -> Crawled:
    """Serve *shop*, crawl it into a new Home with the builtin *spec_name* spec (pointed at
    the server, then passed through *edit*), and stop the server and the *also* servers."""
    try:
        server = serve(shop)
        try:
            home = Home(tmp_path / "home").create()
            spec = load_builtin_spec(spec_name).with_base_url(server.base_url)
            result = crawl_shops(home, [edit(spec) if edit else spec], options)[0]
        finally:
            server.stop()
    finally:
        for other in also:
            other.stop()
    return Crawled(home, result, server.base_url)
