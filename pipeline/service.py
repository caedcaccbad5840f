"""`pricelens serve`: one scheduler process per home running the configured jobs.

APScheduler 3 keeps the jobs in SQLite (SQLAlchemyJobStore) and runs each at most once, with
`coalesce` and `max_instances=1` and a misfire grace time, so a run missed while the service was
down happens once when it is back. Our pipeline_runs table stays the source of truth: runs that
a killed process left 'running' become 'interrupted' at start-up, and the pipeline catches up.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from datetime import UTC, datetime

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from filelock import FileLock, Timeout

from db.store import Store
from pipeline.config import ServiceConfig, load_config
from pipeline.errors import PipelineError
from pipeline.runner import run_pipeline
from pipeline.settings import Home

log = logging.getLogger(__name__)

STOP = threading.Event()  # set by SIGTERM/SIGINT; crawls stop after their current page
SYNC_SECONDS = 5  # how often the service re-reads pricelens.toml


class AlreadyServing(PipelineError):
    """Another `pricelens serve` holds this home's lock."""


def run_job(home_root: str, kind: str, shop: str | None = None) -> None:
    """What every scheduled job calls (module-level, so the job store can name it)."""
    home = Home.resolve(home_root)
    config = load_config(home.config)
    if kind == "pipeline":
        run_pipeline(home, config, config.steps, kind="pipeline", stop=STOP)
    elif kind == "crawl":
        run_pipeline(home, config, ("crawl",), shops=(shop,), kind=f"crawl:{shop}", stop=STOP)
    elif kind == "report":
        run_pipeline(home, config, ("report",), kind="report", stop=STOP)
    elif kind == "retrain":
        run_pipeline(home, config, ("retrain",), kind="retrain", stop=STOP)


def wanted_jobs(config: ServiceConfig) -> dict[str, tuple[str, str | None, object]]:
    """Job id -> (kind, shop, schedule) for every scheduled entry of the config."""
    jobs: dict[str, tuple[str, str | None, object]] = {}
    if config.pipeline.cron:
        jobs["pipeline"] = ("pipeline", None, config.pipeline)
    for shop, schedule in config.shop_schedules.items():
        if schedule.cron:
            jobs[f"crawl:{shop}"] = ("crawl", shop, schedule)
    if config.report.cron:
        jobs["report"] = ("report", None, config.report)
    if config.retrain.cron:
        jobs["retrain"] = ("retrain", None, config.retrain)
    return jobs


class Service:
    def __init__(self, home: Home):
        self.home = home.create()
        self.lock = FileLock(str(home.root / "serve.lock"))
        self.scheduler: BackgroundScheduler | None = None
        self._config_mtime: float | None = None

    def acquire(self) -> None:
        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            owner = self.home.root / "serve.pid"
            pid = owner.read_text().strip() if owner.exists() else "?"
            raise AlreadyServing(
                f"another pricelens serve (pid {pid}) is running on {self.home.root}; "
                "stop it first (one scheduler per home)"
            ) from None
        (self.home.root / "serve.pid").write_text(str(os.getpid()))

    def start(self) -> int:
        """Take the lock, recover interrupted runs, register the jobs; returns how many runs
        were marked interrupted."""
        self.acquire()
        with Store(self.home.database) as store:
            interrupted = store.mark_interrupted()
        config = load_config(self.home.config)
        self.scheduler = BackgroundScheduler(
            jobstores={
                "default": SQLAlchemyJobStore(url=f"sqlite:///{self.home.root / 'scheduler.db'}")
            },
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": config.misfire_grace_seconds,
            },
            timezone=config.timezone,
        )
        self.scheduler.start(paused=True)
        self.sync()
        if interrupted and config.pipeline.cron and not config.pipeline.paused:
            log.warning(
                "%d interrupted run(s) found: running the pipeline now to catch up", interrupted
            )
            self.scheduler.add_job(
                run_job,
                args=[str(self.home.root), "pipeline"],
                id="catch-up",
                replace_existing=True,
                next_run_time=datetime.now(UTC),
            )
        self.scheduler.resume()
        return interrupted

    def sync(self) -> None:
        """Make the job store match pricelens.toml: add, replace, pause or remove jobs."""
        path = self.home.config
        mtime = path.stat().st_mtime if path.exists() else None
        if mtime == self._config_mtime and self._config_mtime is not None:
            return
        self._config_mtime = mtime
        config = load_config(path)
        wanted = wanted_jobs(config)
        for job in self.scheduler.get_jobs(jobstore="default"):
            if job.id not in wanted and job.id != "catch-up":
                job.remove()
        for job_id, (kind, shop, schedule) in wanted.items():
            job = self.scheduler.add_job(
                run_job,
                config.trigger(schedule),
                args=[str(self.home.root), kind, shop],
                id=job_id,
                name=job_id,
                replace_existing=True,
                misfire_grace_time=config.misfire_grace_seconds,
            )
            if schedule.paused:
                job.pause()

    def stop(self) -> None:
        STOP.set()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)  # running jobs stop after their current page
        self.lock.release()
        (self.home.root / "serve.pid").unlink(missing_ok=True)


def serve(home: Home, ready=None) -> None:
    """Run until SIGTERM or SIGINT, then let the running job stop after its current page."""
    service = Service(home)
    stop_requested = threading.Event()

    def on_signal(signum, frame):
        stop_requested.set()
        STOP.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        interrupted = service.start()
        if ready:
            ready(service, interrupted)
        while not stop_requested.wait(SYNC_SECONDS):
            try:
                service.sync()
            except PipelineError as exc:  # a bad edit keeps the jobs as they were
                log.error("%s", exc)
    finally:
        service.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
