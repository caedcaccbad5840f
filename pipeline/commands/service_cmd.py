"""`pricelens serve`, `run`, `runs` and `schedule`: the pipeline on a schedule, or now."""

from __future__ import annotations

import json
import tomllib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import tomlkit
from tomlkit.exceptions import TOMLKitError

from db.store import Store
from pipeline.commands.options import format_option
from pipeline.config import EXTRA_STEPS, STEPS, ConfigError, cron_trigger, load_config
from pipeline.errors import PipelineError
from pipeline.output import render_rows, terminal_text
from pipeline.progress import progress_bar
from pipeline.runner import run_pipeline
from pipeline.service import serve as serve_forever
from pipeline.service import wanted_jobs
from pipeline.shops import spec_files


def register(group: click.Group) -> None:
    for command in (serve, run, runs, schedule):
        group.add_command(command)


@click.command()
@click.pass_obj
def serve(env):
    """Run the schedules of <home>/pricelens.toml until SIGTERM or Ctrl-C.

    One scheduler per home (a second is refused). Jobs are kept in <home>/scheduler.db; a run
    missed while the service was down runs once when it is back (misfire grace). Jobs run one
    at a time: a job that comes due while another runs waits for it. SIGTERM lets the running
    crawl finish its current page, records the run as stopped, and exits.
    """

    def ready(service, interrupted):
        jobs = service.scheduler.get_jobs()
        env.err.print(
            f"pricelens serve on {env.home.root}: {len(jobs)} job(s)"
            + (f"; {interrupted} interrupted run(s) marked" if interrupted else ""),
            highlight=False,
            soft_wrap=True,
        )

    serve_forever(env.home, ready)
    env.err.print("pricelens serve stopped", highlight=False)


@click.command()
@click.option(
    "--steps",
    default=None,
    help="Comma-separated steps to run, in pipeline order (`retrain` too: see [retrain]); "
    f"default: [pipeline] steps, else {','.join(STEPS)}.",
)
@click.option(
    "--shop",
    "shops",
    multiple=True,
    metavar="NAME",
    help="Crawl this shop (repeatable); default: the config's, else <home>/shops.",
)
@click.pass_obj
def run(env, steps, shops):
    """Run the pipeline once now, through the same code as the scheduled runs."""
    config = load_config(env.home.create().config)
    if steps is None:
        steps = ",".join(config.steps)  # as the scheduled pipeline runs
    chosen = tuple(s.strip() for s in steps.split(",") if s.strip())
    if not chosen:
        raise click.BadParameter(
            f"give at least one of {', '.join(STEPS + EXTRA_STEPS)}", param_hint="--steps"
        )
    unknown = [s for s in chosen if s not in STEPS + EXTRA_STEPS]
    if unknown:
        raise click.BadParameter(
            f"unknown step {unknown[0]!r}; steps: {', '.join(STEPS + EXTRA_STEPS)}",
            param_hint="--steps",
        )
    with progress_bar(env.progress) as progress:
        outcome = run_pipeline(env.home, config, chosen, shops, kind="manual", progress=progress)
    env.out.print(
        f"run {outcome.run_id}: {outcome.status} {json.dumps(outcome.counts)}",
        highlight=False,
        soft_wrap=True,
    )
    ending = f"run {outcome.run_id} ended {outcome.status}"
    if outcome.status == "partial":  # as `pricelens crawl`: only a run with nothing is an error
        env.err.print(
            terminal_text(f"{ending}: {outcome.error}"),
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    elif outcome.status != "ok":
        raise PipelineError(f"{ending}: {outcome.error}" if outcome.error else ending)


@click.command()
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(1), help="The newest N runs."
)
@format_option()
@click.pass_obj
def runs(env, limit, fmt):
    """List pipeline runs, newest first: status, duration, counts, error."""
    with Store(env.home.database) as store:
        rows = store.pipeline_runs(limit)
    columns = ["id", "kind", "status", "started_at", "seconds", "counts_json", "error"]
    render_rows(env.out, columns, [[r[c] for c in columns] for r in rows], fmt)


@click.group()
def schedule():
    """The schedules in <home>/pricelens.toml (a running service picks up changes)."""


