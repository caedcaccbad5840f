"""`pricelens serve` and edits of pricelens.toml: a config that cannot be loaded or scheduled
changes nothing, the jobs run with the last good one, and the service never exits over it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from db.store import Store
from pipeline.config import ConfigError
from pipeline.service import Service, run_job
from pipeline.settings import Home
from tests.pipeline.quiet_hours import QUIET_HOUR, quiet_daily
from tests.pipeline.test_service import wait_until

PRICELENS = str(Path(sys.executable).parent / "pricelens")
GOOD = f'[report]\ncron = "{quiet_daily()}"\nfolder = "good-reports"\n'


def write(path: Path, text: str) -> None:
    """Write *text* with a newer mtime than before, as the service looks for a change."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    stamp = max(before + 1_000_000_000, time.time_ns())
    os.utime(path, ns=(stamp, stamp))


def jobs(service: Service) -> dict[str, str]:
    return {job.id: str(job.trigger) for job in service.scheduler.get_jobs()}


@pytest.fixture
def service(tmp_path):
    write(tmp_path / "pricelens.toml", GOOD)
    running = Service(Home.resolve(tmp_path))
    running.start()
    yield running
    running.stop()


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('misfire_grace_seconds = 0\n[report]\ncron = "0 7 * * *"\n', "misfire_grace_seconds"),
        ('[report]\ncron = "0 7 * * *"\ncolour = "red"\n', "report.colour"),
        ('[report]\ncron = "0 7 * * 9"\n', "report.cron"),
        ("[report\n", None),  # not TOML
    ],
)
def test_a_broken_edit_keeps_the_jobs_and_they_run_with_the_last_good_config(
    service, tmp_path, text, key
):
    before = jobs(service)
    assert list(before) == ["report"] and f"hour='{QUIET_HOUR}'" in before["report"]
    config = tmp_path / "pricelens.toml"
    write(config, text)
    with pytest.raises(ConfigError) as caught:
        service.sync()
    assert str(config) in str(caught.value)
    assert key is None or f"'{key}'" in str(caught.value)
    assert jobs(service) == before
    service.sync()  # the same broken file is not reported again every few seconds
    run_job(str(tmp_path), "report")  # what the scheduler calls at the cron's time
    with Store(tmp_path / "pricelens.db") as store:
        (run,) = store.pipeline_runs(5)
    assert (run["kind"], run["status"], run["error"]) == ("report", "ok", None)
    assert len(list((tmp_path / "good-reports").glob("report-*.html"))) == 1
    fixed = GOOD.replace(quiet_daily(), quiet_daily(1, 30))
    write(config, fixed)  # taken up at the next check
    service.sync()
    trigger = jobs(service)["report"]
    assert f"hour='{(QUIET_HOUR + 1) % 24}'" in trigger and "minute='30'" in trigger


def test_a_job_with_no_loadable_config_is_recorded_as_failed_without_a_traceback(tmp_path, caplog):
    (tmp_path / "pricelens.toml").write_text('[report]\ncron = "0 6 * * *"\nkeep = 0\n')
    run_job(str(tmp_path), "report")  # no service in this process has loaded it
    with Store(tmp_path / "pricelens.db") as store:
        (run,) = store.pipeline_runs(5)
    assert (run["kind"], run["status"]) == ("report", "failed")
    assert "pricelens.toml: key 'report.keep': must be >= 1" in run["error"]
    assert [r.exc_info for r in caplog.records if r.levelname == "ERROR"] == [None]


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def report_runs(home: Path) -> list[tuple]:
    with sqlite3.connect(f"file:{home / 'pricelens.db'}?mode=ro", uri=True, timeout=30) as db:
        return db.execute(
            "SELECT status, error FROM pipeline_runs WHERE kind = 'report' "
            "AND finished_at IS NOT NULL ORDER BY id"
        ).fetchall()


@pytest.mark.slow
def test_serve_lives_through_an_edit_it_cannot_schedule_and_keeps_running_the_jobs(tmp_path):
    config = tmp_path / "pricelens.toml"
    write(config, '[report]\ncron = "*/2 * * * * *"\nkeep = 2\n')
    log = tmp_path / "serve.err"
    with log.open("w") as err:
        service = subprocess.Popen([PRICELENS, "--home", str(tmp_path), "serve"], stderr=err)
    try:
        wait_until(lambda: len(report_runs(tmp_path)) >= 1)
        write(config, 'misfire_grace_seconds = 0\n[report]\ncron = "*/2 * * * * *"\nkeep = 2\n')
        wait_until(lambda: "misfire_grace_seconds" in read(log))  # within one 5 s check
        seen = len(report_runs(tmp_path))
        wait_until(lambda: len(report_runs(tmp_path)) >= seen + 2)
        assert service.poll() is None  # still serving
    finally:
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=60) == 0
    errors = read(log)
    assert f"{config}: key 'misfire_grace_seconds': must be from 1 to" in errors
    assert "Traceback" not in errors and "unexpected" not in errors
    assert {status for status, _ in report_runs(tmp_path)} == {"ok"}


def test_an_edit_that_keeps_the_files_time_is_still_taken_up(service, tmp_path):
    """An editor writing in place within one tick of the clock leaves the time as it was."""
    config = tmp_path / "pricelens.toml"
    before = config.stat()
    stamp = before.st_mtime_ns
    config.write_text(GOOD.replace(quiet_daily(), quiet_daily(2, 30)) + "# edited\n")
    os.utime(config, ns=(stamp, stamp))
    assert config.stat().st_size != before.st_size  # what tells this edit apart
    service.sync()
    assert f"hour='{(QUIET_HOUR + 2) % 24}'" in jobs(service)["report"]


@pytest.mark.parametrize("catch_up", ["catch-up:pipeline", "catch-up"])  # as stored before
def test_a_pending_catch_up_goes_when_the_pipeline_is_unscheduled_or_paused(tmp_path, catch_up):
    config = tmp_path / "pricelens.toml"
    pipeline = f'[pipeline]\ncron = "{quiet_daily()}"\nsteps = ["report"]\n'
    for edit in ("", pipeline.replace("steps", "paused = true\nsteps")):
        write(config, pipeline)
        running = Service(Home.resolve(tmp_path))
        running.start()
        try:
            running.scheduler.add_job(  # as start() adds one after an interrupted run
                run_job,
                args=[str(tmp_path), "pipeline"],
                id=catch_up,
                next_run_time=datetime.now(UTC) + timedelta(hours=1),
            )
            running.sync()
            assert catch_up in jobs(running)  # kept while the pipeline is on
            write(config, edit)
            running.sync()
            assert catch_up not in jobs(running), edit
        finally:
            running.stop()
