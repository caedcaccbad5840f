"""How long `pricelens demo` takes on this machine: the first run (crawl + training) and a
later run (crawl, model reused). Targets from the foundation issue: < 300 s and < 90 s.

    .venv/bin/python benchmarks/demo_runtime.py [--products 300] [--runs 2]

Writes benchmarks/results/demo_runtime.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "demo_runtime.json"


def run_demo(home: Path, products: int, day: int) -> dict:
    script = Path(sys.executable).parent / "pricelens"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [
            str(script),
            "--home",
            str(home),
            "--no-progress",
            "demo",
            "--products",
            str(products),
            "--day",
            str(day),
            "--limit",
            "5",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"pricelens demo failed:\n{done.stdout}\n{done.stderr}")
    with sqlite3.connect(f"file:{home / 'pricelens.db'}?mode=ro", uri=True) as conn:
        (counts,) = conn.execute(
            "SELECT counts_json FROM pipeline_runs ORDER BY id DESC LIMIT 1"
        ).fetchone()
    return {
        "day": day,
        "wall_s": round(wall, 1),
        "stages_s": json.loads(counts)["seconds"],
        "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
        "summary": done.stdout.strip().splitlines()[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=300)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pricelens-bench-") as home:
        runs = [run_demo(Path(home), args.products, day) for day in range(args.runs)]
    result = {
        "benchmark": "demo_runtime",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "products": args.products,
        "first_run_s": runs[0]["wall_s"],
        "later_runs_s": [r["wall_s"] for r in runs[1:]],
        "targets_s": {"first": 300, "later": 90},
        "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