def _document(env) -> tuple[Path, tomlkit.TOMLDocument]:
    """pricelens.toml as an editable document (comments kept); one that cannot be read or
    parsed is a ConfigError naming the file, as `load_config` words it."""
    path = env.home.create().config
    if not path.exists():
        return path, tomlkit.document()
    try:
        text = path.read_text(encoding="utf-8")
        tomllib.loads(text)  # its messages name the problem; tomlkit's can be cryptic
        return path, tomlkit.parse(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, TOMLKitError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None


def _entry(path: Path, document, job: str, create: bool = False):
    """The TOML table behind a job id (pipeline, report, retrain, or crawl:SHOP, which is
    [shops.SHOP]), created if *create*, else None when absent. A key there that is not a
    table is a ConfigError naming the file and the key."""
    if job in ("pipeline", "report", "retrain"):
        return _table(path, document, job, job, create)
    if job.startswith("crawl:") and len(job) > 6:
        shops = _table(path, document, "shops", "shops", create)
        return None if shops is None else _table(path, shops, job[6:], f"shops.{job[6:]}", create)
    raise PipelineError(f"unknown job {job!r}: use pipeline, report, retrain or crawl:SHOP")


def _table(path: Path, parent, key: str, dotted: str, create: bool):
    found = parent.get(key)
    if found is None:
        return parent.setdefault(key, tomlkit.table()) if create else None
    if not isinstance(found, dict):
        raise ConfigError(f"{path}: key '{dotted}': must be a table")
    return found


def _save(path, document) -> None:
    text = tomlkit.dumps(document)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        load_config(tmp)  # never save a config the service would refuse
    except ConfigError as exc:
        tmp.unlink()
        raise PipelineError(str(exc).replace(str(tmp), str(path))) from None
    tmp.replace(path)


@schedule.command(name="list")
@click.pass_obj
def list_(env):
    """List scheduled jobs with their cron, state and next run time."""
    config = load_config(env.home.config)
    rows = []
    for job_id, (_, _, entry) in wanted_jobs(config).items():
        following = config.trigger(entry).get_next_fire_time(None, _now(config.timezone))
        # a cron such as "0 0 31 2 *" (February 31st) is valid but never fires
        next_run = "never" if following is None else following.isoformat()
        state = "paused" if entry.paused else "active"
        rows.append((job_id, entry.cron, state, None if entry.paused else next_run))
    render_rows(env.out, ["job", "cron", "state", "next_run"], rows, "table")


@schedule.command()
@click.argument("job")
@click.argument("cron")
@click.pass_obj
def add(env, job, cron):
    """Schedule JOB (pipeline, report, retrain or crawl:SHOP) at CRON ("0 6 * * *"), or
    change its cron. SHOP must be a known shop (`pricelens shops list`)."""
    try:
        trigger = cron_trigger(cron, "UTC")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="CRON") from None
    if job.startswith("crawl:") and len(job) > 6:
        shops = spec_files(env.home)
        if job[6:] not in shops:
            raise PipelineError(
                f"unknown shop {job[6:]!r} in {job!r}; known: {', '.join(sorted(shops))}"
            )
    path, document = _document(env)
    entry = _entry(path, document, job, create=True)
    entry["cron"] = cron
    _save(path, document)
    env.out.print(f"scheduled {job} at {cron!r} in {path}", highlight=False, soft_wrap=True)
    if trigger.get_next_fire_time(None, _now("UTC")) is None:
        env.err.print(f"warning: {cron!r} never fires", highlight=False, soft_wrap=True)


@schedule.command()
@click.argument("job")
@click.pass_obj
def remove(env, job):
    """Unschedule JOB (pipeline, report, retrain or crawl:SHOP); its other settings stay."""

    def unschedule(entry) -> str:
        del entry["cron"]
        entry.pop("paused", None)  # a later `schedule add` starts it active, as it says
        return "unscheduled"

    _change(env, job, unschedule)


@schedule.command()
@click.argument("job")
@click.pass_obj
def pause(env, job):
    """Pause JOB (pipeline, report, retrain or crawl:SHOP); it keeps its cron."""

    def paused(entry) -> str | None:
        if entry.get("paused"):
            return None
        entry["paused"] = True
        return "paused (it keeps its cron)"

    _change(env, job, paused, "already paused")


@schedule.command()
@click.argument("job")
@click.pass_obj
def resume(env, job):
    """Resume a paused JOB: it runs again at its cron times."""

    def resumed(entry) -> str | None:
        return "resumed" if entry.pop("paused", False) else None

    _change(env, job, resumed, "not paused")


def _change(env, job: str, change, unchanged: str = "") -> None:
    """Apply *change* to a scheduled job's table and save, printing what it returns; when it
    returns None, nothing needed changing and the file is left as it was. A job with no cron
    is refused and the file left untouched: there is nothing to remove, pause or resume."""
    path, document = _document(env)
    entry = _entry(path, document, job)
    if entry is None or "cron" not in entry:
        raise PipelineError(f"{job} is not scheduled in {path}; nothing changed")
    done = change(entry)
    if done is not None:
        _save(path, document)
    env.out.print(
        f"{job} {done} in {path}" if done else f"{job} is {unchanged} in {path}; nothing changed",
        highlight=False,
        soft_wrap=True,
    )


def _now(timezone: str) -> datetime:
    return datetime.now(ZoneInfo(timezone))
