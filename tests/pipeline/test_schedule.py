"""pricelens.toml and `pricelens schedule`: validated, edited in place, comments kept."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.config import ConfigError, cron_trigger, load_config


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
        ("[shops.a]\nbase_url = 5\n", "shops.a.base_url", "must be str"),
        ('[report]\nkeep = "ten"\n', "report.keep", "must be int"),
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
