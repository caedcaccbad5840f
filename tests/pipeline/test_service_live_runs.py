"""`pricelens serve` starting while another process is in the middle of a run (a manual
`pricelens run`): that run is not marked interrupted and no catch-up pipeline starts beside it;
once the process is killed, the next start marks it and catches up."""

from __future__ import annotations

import time

from db.store import Store
from pipeline.service import Service
from pipeline.settings import Home
from tests.db.run_holder import start_run_elsewhere
from tests.pipeline.quiet_hours import quiet_daily


def statuses(home) -> list[tuple[str, str]]:
    with Store(home / "pricelens.db") as store:
        return [(r["kind"], r["status"]) for r in reversed(store.pipeline_runs())]


def start(home) -> tuple[Service, int, set[str]]:
    service = Service(Home.resolve(home))
    interrupted = service.start()
    return service, interrupted, {job.id for job in service.scheduler.get_jobs()}


def test_serve_leaves_a_live_run_alone_and_catches_up_once_its_process_is_gone(tmp_path):
    (tmp_path / "pricelens.toml").write_text(
        f'[pipeline]\ncron = "{quiet_daily()}"\nsteps = ["report"]\n'
    )
    other = start_run_elsewhere(tmp_path / "pricelens.db")
    try:
        service, interrupted, jobs = start(tmp_path)
        service.stop()
        assert (interrupted, jobs) == (0, {"pipeline"})  # no catch-up
        assert statuses(tmp_path) == [("manual", "running")]
    finally:
        other.kill()
    service, interrupted, jobs = start(tmp_path)
    try:
        assert interrupted == 1
        deadline = time.monotonic() + 60
        while len(statuses(tmp_path)) < 2 or statuses(tmp_path)[1][1] == "running":
            assert time.monotonic() < deadline, statuses(tmp_path)
            time.sleep(0.1)
    finally:
        service.stop()
    assert statuses(tmp_path) == [("manual", "interrupted"), ("pipeline", "ok")]
