"""pricelens.toml and `pricelens schedule`: validated, edited in place, comments kept."""

from __future__ import annotations

import pickle
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from crawler.spec import builtin_spec_paths
from pipeline.cli import cli
from pipeline.config import ConfigError, Schedule, ServiceConfig, cron_trigger, load_config
from pipeline.service import Service
from pipeline.settings import Home
from tests.pipeline.quiet_hours import quiet_daily

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
MONDAY = datetime(2026, 11, 23, 19, 30, tzinfo=UTC)  # the review's clock: a Monday evening


def invoke(home, *args):
    return CliRunner().invoke(cli, ["--home", str(home), *args])


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('[pipeline]\ncron = "61 * * * *"\n', "pipeline.cron", "61"),
        ('[pipeline]\ncron = "* * *"\n', "pipeline.cron", "3 fields"),
        ('[pipeline]\ncrom = "0 6 * * *"\n', "pipeline.crom", "unknown key"),
        ('[pipeline]\nsteps = ["crawl", "dance"]\n', "pipeline.steps", "dance"),
        ('timezone = "Mars/Olympus"\n', "timezone", "unknown time zone"),
        ("[shops.a]\nbase_url = 5\n", "shops.a.base_url", "must be a string"),
        ('[report]\nkeep = "ten"\n', "report.keep", "must be an integer"),
        ("misfire_grace_seconds = 0\n", "misfire_grace_seconds", "must be from 1 to"),
        ("misfire_grace_seconds = -60\n", "misfire_grace_seconds", "must be from 1 to"),
        # larger overflowed APScheduler's timedelta in every run, after start-up went well
        ("misfire_grace_seconds = 9223372036854775807\n", "misfire_grace_seconds", "to 315360000"),
        ("[pipeline]\nsteps = []\n", "pipeline.steps", "give at least one of crawl, classify"),
        ("[pipeline]\nsessions = 0\n", "pipeline.sessions", ">= 1"),
        ("[pipeline]\nshops = [1, 2]\n", "pipeline.shops", "shop names"),
        ('[retrain]\ncron = "0 3 * * 8"\n', "retrain.cron", "0 and 7 are Sunday"),
        ('[report]\ncron = "0 3 * * 5-1"\n', "report.cron", "backwards"),
        ("[train]\ntrain_limit = 0\n", "train.train_limit", ">= 1"),
        ('[shops.a]\nbase_url = "shop.example"\n', "shops.a.base_url", "absolute http(s) URL"),
    ],
)
def test_a_bad_config_names_the_file_and_key(tmp_path, text, key, problem):
    path = tmp_path / "pricelens.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in str(caught.value) and f"'{key}'" in str(caught.value)
    assert problem in str(caught.value)


def test_six_field_cron_has_seconds_first():
    trigger = cron_trigger("*/10 0 6 * * *", "UTC")
    assert str(trigger.fields[-1]) == "*/10" and str(trigger.fields[-2]) == "0"


def fire_times(cron: str, start: datetime, count: int) -> list[datetime]:
    trigger, times, previous = cron_trigger(cron, "UTC"), [], None
    now = start
    for _ in range(count):
        previous = trigger.get_next_fire_time(previous, now)
        times.append(previous)
        now = previous + timedelta(seconds=1)
    return times


SUNDAY, SATURDAY = 6, 5  # datetime.weekday()


@pytest.mark.parametrize("start_day", range(7))
def test_day_of_week_0_and_7_are_sunday_as_in_crontab(start_day):
    start = MONDAY + timedelta(days=start_day)
    for cron in ("0 3 * * 0", "0 3 * * 7", "0 3 * * sun"):
        times = fire_times(cron, start, 3)
        assert [t.weekday() for t in times] == [SUNDAY] * 3, cron
        assert times[0] - start < timedelta(days=7) and (times[0].hour, times[0].minute) == (3, 0)


@pytest.mark.parametrize(
    ("cron", "weekdays"),
    [
        ("0 6 * * 1", {0}),  # crontab 1 is Monday (datetime's 0)
        ("0 6 * * 1-5", {0, 1, 2, 3, 4}),
        ("0 6 * * mon-fri", {0, 1, 2, 3, 4}),
        ("0 6 * * 0,6", {SATURDAY, SUNDAY}),
        ("0 6 * * 5-7", {4, SATURDAY, SUNDAY}),
        ("0 6 * * fri-sun", {4, SATURDAY, SUNDAY}),
        ("0 6 * * */2", {SUNDAY, 1, 3, SATURDAY}),  # crontab counts the step from Sunday
        ("0 6 * * 1-7/2", {0, 2, 4, SUNDAY}),
        ("0 6 * * 1,3-4", {0, 2, 3}),
        ("0 6 * * *", set(range(7))),
    ],
)
def test_day_of_week_ranges_lists_steps_and_names_follow_crontab(cron, weekdays):
    assert {t.weekday() for t in fire_times(cron, MONDAY, 30)} == weekdays


