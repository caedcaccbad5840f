"""`pricelens serve`: one scheduler process per home running the configured jobs.

APScheduler 3 keeps the jobs in SQLite (SQLAlchemyJobStore) and runs each at most once, with
`coalesce` and `max_instances=1` and a misfire grace time, so a run missed while the service was
down happens once when it is back: a job whose schedule is unchanged keeps its stored next run
time when the jobs are registered again. The jobs run one at a time (a run that comes due while
another is going waits for it), so two of them never crawl one shop at once or rewrite the
groups together. Our pipeline_runs table stays the source of truth: runs that
a killed process left 'running' become 'interrupted' at start-up, and each job whose run it was
(the pipeline for a hand-started `pricelens run`) catches up once;
runs that another live process is doing (`pricelens run`, `crawl`, `demo`) hold their run locks
(db/run_locks.py) and are left alone, with no catch-up beside them.

pricelens.toml is re-read every few seconds; an edit that cannot be loaded, or whose jobs cannot
be built, is logged and changes nothing: the jobs, and the configuration they run with, stay
those of the last good file.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from filelock import FileLock, Timeout

from db.store import Store
from pipeline.config import ConfigError, Schedule, ServiceConfig, load_config
from pipeline.errors import EXPECTED_ERRORS, PipelineError
from pipeline.runner import run_pipeline
from pipeline.settings import Home
from pipeline.shops import spec_files

log = logging.getLogger(__name__)

STOP = threading.Event()  # set by SIGTERM/SIGINT; crawls stop after their current page
SYNC_SECONDS = 5  # how often the service re-reads pricelens.toml
MAX_JOBS = 1000  # scheduled jobs that may be due at once, each run in its turn


class AlreadyServing(PipelineError):
    """Another `pricelens serve` holds this home's lock."""


# home root -> the configuration its service last loaded whole; jobs run with it, so a broken
# edit of pricelens.toml never fails the runs already scheduled
_LAST_GOOD: dict[str, ServiceConfig] = {}
# home root -> the lock its jobs' runs take one at a time, and the job whose run holds it
_RUN_LOCKS: dict[str, threading.Lock] = {}
_RUNNING: dict[str, str] = {}
_RUN_LOCKS_GUARD = threading.Lock()


def _run_lock(root: str) -> threading.Lock:
    with _RUN_LOCKS_GUARD:
        return _RUN_LOCKS.setdefault(root, threading.Lock())


def run_job(home_root: str, kind: str, shop: str | None = None) -> None:
    """What every scheduled job calls (module-level, so the job store can name it). Runs
    with the service's last good configuration; a failure is recorded in pipeline_runs and
    logged as one line. The runs of one home go one at a time: a run that finds another in
    progress (the pipeline and a shop's crawl due together) logs that it waits, then runs
    once it is over, unless the service is stopping by then or the job was paused or
    unscheduled meanwhile. A job that comes due again while its run waits is not queued a
    second time (`max_instances=1`)."""
    home = Home.resolve(home_root)
    name = f"crawl:{shop}" if kind == "crawl" else kind
    root, lock = str(home.root), _run_lock(str(home.root))
    if not lock.acquire(blocking=False):
        log.warning(
            "%s run waits for the %s run to finish (the service runs one job at a time)",
            name,
            _RUNNING.get(root, "other"),
        )
        lock.acquire()
    if STOP.is_set():  # after a wait, or handed to a worker just as the service stopped
        lock.release()
        log.warning("%s run not started: the service is stopping", name)
        return
    config = _LAST_GOOD.get(root)
    if config is not None and name not in _active_jobs(config):  # paused while it waited
        lock.release()
        log.warning("%s run not started: the job was paused or unscheduled meanwhile", name)
        return
    _RUNNING[root] = name
    try:
        _run(home, name, kind, shop)
    finally:
        _RUNNING.pop(root, None)
        lock.release()


def _run(home: Home, name: str, kind: str, shop: str | None) -> None:
    config = _LAST_GOOD.get(str(home.root))
    if config is None:  # not started by this process's service: read the file
        try:
            config = load_config(home.config)
        except ConfigError as exc:
            _record_failure(home, name, str(exc))
            log.error("%s run not started: %s", name, exc)
            return
    steps = {"pipeline": config.steps, "crawl": ("crawl",)}.get(kind, (kind,))
    try:
        run_pipeline(home, config, steps, shops=(shop,) if shop else (), kind=name, stop=STOP)
    except EXPECTED_ERRORS as exc:  # recorded as failed by run_pipeline
        log.error("%s run failed: %s", name, exc)


def _record_failure(home: Home, kind: str, message: str) -> None:
    with Store(home.database) as store:
        store.finish_pipeline_run(store.start_pipeline_run(kind), "failed", {}, message)


