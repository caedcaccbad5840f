"""[browser] in pricelens.toml: where scheduled and `pricelens run` crawls run their browsers
(a Selenium Grid, a chromedriver, a Chrome binary), checked when the file is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_config
from tests.pipeline.test_schedule import invoke
from tests.remote_chromedriver import chromedriver_on_loopback, free_port

SPA = '[pipeline]\nshops = ["spa"]\n\n[shops.spa]\nbase_url = "{spa}"\n\n'


def test_browser_settings_are_read(tmp_path):
    path = tmp_path / "pricelens.toml"
    path.write_text(
        '[browser]\nremote = "HTTP://Grid.Example:4444/wd/hub/"\n'
        'chromedriver = "/opt/cd/chromedriver"\nchrome = "/opt/chrome/chrome"\n'
    )
    config = load_config(path)
    assert config.remote_url == "http://grid.example:4444/wd/hub"
    assert (config.chromedriver, config.chrome) == ("/opt/cd/chromedriver", "/opt/chrome/chrome")
    path.write_text('[browser]\nchromedriver = "bin/chromedriver"\nchrome = "~/chrome/chrome"\n')
    config = load_config(path)
    assert config.chromedriver == str(tmp_path / "bin" / "chromedriver")  # beside the file
    assert config.chrome == str(Path.home() / "chrome" / "chrome")


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('[browser]\nremote = "grid:4444"\n', "browser.remote", "absolute http(s) URL"),
        ("[browser]\nremote = 4444\n", "browser.remote", "must be"),
        ('[browser]\nchromedriver = " "\n', "browser.chromedriver", "must name a file"),
        ('[browser]\ngrid = "http://x"\n', "browser.grid", "unknown key"),
    ],
)
def test_a_wrong_browser_setting_names_the_file_and_key(tmp_path, text, key, problem):
    (tmp_path / "pricelens.toml").write_text(text)
    result = invoke(tmp_path, "run", "--steps", "crawl")
    assert result.exit_code == 1
    assert f"{tmp_path / 'pricelens.toml'}: key '{key}'" in result.stderr
    assert problem in result.stderr


def test_a_pipeline_crawl_runs_on_the_configured_remote(mall, tmp_path):
    config = tmp_path / "pricelens.toml"
    spa = SPA.format(spa=mall.base_urls["spa"])
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: the crawl must try it
    config.write_text(f'{spa}[browser]\nremote = "{closed}"\n')
    failed = invoke(tmp_path, "run", "--steps", "crawl")
    assert failed.exit_code == 1
    assert f"the remote WebDriver at {closed} cannot be reached" in failed.stderr
    with chromedriver_on_loopback() as remote:
        config.write_text(f'{spa}[browser]\nremote = "{remote}"\n')
        done = invoke(tmp_path, "run", "--steps", "crawl")
    assert done.exit_code == 0, done.stderr
