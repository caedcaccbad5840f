"""`<home>/pricelens.toml`: what the service runs and when. Validated like shop specs: an
unknown key, a wrong type or a bad cron expression names the file and the key."""

from __future__ import annotations

import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

from crawler.spec import normal_base_url, wrong_type
from pipeline.errors import PipelineError

STEPS = ("crawl", "classify", "match", "report")
EXTRA_STEPS = ("retrain",)  # run on its own schedule, or asked for: `pricelens run --steps retrain`
CRON_FIELDS = ("minute", "hour", "day", "month", "day_of_week")
MAX_GRACE_SECONDS = 10 * 365 * 86400  # a run ten years late is not worth catching up
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab's numbers: 0 (or 7) is sun


class ConfigError(PipelineError):
    """pricelens.toml is invalid; the message names the file and the key."""


def cron_trigger(expression: str, timezone: str) -> BaseTrigger:
    """Five fields as in crontab, or six with seconds first ("*/10 * * * * *"). The day of
    week counts as in crontab (0 and 7 Sunday, 1 Monday), not as APScheduler's 0 = Monday.
    When both day fields are restricted, either one matching fires, as in crontab: "0 6 1 * 1"
    runs on the 1st and on every Monday (APScheduler alone would want a Monday the 1st)."""
    parts = expression.split()
    if len(parts) not in (5, 6):
        raise ValueError(
            f"{expression!r} has {len(parts)} fields; cron needs 5 (or 6 with seconds first)"
        )
    second = parts.pop(0) if len(parts) == 6 else "0"
    fields = dict(zip(CRON_FIELDS, parts, strict=True))
    fields["day_of_week"] = crontab_weekdays(fields["day_of_week"])
    if _restricted(parts[2]) and _restricted(parts[4]):
        return OrTrigger(
            [
                CronTrigger(second=second, timezone=timezone, **{**fields, "day_of_week": "*"}),
                CronTrigger(second=second, timezone=timezone, **{**fields, "day": "*"}),
            ]
        )
    return CronTrigger(second=second, timezone=timezone, **fields)


class CrontabTrigger(BaseTrigger):
    """A cron expression in a time zone that crosses daylight-saving changes as cronie and
    Vixie cron do, where APScheduler's CronTrigger alone would not. A "fixed-time" job (its
    minute and hour fields do not start with "*") runs once when the clocks go back, not again
    in the repeated hour, and a time of it that the clocks skip in spring runs right after the
    jump (once, where cronie runs it once per skipped time). A "wildcard" job ("*/15 * * * *",
    "30 * * * *") follows the wall clock: it runs in both passes of a repeated hour and not at
    skipped times. Persisted as the expression and the zone, which also tell whether a stored
    job's schedule is still the configured one."""

    __slots__ = ("expression", "fixed_time", "inner", "timezone", "wall_clock")

    def __init__(self, expression: str, timezone: str):
        self.__setstate__({"version": 1, "expression": expression, "timezone": timezone})

    def get_next_fire_time(self, previous_fire_time, now):
        start = now if previous_fire_time is None else min(now, _just_after(previous_fire_time))
        following = self.inner.get_next_fire_time(previous_fire_time, now)
        while following is not None:
            first, second = (following.replace(fold=fold).utcoffset() for fold in (0, 1))
            if first < second:  # the clocks skip this wall-clock time
                jump = _change(following.replace(fold=1), _real(following.replace(fold=0)))
                if self.fixed_time:
                    return jump
                following = self.inner.get_next_fire_time(None, jump)
            elif self.fixed_time and (jump := self._jumped_over(start, following)):
                return jump
            elif first > second and following.fold and self.fixed_time:  # repeated: ran at fold 0
                following = self.inner.get_next_fire_time(following, following)
            else:
                return following
        return None

    def _jumped_over(self, start: datetime, following: datetime) -> datetime | None:
        """The instant the clocks jump forward between *start* and *following*, if the
        expression matches a wall-clock time they skip (CronTrigger can step over it)."""
        before = start.astimezone(following.tzinfo).utcoffset()
        if before >= following.utcoffset():
            return None
        jump = _change(start, following)
        skipped_to = jump.replace(tzinfo=None)
        skipped_from = skipped_to - (jump.utcoffset() - before)
        match = self.wall_clock.get_next_fire_time(None, skipped_from.replace(tzinfo=UTC))
        return jump if match and match.replace(tzinfo=None) < skipped_to else None

    def __getstate__(self):
        return {"version": 1, "expression": self.expression, "timezone": self.timezone}

    def __setstate__(self, state):
        if state.get("version", 1) > 1:
            raise ValueError(f"cannot read version {state['version']} of {type(self).__name__}")
        self.expression, self.timezone = state["expression"], state["timezone"]
        self.inner = cron_trigger(self.expression, self.timezone)
        self.wall_clock = cron_trigger(self.expression, "UTC")  # the zone's clock, never changed
        minute, hour = self.expression.split()[-5:-3]
        self.fixed_time = not (minute.startswith("*") or hour.startswith("*"))

    def __eq__(self, other):
        return isinstance(other, CrontabTrigger) and self.__getstate__() == other.__getstate__()

    def __hash__(self):
        return hash((self.expression, self.timezone))

    def __str__(self):
        return str(self.inner)

    def __repr__(self):
        return f"<CrontabTrigger {self.expression!r} in {self.timezone!r}>"


