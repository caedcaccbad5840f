"""`<home>/pricelens.toml`: what the service runs and when. Validated like shop specs: an
unknown key, a wrong type or a bad cron expression names the file and the key."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from pipeline.errors import PipelineError

STEPS = ("crawl", "classify", "match", "report")
EXTRA_STEPS = ("retrain",)  # run on its own schedule, or asked for: `pricelens run --steps retrain`
CRON_FIELDS = ("minute", "hour", "day", "month", "day_of_week")


class ConfigError(PipelineError):
    """pricelens.toml is invalid; the message names the file and the key."""


def cron_trigger(expression: str, timezone: str) -> CronTrigger:
    """Five fields as in crontab, or six with seconds first ("*/10 * * * * *")."""
    parts = expression.split()
    if len(parts) not in (5, 6):
        raise ValueError(
            f"{expression!r} has {len(parts)} fields; cron needs 5 (or 6 with seconds first)"
        )
    second = parts.pop(0) if len(parts) == 6 else "0"
    return CronTrigger(
        second=second, timezone=timezone, **dict(zip(CRON_FIELDS, parts, strict=True))
    )


@dataclass(frozen=True)
class Schedule:
    cron: str | None = None  # None: not scheduled
    paused: bool = False


@dataclass(frozen=True)
class ServiceConfig:
    path: Path
    timezone: str = "UTC"
    misfire_grace_seconds: int = 3600
    pipeline: Schedule = Schedule()
    steps: tuple[str, ...] = STEPS
    shops: tuple[str, ...] = ()  # default: every spec in <home>/shops
    base_urls: dict[str, str] = field(default_factory=dict)
    shop_schedules: dict[str, Schedule] = field(default_factory=dict)
    sessions: int = 1
    report: Schedule = Schedule()
    report_folder: str = "reports"
    report_keep: int = 14
    report_csv: bool = False
    train_epochs: int = 2
    train_limit: int | None = None
    retrain: Schedule = Schedule()
    retrain_min_labels: int = 200  # newly labelled scraped photos that make retraining worth it
    retrain_epochs: int = 2
    retrain_dataset: str = "both"

    def trigger(self, schedule: Schedule) -> CronTrigger:
        return cron_trigger(schedule.cron, self.timezone)


class _Table:
    def __init__(self, path: Path, data: dict, prefix: str = ""):
        self.path, self.data, self.prefix = path, dict(data), prefix

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: key '{self.prefix}{key}': {problem}")

    def take(self, key: str, kind, default=None):
        if key not in self.data:
            return default
        value = self.data.pop(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise self.fail(key, f"must be {names}, not {type(value).__name__}")
        return value

    def table(self, key: str) -> _Table:
        return _Table(self.path, self.take(key, dict, {}), f"{self.prefix}{key}.")

    def schedule(self, timezone: str) -> Schedule:
        cron = self.take("cron", str)
        if cron is not None:
            try:
                cron_trigger(cron, timezone)
            except ValueError as exc:
                raise self.fail("cron", str(exc)) from None
        return Schedule(cron, self.take("paused", bool, False))

    def done(self) -> None:
        if self.data:
            raise self.fail(sorted(self.data)[0], "unknown key")


def load_config(path: Path) -> ServiceConfig:
    """Read the service configuration; a missing file means nothing is scheduled."""
    if not path.exists():
        return ServiceConfig(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    top = _Table(path, data)
    timezone = top.take("timezone", str, "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise top.fail("timezone", f"unknown time zone {timezone!r}") from None
    grace = top.take("misfire_grace_seconds", int, 3600)
    pipeline = top.table("pipeline")
    schedule = pipeline.schedule(timezone)
    steps = tuple(pipeline.take("steps", list, list(STEPS)))
    bad = [s for s in steps if s not in STEPS]
    if bad:
        raise pipeline.fail("steps", f"unknown step {bad[0]!r}; steps: {', '.join(STEPS)}")
    shop_names = tuple(pipeline.take("shops", list, []))
    sessions = pipeline.take("sessions", int, 1)
    pipeline.done()
    base_urls, shop_schedules = {}, {}
    shops = top.table("shops")
    for name in list(shops.data):
        entry = shops.table(name)
        if (url := entry.take("base_url", str)) is not None:
            base_urls[name] = url
        shop_schedules[name] = entry.schedule(timezone)
        entry.done()
    report = top.table("report")
    report_schedule = report.schedule(timezone)
    folder, keep = report.take("folder", str, "reports"), report.take("keep", int, 14)
    report_csv = report.take("csv", bool, False)
    if keep < 1:
        raise report.fail("keep", "must be >= 1")
    report.done()
    train = top.table("train")
    epochs, limit = train.take("epochs", int, 2), train.take("train_limit", int)
    train.done()
    retrain = top.table("retrain")
    retrain_schedule = retrain.schedule(timezone)
    min_labels = retrain.take("min_new_labels", int, 200)
    retrain_epochs = retrain.take("epochs", int, 2)
    retrain_dataset = retrain.take("dataset", str, "both")
    if retrain_dataset not in ("both", "scraped"):
        raise retrain.fail("dataset", f"must be 'both' or 'scraped', not {retrain_dataset!r}")
    if min_labels < 1 or retrain_epochs < 1:
        raise retrain.fail("min_new_labels" if min_labels < 1 else "epochs", "must be >= 1")
    retrain.done()
    top.done()
    return ServiceConfig(
        path,
        timezone,
        grace,
        schedule,
        steps,
        shop_names,
        base_urls,
        shop_schedules,
        sessions,
        report_schedule,
        folder,
        keep,
        report_csv,
        epochs,
        limit,
        retrain_schedule,
        min_labels,
        retrain_epochs,
        retrain_dataset,
    )