def wanted_jobs(config: ServiceConfig) -> dict[str, tuple[str, str | None, Schedule]]:
    """Job id -> (kind, shop, schedule) for every scheduled entry of the config."""
    jobs: dict[str, tuple[str, str | None, Schedule]] = {}
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


def _active_jobs(config: ServiceConfig) -> set[str]:
    jobs = wanted_jobs(config)
    return {job_id for job_id, (_, _, schedule) in jobs.items() if not schedule.paused}


def _table(job_id: str) -> str:
    """The pricelens.toml table a job comes from: crawl:shop is [shops.shop]."""
    return f"shops.{job_id[6:]}" if job_id.startswith("crawl:") else job_id


CATCH_UP = "catch-up:"  # the id of a job's catch-up run: catch-up:pipeline, catch-up:crawl:x


def _job_of(kind: str) -> str:
    """The job a run of *kind* is the work of: a hand-started `pricelens run` the pipeline's."""
    return "pipeline" if kind == "manual" else kind


def _by_hand(job_id: str) -> str:
    """The command that does *job_id*'s work now."""
    if job_id == "demo":
        return "`pricelens demo`"
    if job_id.startswith("crawl:"):
        return f"`pricelens crawl --shop {job_id[6:]}`"
    if job_id in ("report", "retrain"):
        return f"`pricelens run --steps {job_id}`"
    return "`pricelens run`"


def _caught_up_job(job_id: str) -> str | None:
    """The job whose catch-up *job_id* is, or None ("catch-up" alone is the pipeline's, as
    earlier versions stored it in scheduler.db)."""
    if job_id == "catch-up":
        return "pipeline"
    return job_id.removeprefix(CATCH_UP) if job_id.startswith(CATCH_UP) else None


def _runs_now(job: Job | None, grace_seconds: int) -> bool:
    """Whether *job* runs at once by itself. APScheduler coalesces the runs it missed into
    the latest one, and runs that if it is late by no more than the misfire grace, however
    long ago the first missed one was: the same reckoning here."""
    if job is None or job.next_run_time is None:
        return False
    now = datetime.now(UTC)
    missed = job._get_run_times(now)  # as the scheduler lists them (no public call)
    return bool(missed) and now - missed[-1] <= timedelta(seconds=grace_seconds)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells an edit of *path* apart: an editor that writes in place within one tick
    of the clock leaves the time as it was, but rarely the size too; one that replaces the
    file changes its inode."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