def _just_after(moment: datetime) -> datetime:
    return moment.astimezone(UTC) + timedelta(microseconds=1)


def _real(moment: datetime) -> datetime:
    """*moment* as its zone's clocks show it (03:30 EDT for a skipped 02:30 read as EST)."""
    return moment.astimezone(UTC).astimezone(moment.tzinfo)


def _change(early: datetime, late: datetime) -> datetime:
    """The first second, in *late*'s zone, whose UTC offset is *late*'s, when *early* has
    another and one change of offset lies between them (for a wall-clock time the clocks
    skip, its readings with the offset after the jump and with the one before)."""
    zone, after = late.tzinfo, late.utcoffset()
    low, high = int(early.timestamp()), int(late.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, zone)


def _restricted(day_field: str) -> bool:
    """Whether a day field limits the days, as Vixie cron and cronie decide it: a field that
    starts with "*" ("*", "*/2") does not, so "0 6 */2 * 1" stays "every other day, if Monday"."""
    return not day_field.startswith("*")


def crontab_weekdays(field: str) -> str:
    """crontab's day-of-week field (numbers 0-7 with 0 and 7 Sunday, or names; lists, ranges,
    steps) as the day names APScheduler 3 reads, since it would take 0 for Monday: "1-5" is
    "mon,tue,wed,thu,fri", "*/2" is "sun,tue,thu,sat"."""
    if field == "*":
        return field
    days: set[int] = set()
    for item in field.lower().split(","):
        span, slash, step_text = item.partition("/")
        step = int(step_text) if step_text.isdigit() else 0
        if slash and step < 1:
            raise ValueError(f"day of week {item!r}: the step must be a whole number >= 1")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            start, end = span.split("-", 1)
            first, last = _weekday(start, field), _weekday(end, field, end=True)
        else:
            first = _weekday(span, field)
            last = 7 if slash else first  # "1/2", as cronie reads it: 1-7/2
        if first > last:
            raise ValueError(f"day of week {item!r}: the range runs backwards")
        days.update(day % 7 for day in range(first, last + 1, step or 1))
    return ",".join(WEEKDAYS[day] for day in sorted(days))


