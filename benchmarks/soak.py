"""Soak: N consecutive crawls of the demo mall with every fault switch on but `hang`. Each crawl is
a fresh mall day (prices drift, so history grows) crawled by `pipeline.crawling.crawl_shops`
into one database file. Per crawl: peak memory of this process and its descendants
(chromedriver, Chromium; the mall runs in this process too), this process's own private memory
once the crawl is over, browser processes left alive afterwards (must be 0), faults the mall
injected, observations stored against the crawl run's own counter, and the lost/doubled-row
checks of the reliability suite (must all be 0).

The figure is flatness: the first and the last crawl's peak RSS. Memory is sampled every
0.2 s as in benchmarks/crawl.py (VmRSS sums overstate shared pages; RssAnon is private).

    .venv/bin/python benchmarks/soak.py [--crawls 20] [--quick] [--products 60]

--quick (3 crawls, 30 products) is what CI runs through tests/reliability/test_soak.py; it
writes nothing unless --out is given. The full run writes benchmarks/results/soak.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crawl import watch

from crawler.spec import load_builtin_spec
from demo.mall import MallSettings, run_mall
from pipeline.crawling import CrawlOptions, crawl_shops
from pipeline.settings import Home
from tests.reliability.conftest import browsers_marked, kill_pids, lost_or_doubled

RESULTS = Path(__file__).resolve().parent / "results" / "soak.json"
SHOPS = ("classic", "spa")
# 13 of the 14 switches of demo/faults.py (endless_scroll only bites the scroll shop's pages);
# not hang, which came after the figures here and costs each hit a page-load time-out and a
# browser restart (tests/crawler/test_hung_browser.py)
FAULTS = (
    "slow=0.02,endless_scroll=1,http500=0.1,http503=0.05,http429=0.05,drop=0.04,truncate=0.04,"
    "bad_price=0.1,missing_price=0.05,corrupt_image=0.08,bomb_image=0.04,js_error=0.2,"
    "modal_reappears=0.2"
)
OPTIONS = CrawlOptions(wait_timeout=4.0, backoff_seconds=0.05)


def injected_faults(mall) -> Counter:
    """What the mall did: request faults it served (replayed from its attempt counters) and
    content faults of the offers it showed."""
    counts: Counter = Counter()
    for name, server in mall.servers.items():
        for path, attempts in dict(server.attempts._counts).items():
            for k in range(attempts):
                fault = server.shop.faults.http_fault(name, path, k)
                if fault:
                    counts[fault] += 1
        for offer in mall.answer_key()["shops"][name]["offers"]:
            counts.update(offer["faults"])
    return counts


def one_crawl(home: Home, index: int, products: int, seed: int, marker_root: Path) -> dict:
    marker = Path(tempfile.mkdtemp(prefix=f"{index}-", dir=marker_root))
    tempfile.tempdir, os.environ["TMPDIR"] = str(marker), str(marker)  # our browsers carry it
    try:
        settings = MallSettings(seed=seed, products=products, day=index, shops=SHOPS, faults=FAULTS)
        started = time.monotonic()
        with run_mall(settings) as mall, watch(exclude=0) as memory:
            specs = [load_builtin_spec(s).with_base_url(mall.base_urls[s]) for s in SHOPS]
            results = crawl_shops(home, specs, OPTIONS)
        faults = injected_faults(mall)
        key = mall.answer_key()["shops"]
    finally:
        tempfile.tempdir = None
        os.environ.pop("TMPDIR", None)
    gc.collect()
    status = Path("/proc/self/status").read_text().splitlines()
    own = dict(line.split(":", 1) for line in status)
    left = browsers_marked(str(marker))
    kill_pids(left)  # reported, then cleaned up so the next crawl starts clean
    shutil.rmtree(marker, ignore_errors=True)
    db = sqlite3.connect(f"file:{home.database}?mode=ro", uri=True)
    stored = {
        r.shop: db.execute(
            "SELECT COUNT(*) FROM price_observations WHERE crawl_run_id = ?", (r.crawl_run_id,)
        ).fetchone()[0]
        for r in results
    }
    db.close()
    return {
        "crawl": index + 1,
        "seconds": round(time.monotonic() - started, 1),
        "peak_rss_mb": memory["peak_rss_mb"],
        "peak_anon_mb": memory["peak_anon_mb"],
        # this process alone (crawler, store and the in-process mall) once the crawl is over
        "own_anon_mb_after": round(int(own["RssAnon"].split()[0]) / 1024, 1),
        "orphan_browser_processes": len(left),
        "faults_injected": dict(sorted(faults.items())),
        "shops": {
            r.shop: {
                "status": r.status,
                "pages": r.pages,
                "offers_shown": len(key[r.shop]["offers"]),
                "offers_counted": r.offers,
                "observations_stored": stored[r.shop],
                "failures_recorded": r.failures,
            }
            for r in results
        },
    }


def soak(crawls: int, products: int, seed: int = 9) -> dict:
    marker_root = Path(tempfile.mkdtemp(prefix="plsoak-", dir="/tmp"))  # short: socket paths
    work = Path(tempfile.mkdtemp(prefix="pricelens-soak-"))
    try:
        home = Home(work / "home").create()
        runs = []
        for index in range(crawls):
            runs.append(one_crawl(home, index, products, seed, marker_root))
            print(json.dumps(runs[-1]), flush=True)
        lost = lost_or_doubled(home.database)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(marker_root, ignore_errors=True)
    faults = sum((Counter(r["faults_injected"]) for r in runs), Counter())
    shops = [s for r in runs for s in r["shops"].values()]
    return {
        "crawls": crawls,
        "products": products,
        "shops": list(SHOPS),
        "faults": FAULTS,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "first_peak_rss_mb": runs[0]["peak_rss_mb"],
        "last_peak_rss_mb": runs[-1]["peak_rss_mb"],
        "first_peak_anon_mb": runs[0]["peak_anon_mb"],
        "last_peak_anon_mb": runs[-1]["peak_anon_mb"],
        "first_own_anon_mb_after": runs[0]["own_anon_mb_after"],
        "last_own_anon_mb_after": runs[-1]["own_anon_mb_after"],
        "orphan_browser_processes": [r["orphan_browser_processes"] for r in runs],
        "faults_injected_total": sum(faults.values()),
        "faults_injected": dict(sorted(faults.items())),
        "crawls_completed": sum(
            all(s["status"] in ("ok", "partial") for s in r["shops"].values()) for r in runs
        ),
        "observations_stored": sum(s["observations_stored"] for s in shops),
        "observations_counted": sum(s["offers_counted"] for s in shops),
        "offers_shown": sum(s["offers_shown"] for s in shops),
        "failures_recorded": sum(s["failures_recorded"] for s in shops),
        "rows_lost_or_doubled": lost,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--crawls", type=int, default=None, help="default 20 (3 with --quick)")
    parser.add_argument("--products", type=int, default=None, help="default 60 (30 with --quick)")
    parser.add_argument("--quick", action="store_true", help="3 small crawls; writes nothing")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON file (default {RESULTS})")
    args = parser.parse_args()
    crawls = args.crawls or (3 if args.quick else 20)
    products = args.products or (30 if args.quick else 60)
    result = soak(crawls, products)
    summary = {k: v for k, v in result.items() if k != "runs"}
    print(json.dumps(summary, indent=1))
    out = args.out or (None if args.quick else RESULTS)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
