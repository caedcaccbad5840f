"""Another live process in the middle of a run, as a `pricelens run` or `crawl` is: it opens
the database with the real `Store`, starts a pipeline run and a crawl run in it, and sleeps
until killed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from db.store import Store

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = textwrap.dedent(
    """
    import sys, time
    from db.store import Store
    store = Store(sys.argv[1])
    run = store.start_pipeline_run("manual")
    crawl = store.start_crawl_run("classic", None, run)
    print(run, crawl, flush=True)
    time.sleep(600)
    """
)


@dataclass
class RunElsewhere:
    process: subprocess.Popen
    pipeline_run: int
    crawl_run: int

    def kill(self) -> None:
        """SIGKILL: no finally, no close; only the operating system cleans up."""
        self.process.kill()
        self.process.wait(timeout=30)


def start_run_elsewhere(db_path: Path) -> RunElsewhere:
    with Store(db_path):
        pass  # created and migrated before the other process opens it
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(db_path)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=30)
        raise AssertionError(f"the run holder exited with {process.returncode}")
    run, crawl = map(int, line.split())
    return RunElsewhere(process, run, crawl)