def test_weekdays_never_fire_on_a_weekend():
    friday_night = datetime(2026, 11, 27, 23, 59, 30, tzinfo=UTC)
    assert fire_times("* * * * 1-5", friday_night, 1) == [datetime(2026, 11, 30, tzinfo=UTC)]
    for hours in range(0, 24 * 14, 5):  # two weeks, every fifth hour
        start = MONDAY + timedelta(hours=hours)
        (first,) = fire_times("* * * * 1-5", start, 1)
        assert first.weekday() < SATURDAY
        if start.weekday() < SATURDAY:
            assert first - start < timedelta(minutes=1)  # a weekday fires at once


def test_the_readme_example_runs_retraining_on_sundays(tmp_path):
    section = README.split("### Running on a schedule", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    assert re.search(r'cron = "0 3 \* \* 0" .*Sundays', example)
    path = tmp_path / "pricelens.toml"
    path.write_text(example)
    config = load_config(path)
    times = fire_times(config.retrain.cron, MONDAY, 3)
    assert [t.weekday() for t in times] == [SUNDAY] * 3


def test_schedule_add_accepts_7_and_lists_the_next_sunday(tmp_path):
    added = invoke(tmp_path, "schedule", "add", "report", "0 6 * * 7")
    assert added.exit_code == 0, added.output
    listed = invoke(tmp_path, "schedule", "list").output
    following = datetime.fromisoformat(re.search(r"\d{4}-\d\d-\d\dT[\d:]+\+00:00", listed)[0])
    assert following.weekday() == SUNDAY and following.hour == 6


def test_serve_refuses_a_config_it_cannot_schedule_naming_the_file_and_key(tmp_path):
    config = tmp_path / "pricelens.toml"
    config.write_text('misfire_grace_seconds = 0\n[report]\ncron = "0 7 * * *"\n')
    result = invoke(tmp_path, "serve")
    assert result.exit_code == 1
    assert f"{config}: key 'misfire_grace_seconds': must be from 1 to" in result.output
    assert "unexpected" not in result.output and not (tmp_path / "serve.pid").exists()


def test_schedule_add_list_pause_resume_remove_keep_comments(tmp_path):
    config = tmp_path / "pricelens.toml"
    config.write_text('# my notes\ntimezone = "Asia/Seoul"\n')
    assert invoke(tmp_path, "schedule", "add", "pipeline", "0 6 * * *").exit_code == 0
    assert invoke(tmp_path, "schedule", "add", "crawl:classic", "0 */4 * * *").exit_code == 0
    listed = invoke(tmp_path, "schedule", "list").output
    assert "pipeline" in listed and "crawl:classic" in listed and "+09:00" in listed
    assert invoke(tmp_path, "schedule", "pause", "crawl:classic").exit_code == 0
    assert load_config(config).shop_schedules["classic"].paused is True
    assert "paused" in invoke(tmp_path, "schedule", "list").output
    assert invoke(tmp_path, "schedule", "resume", "crawl:classic").exit_code == 0
    assert load_config(config).shop_schedules["classic"].paused is False
    assert invoke(tmp_path, "schedule", "remove", "pipeline").exit_code == 0
    assert load_config(config).pipeline.cron is None
    assert config.read_text().startswith("# my notes")


def test_pause_resume_remove_say_what_they_did_and_leave_a_removed_job_unpaused(tmp_path):
    config = tmp_path / "pricelens.toml"
    assert invoke(tmp_path, "schedule", "add", "pipeline", "0 6 * * *").exit_code == 0
    said = invoke(tmp_path, "schedule", "pause", "pipeline").output
    assert said.startswith("pipeline paused (it keeps its cron) in")
    text = config.read_text()
    said = invoke(tmp_path, "schedule", "pause", "pipeline").output
    assert "pipeline is already paused in" in said and "nothing changed" in said
    assert config.read_text() == text
    assert invoke(tmp_path, "schedule", "remove", "pipeline").output.startswith(
        "pipeline unscheduled in"
    )
    assert invoke(tmp_path, "schedule", "add", "pipeline", "0 7 * * *").exit_code == 0
    assert load_config(config).pipeline.paused is False  # was kept paused, silently
    text = config.read_text()
    said = invoke(tmp_path, "schedule", "resume", "pipeline").output
    assert "pipeline is not paused in" in said and config.read_text() == text


def test_schedule_refuses_a_bad_cron_and_an_unknown_job(tmp_path):
    bad = invoke(tmp_path, "schedule", "add", "pipeline", "every day")
    assert bad.exit_code == 2 and "CRON" in bad.output
    unknown = invoke(tmp_path, "schedule", "add", "dinner", "0 6 * * *")
    assert unknown.exit_code == 1 and "unknown job 'dinner'" in unknown.output


def test_run_refuses_unknown_steps_and_runs_lists_nothing_yet(tmp_path):
    bad = invoke(tmp_path, "run", "--steps", "crawl,dance")
    assert bad.exit_code == 2 and "dance" in bad.output
    assert invoke(tmp_path, "run", "--steps", "match,report").exit_code == 0
    listed = invoke(tmp_path, "runs", "--format", "json")
    assert '"manual"' in listed.output and '"ok"' in listed.output


def test_a_cron_that_never_fires_is_listed_as_never(tmp_path):
    added = invoke(tmp_path, "schedule", "add", "pipeline", "0 0 31 2 *")  # February 31st
    assert added.exit_code == 0, added.output
    assert "warning: '0 0 31 2 *' never fires" in added.stderr
    assert invoke(tmp_path, "schedule", "add", "report", "0 6 * * *").exit_code == 0
    listed = invoke(tmp_path, "schedule", "list")
    assert listed.exit_code == 0, listed.output
    lines = {line.split("│")[1].strip(): line for line in listed.output.splitlines() if "│" in line}
    assert "never" in lines["pipeline"] and "never" not in lines["report"]


NOT_TOML = '[report]\ncron = "0 6 * * 1"\npipeline = [\n'


@pytest.mark.parametrize(
    ("text", "command", "problem"),
    [
        (NOT_TOML, ("add", "pipeline", "0 6 * * *"), "cannot read: "),
        (NOT_TOML, ("remove", "report"), "cannot read: "),
        (
            'pipeline = "daily"\n',
            ("add", "pipeline", "0 6 * * *"),
            "key 'pipeline': must be a table",
        ),
        ('pipeline = "daily"\n', ("remove", "pipeline"), "key 'pipeline': must be a table"),
        ('pipeline = "daily"\n', ("pause", "pipeline"), "key 'pipeline': must be a table"),
        ("[[pipeline]]\n", ("add", "pipeline", "0 6 * * *"), "key 'pipeline': must be a table"),
        ("shops = 5\n", ("add", "crawl:classic", "0 6 * * *"), "key 'shops': must be a table"),
        ("shops = 5\n", ("resume", "crawl:classic"), "key 'shops': must be a table"),
        ('[shops]\nclassic = "x"\n', ("add", "crawl:classic", "0 6 * * *"), "key 'shops.classic'"),
        # another key is broken: the edit is refused when the result is checked
        ('report = "daily"\n', ("add", "pipeline", "0 6 * * *"), "key 'report': must be a table"),
    ],
)
def test_schedule_on_a_broken_config_names_the_file_and_key_and_changes_nothing(
    tmp_path, text, command, problem
):
    config = tmp_path / "pricelens.toml"
    config.write_text(text)
    result = invoke(tmp_path, "schedule", *command)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [result.stderr.strip()]  # one line
    assert result.stderr.startswith(f"Error: {config}: {problem}")
    assert "unexpected" not in result.output
    assert config.read_text() == text and not (tmp_path / "pricelens.tmp").exists()


def test_remove_pause_and_resume_of_a_job_never_scheduled_write_nothing(tmp_path):
    config = tmp_path / "pricelens.toml"
    for job in ("pipeline", "crawl:typo"):
        for command in ("remove", "pause", "resume"):
            result = invoke(tmp_path, "schedule", command, job)
            assert result.exit_code == 1
            assert f"{job} is not scheduled in {config}; nothing changed" in result.output
    assert not config.exists()
    text = '# notes\n[shops.classic]\nbase_url = "http://127.0.0.1:8101"\n\n[report]\nkeep = 3\n'
    config.write_text(text)
    for job in ("crawl:classic", "crawl:typo", "report", "pipeline"):
        result = invoke(tmp_path, "schedule", "remove", job)
        assert result.exit_code == 1 and "is not scheduled" in result.output
    assert config.read_text() == text


def test_schedule_add_refuses_an_unknown_shop_naming_the_known_ones(tmp_path):
    result = invoke(tmp_path, "schedule", "add", "crawl:nosuchshop", "*/5 * * * *")
    assert result.exit_code == 1
    assert "unknown shop 'nosuchshop'" in result.output
    assert "known: classic, menu, scroll, spa" in result.output
    assert not (tmp_path / "pricelens.toml").exists()
    (tmp_path / "shops").mkdir(exist_ok=True)  # the home made it
    (tmp_path / "shops" / "myshop.toml").write_text('name = "myshop"\n')  # the user's own spec
    assert invoke(tmp_path, "schedule", "add", "crawl:myshop", "0 6 * * *").exit_code == 0
    assert load_config(tmp_path / "pricelens.toml").shop_schedules["myshop"].cron == "0 6 * * *"


# -- daylight-saving changes, as cronie crosses them -------------------------------------------


def zone_times(cron: str, zone: str, start: datetime, end: datetime) -> list[datetime]:
    """The service's fire times from *start* to *end*, as APScheduler asks for them."""
    trigger, times, previous = ServiceConfig(Path("x"), zone).trigger(Schedule(cron)), [], None
    now = start
    while (previous := trigger.get_next_fire_time(previous, now)) and previous < end:
        times.append(previous)
        now = previous.astimezone(UTC) + timedelta(microseconds=1)
    return times


def _values(field: str, top: int) -> set[int]:
    found = set()
    for item in field.split(","):
        span, _, step = item.partition("/")
        first, last = (0, top) if span == "*" else map(int, (span.split("-") * 2)[:2])
        found.update(range(first, last + 1, int(step or 1)))
    return found


def crontab_times(cron: str, zone: str, start: datetime, end: datetime) -> list[datetime]:
    """What cronie runs, minute by real minute (its main loop, for a daily cron): a fixed-time
    job runs at its wall-clock minutes, is caught up right after a jump forward, and is not run
    again while the clock repeats an hour; a wildcard job (minute or hour starting with "*")
    runs whenever the wall clock matches. One difference, ours: several times of one job
    skipped by a jump run once, where cronie runs it once per skipped time."""
    minute_field, hour_field = cron.split()[:2]
    minutes, hours = _values(minute_field, 59), _values(hour_field, 23)
    wildcard = minute_field.startswith("*") or hour_field.startswith("*")

    def matches(wall: datetime) -> bool:
        return wall.minute in minutes and wall.hour in hours

    times, virtual, moment = [], None, start.astimezone(UTC)
    while moment < end:
        local = moment.astimezone(ZoneInfo(zone))
        wall = local.replace(tzinfo=None)
        if virtual is None or wall == virtual + timedelta(minutes=1):
            run, virtual = matches(wall), wall
        elif wall > virtual:  # jumped forward: catch up the fixed-time job's skipped minutes
            skipped = [
                virtual + timedelta(minutes=m + 1) for m in range((wall - virtual).seconds // 60)
            ]
            run = matches(wall) if wildcard else any(matches(w) for w in skipped)
            virtual = wall
        else:  # the clock went back: wildcard jobs only, until it is past where it was
            run = wildcard and matches(wall)
        if run:
            times.append(local)
        moment += timedelta(minutes=1)
    return times


CHANGES = [  # a day on either side of each change in 2027
    ("America/New_York", "2027-03-14"),  # 02:00 EST -> 03:00 EDT
    ("America/New_York", "2027-11-07"),  # 02:00 EDT -> 01:00 EST
    ("Europe/Berlin", "2027-03-28"),
    ("Europe/Berlin", "2027-10-31"),
    ("Australia/Lord_Howe", "2027-04-04"),  # half an hour: 02:00 -> 01:30
    ("Australia/Lord_Howe", "2027-10-03"),  # 02:00 -> 02:30
    ("Asia/Seoul", "2027-03-14"),  # no daylight saving
]


@pytest.mark.parametrize(("zone", "day"), CHANGES)
@pytest.mark.parametrize(
    "cron",
    [
        "30 1 * * *",
        "30 2 * * *",
        "0,30 2 * * *",
        "15 1-3 * * *",
        "0-59/10 2 * * *",  # every ten minutes, but fixed-time: it does not start with "*"
        "0 3 * * *",
        "0 * * * *",
        "*/15 * * * *",
        "*/20 2 * * *",
        "45 */2 * * *",
    ],
)
def test_daylight_saving_changes_are_crossed_as_in_crontab(zone, day, cron):
    middle = datetime.fromisoformat(day).replace(tzinfo=ZoneInfo(zone))
    start, end = middle - timedelta(days=1), middle + timedelta(days=2)
    expected = crontab_times(cron, zone, start, end)
    assert expected and zone_times(cron, zone, start, end) == expected


NEW_YORK = "America/New_York"


@pytest.mark.parametrize(
    ("cron", "day", "expected"),
    [
        # clocks go back: a fixed time runs in the first pass only, a wildcard in both
        ("30 1 * * *", "2027-11-07", ["01:30-04:00"]),
        ("30 1 7 * 0", "2027-11-07", ["01:30-04:00"]),  # the 7th or a Sunday (it is both)
        ("30 * * * *", "2027-11-07", ["00:30-04:00", "01:30-04:00", "01:30-05:00", "02:30-05:00"]),
        # clocks go forward: a fixed time in the gap runs at the jump, a wildcard does not
        ("30 2 * * *", "2027-03-14", ["03:00-04:00"]),
        ("0,30 2 * * *", "2027-03-14", ["03:00-04:00"]),
        ("*/30 2 * * *", "2027-03-14", []),
        ("0 * * * *", "2027-03-14", ["00:00-05:00", "01:00-05:00", "03:00-04:00"]),
        ("15 1-3 * * 0", "2027-03-14", ["01:15-05:00", "03:00-04:00"]),  # 02:15 at the jump
        ("30 2 14 3 *", "2027-03-14", ["03:00-04:00"]),
    ],
)
def test_new_york_in_the_night_of_each_change(cron, day, expected):
    start = datetime.fromisoformat(day).replace(tzinfo=ZoneInfo(NEW_YORK))
    times = zone_times(cron, NEW_YORK, start, start.replace(hour=3, minute=1))
    assert [t.isoformat()[11:16] + t.isoformat()[19:] for t in times] == expected


def test_the_service_trigger_is_stored_as_its_expression_and_zone():
    trigger = ServiceConfig(Path("x"), NEW_YORK).trigger(Schedule("0 6 1 * 1"))
    copy = pickle.loads(pickle.dumps(trigger))
    assert copy == trigger and str(copy).startswith("or[")
    assert copy != ServiceConfig(Path("x"), "UTC").trigger(Schedule("0 6 1 * 1"))
    assert copy.get_next_fire_time(None, MONDAY) == trigger.get_next_fire_time(None, MONDAY)


def test_a_shop_name_with_no_spec_is_named_with_its_file_and_key(tmp_path, caplog):
    config = tmp_path / "pricelens.toml"
    config.write_text(
        f'[pipeline]\ncron = "{quiet_daily()}"\nshops = ["classik"]\n\n'
        f'[shops.clasic]\ncron = "{quiet_daily(1)}"\nbase_url = "http://127.0.0.1:9"\n'
    )
    result = invoke(tmp_path, "run", "--steps", "crawl")
    assert result.exit_code == 1
    assert (
        f"{config}: key 'pipeline.shops': no shop spec named 'classik'; known: classic, menu"
        in result.stderr
    )
    service = Service(Home.resolve(tmp_path))
    service.start()  # a spec may come later: said, not refused
    service.stop()
    assert f"{config}: key 'shops.clasic': no shop spec named 'clasic'" in caplog.text
    assert f"its runs fail until {tmp_path / 'shops' / 'clasic.toml'} exists" in caplog.text
    (tmp_path / "shops").mkdir(exist_ok=True)  # the home made it
    classic = builtin_spec_paths()["classic"].read_text()
    (tmp_path / "shops" / "clasic.toml").write_text(
        classic.replace('name = "classic"', 'name = "clasic"')
    )
    caplog.clear()
    service = Service(Home.resolve(tmp_path))
    service.start()
    service.stop()
    assert "'clasic'" not in caplog.text and "'classik'" in caplog.text


def test_run_takes_its_steps_from_the_config_unless_told(tmp_path):
    (tmp_path / "pricelens.toml").write_text('[pipeline]\nsteps = ["match", "report"]\n')
    result = invoke(tmp_path, "run")
    assert result.exit_code == 0, result.output
    assert '"steps": ["match", "report"]' in result.output  # no crawl, no training
    result = invoke(tmp_path, "run", "--steps", "report")
    assert result.exit_code == 0 and '"steps": ["report"]' in result.output
