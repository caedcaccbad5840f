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
    ("kinds", "said", "ran_as"),
    [
        (["report", "report"], "an interrupted report run found: running report now", "report"),
        (["manual"], "an interrupted manual run found: running pipeline now", "pipeline"),
        (
            ["manual", "pipeline", "manual"],
            "an interrupted manual and pipeline run found: running pipeline now",
            "pipeline",
        ),
    ],
)
def test_an_interrupted_run_is_caught_up_once_by_its_own_job(tmp_path, caplog, kinds, said, ran_as):
    (tmp_path / "pricelens.toml").write_text(CONFIG)
    for kind in kinds:
        interrupted_run(tmp_path, kind)
    service = Service(Home.resolve(tmp_path))
    with caplog.at_level(logging.WARNING, logger="pipeline.service"):
        assert service.start() == len(kinds)
    try:
        caught_up = len(kinds)  # the run after the interrupted ones
        wait_until(lambda: statuses(tmp_path)[caught_up : caught_up + 1] == [(ran_as, "ok")])
    finally:
        service.stop()  # waits for the scheduler's worker: a second run would be recorded
    assert statuses(tmp_path) == [*((kind, "interrupted") for kind in kinds), (ran_as, "ok")]
    assert caplog.text.count("interrupted") == 1 and said in caplog.text  # one line per job


PAUSED_REPORT = CONFIG.replace("[report]\n", "[report]\npaused = true\n")


@pytest.mark.parametrize(
    ("kind", "config", "reason"),
    [
        ("demo", CONFIG, "the demo's own); `pricelens demo` redoes it"),
        ("crawl:gone", CONFIG, "no shops.gone job is on); `pricelens crawl --shop gone`"),
        ("report", PAUSED_REPORT, "no report job is on); `pricelens run --steps report`"),
        ("retrain", CONFIG, "no retrain job is on); `pricelens run --steps retrain`"),
    ],
)
def test_a_run_whose_job_is_not_on_is_marked_and_not_redone(tmp_path, caplog, kind, config, reason):
    (tmp_path / "pricelens.toml").write_text(config)
    interrupted_run(tmp_path, kind)
    service = Service(Home.resolve(tmp_path))
    with caplog.at_level(logging.WARNING, logger="pipeline.service"):
        assert service.start() == 1
    try:
        assert catch_ups(service) == set()  # none was added: none can have run and gone
    finally:
        service.stop()
    assert statuses(tmp_path) == [(kind, "interrupted")]
    assert f"an interrupted {kind} run found: not redone ({reason}" in caplog.text
