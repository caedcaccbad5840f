"""Cron's two day fields as crontab reads them: when both are restricted, either one matching
fires ("0 6 1 * 1" is the 1st and every Monday), in every place that computes a fire time."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from pipeline.config import cron_trigger
from pipeline.service import Service
from pipeline.settings import Home
from tests.pipeline.quiet_hours import QUIET_HOUR
from tests.pipeline.test_schedule import MONDAY, SUNDAY, fire_times, invoke


def at(day: str, hour: int = 6, minute: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=UTC)


def crontab_next(after: datetime, hour: int = 6) -> datetime:
    """The first *hour*:00 after *after* on a 1st or a Monday, found by walking the calendar."""
    day = after.replace(hour=hour, minute=0, second=0, microsecond=0)
    while day <= after or not (day.day == 1 or day.weekday() == 0):
        day += timedelta(days=1)
    return day


def crontab_last(until: datetime) -> datetime:
    """The last 06:00 on a 1st or a Monday at or before *until*."""
    day = until.replace(hour=6, minute=0, second=0, microsecond=0)
    while day > until or not (day.day == 1 or day.weekday() == 0):
        day -= timedelta(days=1)
    return day


def test_both_day_fields_restricted_fire_on_either():
    # from Monday 23 Nov 2026 19:30: Mondays, and Tue 1 Dec and Fri 1 Jan from the day field
    assert fire_times("0 6 1 * 1", MONDAY, 8) == [
        at("2026-11-30"),
        at("2026-12-01"),
        at("2026-12-07"),
        at("2026-12-14"),
        at("2026-12-21"),
        at("2026-12-28"),
        at("2027-01-01"),
        at("2027-01-04"),
    ]
    expected = [crontab_next(MONDAY)]  # a year and more, against a walk of the calendar
    while len(expected) < 70:
        expected.append(crontab_next(expected[-1]))
    assert fire_times("0 6 1 * 1", MONDAY, 70) == expected


@pytest.mark.parametrize(
    ("cron", "first", "apscheduler_fields"),
    [
        ("*/15 * * * *", at("2026-11-23", 19, 30), {"minute": "*/15"}),
        ("0 6 15 * *", at("2026-12-15"), {"hour": "6", "minute": "0", "day": "15"}),
        ("0 6 * * 5", at("2026-11-27"), {"hour": "6", "minute": "0", "day_of_week": "fri"}),
        # a day field starting with "*" is unrestricted in crontab: both must match
        (
            "0 6 */2 * 1",
            at("2026-12-07"),
            {"hour": "6", "minute": "0", "day": "*/2", "day_of_week": "mon"},
        ),
    ],
)
def test_one_restricted_day_field_is_unchanged(cron, first, apscheduler_fields):
    trigger = cron_trigger(cron, "UTC")
    assert isinstance(trigger, CronTrigger)
    plain = CronTrigger(second="0", timezone="UTC", **apscheduler_fields)
    times = fire_times(cron, MONDAY, 40)
    assert times[0] == first
    previous, now, expected = None, MONDAY, []
    for _ in range(40):
        previous = plain.get_next_fire_time(previous, now)
        expected.append(previous)
        now = previous + timedelta(seconds=1)
    assert times == expected


@pytest.mark.parametrize("cron", ["0 3 1 * 0", "0 3 1 * 7", "0 3 1 * sun"])
def test_sunday_as_0_or_7_in_an_either_day_cron(cron):
    times = fire_times(cron, MONDAY, 12)
    assert all(t.weekday() == SUNDAY or t.day == 1 for t in times)
    assert {t.day for t in times if t.weekday() != SUNDAY} == {1}
    assert at("2026-11-29", 3) in times and at("2026-12-01", 3) in times


def test_a_never_firing_cron_is_still_never():
    assert cron_trigger("0 0 31 2 *", "UTC").get_next_fire_time(None, MONDAY) is None


def test_schedule_list_shows_the_either_day_next_run(tmp_path):
    before = datetime.now(UTC)
    added = invoke(tmp_path, "schedule", "add", "pipeline", "0 6 1 * 1")
    assert added.exit_code == 0 and "never" not in added.output + added.stderr
    listed = invoke(tmp_path, "schedule", "list").output
    after = datetime.now(UTC)
    following = datetime.fromisoformat(re.search(r"\d{4}-\d\d-\d\dT[\d:]+\+00:00", listed)[0])
    assert following in {crontab_next(before), crontab_next(after)}


def test_the_service_stores_and_schedules_the_either_day_trigger(tmp_path):
    # at an hour the suite does not reach: a run firing would start a real pipeline
    (tmp_path / "pricelens.toml").write_text(f'[pipeline]\ncron = "0 {QUIET_HOUR} 1 * 1"\n')
    service = Service(Home.resolve(tmp_path))
    before = datetime.now(UTC)
    service.start()
    try:
        job = service.scheduler.get_job("pipeline")  # read back from scheduler.db
        assert str(job.trigger).startswith("or[")
        after = datetime.now(UTC)
        assert job.next_run_time in {crontab_next(at, QUIET_HOUR) for at in (before, after)}
    finally:
        service.stop()


def test_missed_either_day_runs_are_coalesced_into_one():
    """Down for 20 days: the Mondays and 1sts missed within the grace run once, as the latest."""
    before = datetime.now(UTC)
    events, ran = [], threading.Event()

    def record(event):
        events.append(event)
        ran.set()

    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_listener(record, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED)
    scheduler.start(paused=True)
    try:
        scheduler.add_job(
            lambda: None,
            trigger=cron_trigger("0 6 1 * 1", "UTC"),
            id="pipeline",
            next_run_time=crontab_next(before - timedelta(days=20)),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=30 * 86400,
        )
        scheduler.resume()
        assert ran.wait(60)
        # the job's next time is set under the scheduler's lock before the run is reported
        following = scheduler.get_job("pipeline").next_run_time
    finally:
        scheduler.shutdown(wait=True)
    after = datetime.now(UTC)
    assert [e.code for e in events] == [EVENT_JOB_EXECUTED]
    assert events[0].scheduled_run_time in {crontab_last(before), crontab_last(after)}
    assert following in {crontab_next(before), crontab_next(after)}