class Service:
    def __init__(self, home: Home):
        self.home = home.create()
        self.lock = FileLock(str(home.root / "serve.lock"))
        self.scheduler: BackgroundScheduler | None = None
        self._config_stamp: tuple | None = None
        self._holds_lock = False  # a refused Service must leave the running one's lock and pid

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
        self._holds_lock = True
        (self.home.root / "serve.pid").write_text(str(os.getpid()))

    def start(self) -> int:
        """Take the lock, recover the runs of dead processes, register the jobs and the
        catch-ups; returns how many runs were marked interrupted. A config that cannot be
        loaded or scheduled raises ConfigError naming the file and the key before anything
        is marked or scheduled."""
        self.acquire()
        STOP.clear()  # a service started again in this process runs its jobs
        path = self.home.config
        self._config_stamp = _stamp(path)
        config = load_config(path)
        self._warn_unknown_shops(config)
        self.scheduler = BackgroundScheduler(
            jobstores={
                "default": SQLAlchemyJobStore(url=f"sqlite:///{self.home.root / 'scheduler.db'}")
            },
            # a run waiting its turn holds a worker (one per job: max_instances=1); a job
            # left in the pool's queue instead would meet the misfire grace there and be
            # dropped. Threads start only as needed.
            executors={"default": ThreadPoolExecutor(max_workers=MAX_JOBS)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": config.misfire_grace_seconds,
            },
            timezone=config.timezone,
        )
        planned = self._plan(config)
        with Store(self.home.database) as store:
            interrupted = store.mark_interrupted()
        self.scheduler.start(paused=True)
        self._register(config, planned)
        by_job: dict[str, list[str]] = {}  # each job once, in the order its runs began
        for kind in dict.fromkeys(interrupted):
            by_job.setdefault(_job_of(kind), []).append(kind)
        for job_id, kinds in by_job.items():
            self._catch_up(job_id, kinds, planned, config.misfire_grace_seconds)
        self.scheduler.resume()
        return len(interrupted)

    def _catch_up(
        self, job_id: str, kinds: list[str], planned: dict[str, tuple[dict, bool]], grace: int
    ) -> None:
        """Run *job_id*, whose runs of *kinds* were interrupted, once more now, unless it is
        due anyway (then that run is the catch-up). A demo's run, or a job no longer
        scheduled or paused, is not redone."""
        found = f"an interrupted {' and '.join(kinds)} run found"
        if job_id not in planned or planned[job_id][1]:
            why = "the demo's own" if job_id == "demo" else f"no {_table(job_id)} job is on"
            log.warning("%s: not redone (%s); %s redoes it", found, why, _by_hand(job_id))
            return
        if _runs_now(self.scheduler.get_job(job_id), grace):
            log.warning("%s: %s is due and runs now", found, job_id)
            return
        log.warning("%s: running %s now to catch up", found, job_id)
        options = planned[job_id][0]
        self.scheduler.add_job(
            run_job,
            args=options["args"],
            id=f"{CATCH_UP}{job_id}",
            name=f"{CATCH_UP}{job_id}",
            replace_existing=True,
            next_run_time=datetime.now(UTC),
        )

    def sync(self) -> None:
        """Make the job store match pricelens.toml if the file changed: add, replace, pause
        or remove jobs. A file that cannot be loaded, or whose jobs cannot be built, raises
        PipelineError and changes nothing: the jobs and their configuration stay as they
        were."""
        path = self.home.config
        stamp = _stamp(path)
        if stamp == self._config_stamp and self._config_stamp is not None:
            return
        self._config_stamp = stamp  # a broken file is reported once, not every few seconds
        config = load_config(path)
        self._warn_unknown_shops(config)
        self._register(config, self._plan(config))

    def _warn_unknown_shops(self, config: ServiceConfig) -> None:
        """A shop name with no spec is a typo or a spec still to come: said once per load,
        not refused (adding the spec later must not need a restart)."""
        known = spec_files(self.home)
        for name in sorted(config.unknown_shops(known)):
            log.warning(
                "%s: its runs fail until %s exists",
                config.unknown_shop_problem(name, known),
                self.home.shops / f"{name}.toml",
            )

    def _plan(self, config: ServiceConfig) -> dict[str, tuple[dict, bool]]:
        """Job id -> (add_job arguments, paused), each checked the way APScheduler will check
        it, so that no job is replaced before all of them are known to be valid."""
        planned = {}
        for job_id, (kind, shop, schedule) in wanted_jobs(config).items():
            options = {
                "func": run_job,
                "args": [str(self.home.root), kind, shop],
                "kwargs": {},
                "id": job_id,
                "name": job_id,
                "misfire_grace_time": config.misfire_grace_seconds,
                "coalesce": True,
                "max_instances": 1,
            }
            try:
                options["trigger"] = config.trigger(schedule)
                Job(self.scheduler, **options)  # validates; nothing is scheduled
            except Exception as exc:
                raise ConfigError(
                    f"{config.path}: key '{_table(job_id)}.cron': job {job_id} cannot be "
                    f"scheduled: {exc}"
                ) from exc
            planned[job_id] = (options, schedule.paused)
        return planned

    def _register(self, config: ServiceConfig, planned: dict[str, tuple[dict, bool]]) -> None:
        """Make the job store hold the planned jobs. A stored job whose schedule (cron and
        time zone) is unchanged keeps its next run time, so a run missed while the service
        was down, or due right now, still runs (once, coalesced, within the misfire grace);
        it is updated in place, under the scheduler's lock, so a run being started at that
        moment is neither repeated nor lost. A new or changed schedule starts from now."""
        try:
            stored = {job.id: job for job in self.scheduler.get_jobs(jobstore="default")}
            for job_id, job in stored.items():
                # a catch-up still pending goes when its job does, or is paused
                caught_up = _caught_up_job(job_id)
                if job_id not in planned and (caught_up not in planned or planned[caught_up][1]):
                    job.remove()
            for job_id, (options, paused) in planned.items():
                old = stored.get(job_id)
                if old and old.next_run_time and old.trigger == options["trigger"]:
                    kept = {k: v for k, v in options.items() if k not in ("id", "trigger")}
                    job = self.scheduler.modify_job(job_id, jobstore="default", **kept)
                else:
                    job = self.scheduler.add_job(replace_existing=True, **options)
                if paused:
                    job.pause()
        except Exception as exc:  # the job store itself failed: try again at the next check
            self._config_stamp = None
            raise PipelineError(f"{config.path}: the jobs could not be registered: {exc}") from exc
        _LAST_GOOD[str(self.home.root)] = config

    def stop(self) -> None:
        """Stop the jobs and free the home. A Service that was refused the lock (a second
        `serve`) does nothing: the lock, serve.pid and the jobs are the running service's."""
        if not self._holds_lock:
            return
        STOP.set()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)  # running jobs stop after their current page
        _LAST_GOOD.pop(str(self.home.root), None)
        (self.home.root / "serve.pid").unlink(missing_ok=True)  # before another serve writes it
        self.lock.release()
        self._holds_lock = False
        STOP.clear()  # its jobs are over: a job run by hand in this process is not stopped


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
                log.error("%s; the jobs stay as they were", exc)
            except Exception:  # never let a re-read end the service
                log.exception("%s: re-reading failed; the jobs stay as they were", home.config)
    finally:
        service.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
