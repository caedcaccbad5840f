"""One run at a time on a home across processes: a `pricelens run` started while another
process crawls the home waits for it, says so, and then runs; a stop request ends the wait."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from pipeline.home_lock import StopWaiting, working_on
from pipeline.settings import Home
from tests.pipeline.test_service import PRICELENS, query

HOLDER = """
import sys
from pipeline.home_lock import working_on
from pipeline.settings import Home
with working_on(Home.resolve(sys.argv[1]), "crawl"):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes it
"""


@pytest.fixture
def held(tmp_path):
    """Another process working on the home (as `pricelens crawl` would) until released."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == "held\n"
    yield holder
    holder.stdin.close()
    holder.wait(timeout=60)


def test_a_run_waits_for_the_process_working_on_the_home_then_runs(tmp_path, held):
    run = subprocess.Popen(
        [PRICELENS, "--home", str(tmp_path), "--no-progress", "run", "--steps", "report"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        said = run.stderr.readline()
        assert f"manual run waits for crawl (pid {held.pid}) to finish" in said, said
        assert not (tmp_path / "pricelens.db").exists()  # nothing started yet
    finally:
        held.stdin.close()
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert query(tmp_path, "SELECT kind, status FROM pipeline_runs") == [("manual", "ok")]


def test_a_stop_request_ends_the_wait(tmp_path, held):
    stop = threading.Event()
    stop.set()  # SIGTERM to serve while its job waited
    with (
        pytest.raises(StopWaiting, match=r"pipeline run not started: stopped waiting for crawl"),
        working_on(Home.resolve(tmp_path), "pipeline run", stop),
    ):
        pass
