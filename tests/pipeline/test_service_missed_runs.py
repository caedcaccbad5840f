"""A run missed while `pricelens serve` was down runs once when it is back (within
misfire_grace_seconds): registering the jobs again, at start-up or after an edit of
pricelens.toml, keeps a stored job's next run time while its cron and time zone are unchanged.

"Down when the job was due" is set up as the job store holds it after real downtime: the service
is stopped and the stored job's next run time is in the past (written with a scheduler that never
runs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from db.store import Store
from pipeline.config import CrontabTrigger
from pipeline.service import Service
from pipeline.settings import Home
from tests.pipeline.quiet_hours import quiet_daily
from tests.pipeline.test_service import wait_until
from tests.pipeline.test_service_live_runs import statuses
from tests.pipeline.test_service_reload import write

DAILY = f'[pipeline]\ncron = "{quiet_daily()}"\nsteps = ["report"]\n'


def start(home) -> Service:
    service = Service(Home.resolve(home))
    service.start()
    return service


def stop_with_run_missed(home, job: str, late: timedelta) -> None:
    """Start and stop the service, then leave *job* due *late* ago in scheduler.db."""
    start(home).stop()
    store = SQLAlchemyJobStore(url=f"sqlite:///{home / 'scheduler.db'}")
    scheduler = BackgroundScheduler(jobstores={"default": store})
    scheduler.start(paused=True)  # a paused scheduler does not look for due jobs
    try:
        scheduler.modify_job(job, next_run_time=datetime.now(UTC) - late)
    finally:
        scheduler.remove_jobstore("default")  # shutting down looks for due jobs once more
        scheduler.shutdown()


def next_quiet_hour(before: datetime, after: datetime, zone: str = "UTC") -> set[datetime]:
    trigger = CrontabTrigger(quiet_daily(), zone)
    return {trigger.get_next_fire_time(None, moment) for moment in (before, after)}


@pytest.mark.parametrize(
    ("late", "grace"),
    [(timedelta(minutes=10), 3600), (timedelta(days=3), 4 * 86400)],  # 3 missed days: once
)
def test_a_run_missed_while_the_service_was_down_runs_once_at_start_up(tmp_path, late, grace):
    (tmp_path / "pricelens.toml").write_text(f"misfire_grace_seconds = {grace}\n{DAILY}")
    stop_with_run_missed(tmp_path, "pipeline", late)
    before = datetime.now(UTC)
    service = start(tmp_path)
    try:
        wait_until(lambda: statuses(tmp_path) and statuses(tmp_path)[-1][1] != "running", 60)
        following = service.scheduler.get_job("pipeline").next_run_time
    finally:
        service.stop()  # waits for the scheduler's worker: a second run would be recorded
    assert statuses(tmp_path) == [("pipeline", "ok")]
    assert following in next_quiet_hour(before, datetime.now(UTC))


def test_a_run_missed_by_more_than_the_grace_does_not_run(tmp_path, caplog):
    (tmp_path / "pricelens.toml").write_text(f"misfire_grace_seconds = 3600\n{DAILY}")
    stop_with_run_missed(tmp_path, "pipeline", timedelta(hours=2))
    before = datetime.now(UTC)
    service = start(tmp_path)
    try:
        wait_until(lambda: service.scheduler.get_job("pipeline").next_run_time > before, 60)
    finally:
        service.stop()
    assert statuses(tmp_path) == []
    assert 'Run time of job "pipeline' in caplog.text and "was missed by 2:00" in caplog.text


@pytest.mark.parametrize("days_down", [0, 2])
def test_an_interrupted_run_and_a_missed_pipeline_catch_up_in_one_run(tmp_path, days_down):
    """The runs missed while down (the last one 10 minutes ago, within the grace) coalesce
    into that one, which is the catch-up for the interrupted run: no second pipeline run,
    however long ago the first missed run was."""
    latest = (datetime.now(UTC) - timedelta(minutes=10)).replace(second=0, microsecond=0)
    (tmp_path / "pricelens.toml").write_text(
        f'misfire_grace_seconds = 3600\n[pipeline]\ncron = "{latest.minute} {latest.hour} * * *"'
        '\nsteps = ["report"]\n'
    )
    stop_with_run_missed(tmp_path, "pipeline", timedelta(days=days_down, minutes=10))
    with Store(tmp_path / "pricelens.db") as store:  # closed unfinished: a dead process's run
        store.start_pipeline_run("pipeline")
    service = start(tmp_path)
    try:
        assert {job.id for job in service.scheduler.get_jobs()} == {"pipeline"}  # no catch-up
        wait_until(lambda: len(statuses(tmp_path)) == 2 and statuses(tmp_path)[1][1] != "running")
    finally:
        service.stop()  # waits for the scheduler's worker: a second run would be recorded
    assert statuses(tmp_path) == [("pipeline", "interrupted"), ("pipeline", "ok")]


def test_an_edit_keeps_the_next_run_time_of_an_unchanged_job_and_restarts_a_changed_one(
    tmp_path,
):
    """The stored time is kept, not recomputed: one that is due (or overdue) when the edit is
    taken up still runs. It is set to a time the cron would not give, to tell the two apart."""
    config = tmp_path / "pricelens.toml"
    write(config, f'{DAILY}\n[report]\ncron = "{quiet_daily(1)}"\n')
    service = start(tmp_path)
    try:
        kept = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2, minutes=17)
        for job in ("pipeline", "report"):
            service.scheduler.modify_job(job, next_run_time=kept)
        write(config, f'{DAILY}sessions = 2\n\n[report]\ncron = "{quiet_daily(1, 30)}"\n')
        before = datetime.now(UTC)
        service.sync()
        assert service.scheduler.get_job("pipeline").next_run_time == kept  # only sessions changed
        assert service.scheduler.get_job("report").next_run_time == CrontabTrigger(
            quiet_daily(1, 30), "UTC"
        ).get_next_fire_time(None, before)
        before = datetime.now(UTC)
        report = f'[report]\ncron = "{quiet_daily(1, 30)}"\n'
        write(config, f'timezone = "Asia/Seoul"\n{DAILY}\n{report}')
        service.sync()  # another zone is another schedule: it starts from now
        following = service.scheduler.get_job("pipeline").next_run_time
    finally:
        service.stop()
    assert following in next_quiet_hour(before, datetime.now(UTC), "Asia/Seoul")


def test_a_job_resumed_by_an_edit_starts_from_now(tmp_path):
    config = tmp_path / "pricelens.toml"
    write(config, DAILY.replace("\nsteps", "\npaused = true\nsteps"))
    service = start(tmp_path)
    try:
        assert service.scheduler.get_job("pipeline").next_run_time is None
        before = datetime.now(UTC)
        write(config, DAILY)
        service.sync()
        following = service.scheduler.get_job("pipeline").next_run_time
    finally:
        service.stop()
    assert following in next_quiet_hour(before, datetime.now(UTC))
