"""An interrupted run is caught up by its own job at start-up: a report run by the report job,
a shop's crawl by that shop's; a hand-started `pricelens run` by the pipeline. A demo's run,
or one whose job is no longer scheduled or is paused, is only marked, and the log says so."""

from __future__ import annotations

import logging

import pytest

from db.store import Store
from pipeline.service import Service
from pipeline.settings import Home
from tests.pipeline.quiet_hours import quiet_daily
from tests.pipeline.test_service import wait_until
from tests.pipeline.test_service_live_runs import statuses

CONFIG = (
    f'[pipeline]\ncron = "{quiet_daily()}"\nsteps = ["report"]\n\n'
    f'[report]\ncron = "{quiet_daily(1)}"\n'
)


def interrupted_run(home, kind: str) -> None:
    with Store(home / "pricelens.db") as store:  # closed unfinished: a dead process's run
        store.start_pipeline_run(kind)


def catch_ups(service: Service) -> set[str]:
    return {job.id for job in service.scheduler.get_jobs() if job.id.startswith("catch-up")}


@pytest.mark.parametrize(
    ("kind", "caught_up_by", "ran_as"),
    [("report", "catch-up:report", "report"), ("manual", "catch-up:pipeline", "pipeline")],
)
def test_an_interrupted_run_is_caught_up_once_by_its_own_job(tmp_path, kind, caught_up_by, ran_as):
    (tmp_path / "pricelens.toml").write_text(CONFIG)
    interrupted_run(tmp_path, kind)
    interrupted_run(tmp_path, kind)  # two of one kind: one catch-up
    service = Service(Home.resolve(tmp_path))
    assert service.start() == 2
    try:
        assert catch_ups(service) == {caught_up_by}
        wait_until(lambda: len(statuses(tmp_path)) == 3 and statuses(tmp_path)[2][1] != "running")
    finally:
        service.stop()  # waits for the scheduler's worker: a second run would be recorded
    assert statuses(tmp_path) == [(kind, "interrupted"), (kind, "interrupted"), (ran_as, "ok")]


@pytest.mark.parametrize(
    ("kind", "config", "reason"),
    [
        ("demo", CONFIG, "the demo's own"),
        ("crawl:gone", CONFIG, "no shops.gone job is on"),
        ("report", CONFIG.replace("[report]\n", "[report]\npaused = true\n"), "no report job"),
        ("retrain", CONFIG, "no retrain job is on"),
    ],
)
def test_a_run_whose_job_is_not_on_is_marked_and_not_redone(tmp_path, caplog, kind, config, reason):
    (tmp_path / "pricelens.toml").write_text(config)
    interrupted_run(tmp_path, kind)
    service = Service(Home.resolve(tmp_path))
    with caplog.at_level(logging.WARNING, logger="pipeline.service"):
        assert service.start() == 1
    try:
        assert catch_ups(service) == set()
    finally:
        service.stop()
    assert statuses(tmp_path) == [(kind, "interrupted")]
    assert f"an interrupted {kind} run found: not redone ({reason}" in caplog.text
