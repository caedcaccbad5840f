"""Re-crawl cost: crawling a demo mall that was crawled before, with the photos' validators
(each unchanged photo asked for with its ETag and answered 304) against the same re-crawl
without them (every photo downloaded, verified with Pillow and hashed again, as before
`photo_sources`), alternating in one run so that a slow spell of the machine hits both.

Both kinds re-crawl the same home (database and photo files in place), with one session; the
second kind empties `photo_sources` first, which the crawl then fills again. CPU: our process
(`own_cpu_s`), and every process except the mall's (`cpu_s`, as benchmarks/crawl.py samples
it); the mall's apart (`mall_cpu_s`).

    .venv/bin/python benchmarks/recrawl.py [--size default|large] [--rounds 3]

Writes benchmarks/results/recrawl.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from contextlib import closing
from pathlib import Path

from crawl import SIZES, mall_process, own_cpu_s, process_cpu_s, watch

from crawler.spec import load_builtin_spec
from pipeline.crawling import CrawlOptions, crawl_shops
from pipeline.settings import Home

RESULTS = Path(__file__).resolve().parent / "results" / "recrawl.json"
KINDS = ("validators", "no_validators")


def crawl_once(home: Home, specs: list, mall_pid: int) -> dict:
    with watch(mall_pid) as measured:
        own, mall = own_cpu_s(), process_cpu_s(mall_pid)
        started = time.perf_counter()
        results = crawl_shops(home, specs, CrawlOptions(sessions=1))
        wall = time.perf_counter() - started
        own, mall = own_cpu_s() - own, process_cpu_s(mall_pid) - mall
    photos = sum(r.photos for r in results)
    return {
        "wall_s": round(wall, 2),
        "own_cpu_s": round(own, 2),
        **measured,
        "mall_cpu_s": round(mall, 2),
        "offers": sum(r.offers for r in results),
        "photos": photos,
        "photos_fetched": photos - sum(r.photos_unchanged for r in results),
        "failures": sum(r.failures for r in results),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def forget_validators(home: Home) -> None:
    with closing(sqlite3.connect(home.database)) as db, db:
        db.execute("DELETE FROM photo_sources")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="default", choices=sorted(SIZES))
    parser.add_argument("--rounds", type=int, default=3, help="re-crawls of each kind")
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    with (
        mall_process(SIZES[args.size]) as (bases, mall_pid),
        tempfile.TemporaryDirectory(prefix="pricelens-recrawl-") as tmp,
    ):
        specs = [load_builtin_spec(name).with_base_url(url) for name, url in bases.items()]
        home = Home(Path(tmp)).create()
        first = crawl_once(home, specs, mall_pid)
        print(f"first crawl: {first['wall_s']} s, {first['photos']} photos", flush=True)
        for round_ in range(args.rounds):
            # alternate which kind goes first, so neither always follows the other
            for kind in KINDS if round_ % 2 == 0 else KINDS[::-1]:
                if kind == "no_validators":
                    forget_validators(home)
                runs[kind].append(crawl_once(home, specs, mall_pid))
                run = runs[kind][-1]
                print(
                    f"  {kind}: {run['wall_s']} s, own CPU {run['own_cpu_s']} s, "
                    f"{run['photos_fetched']} of {run['photos']} photos fetched",
                    flush=True,
                )

    def median(kind: str, key: str) -> float:
        return round(statistics.median(run[key] for run in runs[kind]), 2)

    keys = ("wall_s", "own_cpu_s", "cpu_s", "mall_cpu_s")
    medians = {kind: {key: median(kind, key) for key in keys} for kind in KINDS}
    pairs = zip(runs["validators"], runs["no_validators"], strict=True)
    result = {
        "benchmark": "recrawl",
        "measured": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "size": args.size,
        "products": SIZES[args.size],
        "first_crawl": first,
        "median": medians,
        "ratios": {
            f"{key}_with_vs_without": round(
                medians["validators"][key] / medians["no_validators"][key], 2
            )
            for key in keys
        }
        | {"wall_pairs": [round(a["wall_s"] / b["wall_s"], 2) for a, b in pairs]},
        "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["median"]), json.dumps(result["ratios"]), f"-> {RESULTS}", sep="\n")


if __name__ == "__main__":
    main()