def _weekday(text: str, field: str, end: bool = False) -> int:
    """0-7 for a crontab day number or name; a range ending at "sun" ends at 7."""
    if text.isdigit() and int(text) <= 7:
        return int(text)
    if text in WEEKDAYS:
        return 7 if end and text == "sun" else WEEKDAYS.index(text)
    raise ValueError(
        f"day of week {field!r}: {text!r} is not 0-7 (0 and 7 are Sunday) or sun, mon, ..., sat"
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
    # [browser]: where the pipeline's crawls run their browsers (CLI flags of `crawl` aside)
    remote_url: str | None = None  # a Selenium Grid or any W3C remote WebDriver
    chromedriver: str | None = None  # else chromedriver on PATH, else webdriver-manager
    chrome: str | None = None  # the Chrome/Chromium binary; else found on PATH

    def trigger(self, schedule: Schedule) -> CrontabTrigger:
        return CrontabTrigger(schedule.cron, self.timezone)

    def unknown_shops(self, known: Collection[str]) -> dict[str, str]:
        """Shop name -> the key naming it, for each shop the file names that is not among
        *known* (a typo, or a spec not added yet): its runs fail until it is."""
        known = set(known)
        found = {name: f"shops.{name}" for name in self.shop_schedules if name not in known}
        found |= {name: "pipeline.shops" for name in self.shops if name not in known}
        return found

    def unknown_shop_problem(self, name: str, known: Collection[str]) -> str:
        key = self.unknown_shops(known)[name]
        return (
            f"{self.path}: key '{key}': no shop spec named {name!r}; known: "
            f"{', '.join(sorted(known))}"
        )


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
            raise self.fail(key, wrong_type(kind, value))
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
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (save it as UTF-8): {exc}") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    top = _Table(path, data)
    timezone = top.take("timezone", str, "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise top.fail("timezone", f"unknown time zone {timezone!r}") from None
    grace = top.take("misfire_grace_seconds", int, 3600)
    if not 1 <= grace <= MAX_GRACE_SECONDS:  # APScheduler fails on either only when it runs
        raise top.fail("misfire_grace_seconds", f"must be from 1 to {MAX_GRACE_SECONDS}")
    pipeline = top.table("pipeline")
    schedule = pipeline.schedule(timezone)
    steps = tuple(pipeline.take("steps", list, list(STEPS)))
    bad = [s for s in steps if s not in STEPS]
    if bad:
        raise pipeline.fail("steps", f"unknown step {bad[0]!r}; steps: {', '.join(STEPS)}")
    if not steps:  # every run would end ok having done nothing
        raise pipeline.fail("steps", f"give at least one of {', '.join(STEPS)}")
    shop_names = tuple(pipeline.take("shops", list, []))
    if not all(isinstance(name, str) for name in shop_names):
        raise pipeline.fail("shops", "must be a list of shop names (strings)")
    sessions = pipeline.take("sessions", int, 1)
    if sessions < 1:
        raise pipeline.fail("sessions", "must be >= 1")
    pipeline.done()
    base_urls, shop_schedules = {}, {}
    shops = top.table("shops")
    for name in list(shops.data):
        entry = shops.table(name)
        if (url := entry.take("base_url", str)) is not None:
            try:
                base_urls[name] = normal_base_url(url)
            except ValueError as exc:
                raise entry.fail("base_url", str(exc)) from None
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
    if epochs < 1 or (limit is not None and limit < 1):
        raise train.fail("epochs" if epochs < 1 else "train_limit", "must be >= 1")
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
    browser = top.table("browser")
    remote_url = browser.take("remote", str)
    if remote_url is not None:
        try:
            remote_url = normal_base_url(remote_url)
        except ValueError as exc:
            raise browser.fail("remote", str(exc)) from None
    files = {}
    for key in ("chromedriver", "chrome"):
        value = browser.take(key, str)
        if value is not None and not value.strip():
            raise browser.fail(key, "must name a file")
        # ~ is the user's home; a relative path is the config file's neighbour
        files[key] = str(path.parent / Path(value).expanduser()) if value else None
    chromedriver, chrome = files["chromedriver"], files["chrome"]
    browser.done()
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
        remote_url,
        chromedriver,
        chrome,
    )
