"""The jobs of one `pricelens serve` run one at a time: the pipeline and a shop's own crawl due
together never crawl that shop twice at once. A run that finds another in progress logs that it
waits, runs when that one is over, and is not queued again while it waits; when the service
stops, a waiting run does not start.

The real service and APScheduler run the jobs; only run_pipeline is replaced, by a stand-in
that records each run and holds it until the test lets it go (no browser, no fixed sleeps)."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import pytest
from apscheduler.events import EVENT_JOB_MAX_INSTANCES

import pipeline.service as service_module
from pipeline.service import STOP, Service
from pipeline.settings import Home
from tests.pipeline.quiet_hours import quiet_daily
from tests.pipeline.test_service import wait_until
from tests.pipeline.test_service_reload import write

EVERY_SECOND = (
    '[pipeline]\ncron = "* * * * * *"\nshops = ["myshop"]\n\n[shops.myshop]\ncron = "* * * * * *"\n'
)
JOBS = {"pipeline", "crawl:myshop"}


class HeldRuns:
    """Stands in for run_pipeline: records each run's start and end, and holds every run
    until `release` is set."""

    def __init__(self):
        self.events: list[tuple[str, str]] = []
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, home, config, steps, shops=(), kind="", stop=None, **options):
        with self._lock:
            self.events.append(("start", kind))
        self.release.wait(120)
        with self._lock:
            self.events.append(("end", kind))


@pytest.fixture
def runs(monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    held = HeldRuns()
    monkeypatch.setattr(service_module, "run_pipeline", held)
    yield held
    held.release.set()


def start_and_wait_for_a_waiting_run(home, runs, caplog) -> tuple[Service, str, str]:
    """Start the service; return it once one job's run is held and the other's waits."""
    (home / "pricelens.toml").write_text(EVERY_SECOND)
    service = Service(Home.resolve(home))
    service.start()
    try:
        wait_until(lambda: runs.events, 60)
        first = runs.events[0][1]
        (other,) = JOBS - {first}
        wait_until(lambda: f"{other} run waits for the {first} run to finish" in caplog.text, 60)
    except BaseException:
        runs.release.set()
        service.stop()
        raise
    return service, first, other


def test_jobs_due_together_run_one_after_the_other_and_are_not_queued_twice(tmp_path, runs, caplog):
    service, first, other = start_and_wait_for_a_waiting_run(tmp_path, runs, caplog)
    skipped: set[str] = set()
    try:
        service.scheduler.add_listener(lambda e: skipped.add(e.job_id), EVENT_JOB_MAX_INSTANCES)
        wait_until(lambda: skipped == JOBS, 60)  # both came due again: neither was queued
        service.scheduler.pause()  # no new runs from here on
        with service.scheduler._jobstores_lock:  # once a look for due jobs under way is over
            pass
        runs.release.set()
        wait_until(lambda: len(runs.events) == 4, 60)
    finally:
        runs.release.set()
        service.stop()
    assert runs.events == [("start", first), ("end", first), ("start", other), ("end", other)]


def test_a_waiting_run_does_not_start_once_the_service_stops(tmp_path, runs, caplog):
    service, first, other = start_and_wait_for_a_waiting_run(tmp_path, runs, caplog)
    stopping = threading.Thread(target=service.stop)
    stopping.start()
    try:
        wait_until(STOP.is_set, 60)
    finally:
        runs.release.set()  # the running one ends (a real crawl: after its current page)
        stopping.join(120)
    assert not stopping.is_alive()
    assert runs.events == [("start", first), ("end", first)]
    assert f"{other} run not started: the service is stopping" in caplog.text


def test_more_jobs_due_together_than_apschedulers_default_ten_workers_all_run(
    tmp_path, runs, caplog
):
    """Each run waiting for its turn holds a worker thread: with APScheduler's default pool of
    10, the 11th and 12th wait in its queue instead, where the misfire grace runs out."""
    shops = [f"shop{n:02}" for n in range(12)]
    (tmp_path / "pricelens.toml").write_text(
        "".join(f'[shops.{shop}]\ncron = "{quiet_daily()}"\n' for shop in shops)
    )
    service = Service(Home.resolve(tmp_path))
    service.start()
    due = datetime.now(UTC)
    try:
        for shop in shops:  # all due at once
            service.scheduler.modify_job(f"crawl:{shop}", next_run_time=due)
        wait_until(lambda: runs.events, 60)
        # every other run has reached run_job and waits there, none waits in the pool's queue
        wait_until(lambda: caplog.text.count(" run waits for the crawl:") == 11, 60)
        runs.release.set()
        wait_until(lambda: len(runs.events) == 24, 60)
    finally:
        runs.release.set()
        service.stop()
    assert sorted(kind for event, kind in runs.events if event == "end") == [
        f"crawl:{shop}" for shop in shops
    ]


def test_a_waiting_run_whose_job_is_paused_meanwhile_does_not_start(tmp_path, runs, caplog):
    service, first, other = start_and_wait_for_a_waiting_run(tmp_path, runs, caplog)
    try:
        service.scheduler.pause()  # no new runs of the first job from here on
        with service.scheduler._jobstores_lock:  # once a look for due jobs under way is over
            pass
        table = "[pipeline]\n" if other == "pipeline" else "[shops.myshop]\n"
        write(tmp_path / "pricelens.toml", EVERY_SECOND.replace(table, f"{table}paused = true\n"))
        service.sync()
        runs.release.set()
        wait_until(lambda: f"{other} run not started: the job was paused" in caplog.text, 60)
    finally:
        runs.release.set()
        service.stop()
    assert runs.events == [("start", first), ("end", first)]
