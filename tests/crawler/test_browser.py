"""Driver resolution and browser sessions: clear errors offline, no processes left behind."""

from __future__ import annotations

import os
import signal

import pytest

from crawler.browser import (
    BrowserConfig,
    BrowserSession,
    processes_using,
    resolve_driver,
    session_is_dead,
)
from crawler.errors import DriverUnavailable


def test_a_configured_driver_that_is_not_executable_is_named(tmp_path):
    fake = tmp_path / "chromedriver"
    fake.write_text("not a program")
    with pytest.raises(DriverUnavailable, match=str(fake)):
        resolve_driver(str(fake))


def test_the_driver_on_path_comes_before_any_download(tmp_path, monkeypatch):
    fake = tmp_path / "chromedriver"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert resolve_driver() == str(fake)


def test_offline_without_a_driver_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no chromedriver anywhere
    # the real webdriver-manager code path, pointed at a closed loopback port: offline
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.setenv("WDM_LOCAL", "1")
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(DriverUnavailable) as caught:
        resolve_driver()
    message = str(caught.value)
    assert "chromium-driver" in message and "PATH" in message and "webdriver-manager" in message


@pytest.mark.browser
def test_a_session_leaves_no_browser_processes_even_when_chrome_is_killed():
    session = BrowserSession(BrowserConfig())
    driver = session.start()
    profile = session.profile_dir
    assert processes_using(profile)  # chromium and its helpers run with this profile
    driver.get("about:blank")
    for pid in processes_using(profile):
        os.kill(pid, signal.SIGKILL)  # a crash, as abrupt as it gets
    with pytest.raises(Exception) as caught:
        driver.get("about:blank")
    assert session_is_dead(caught.value)
    session.start()  # a fresh browser replaces the dead one
    fresh = session.profile_dir
    assert session.driver.execute_script("return 1 + 1") == 2
    session.close()
    assert processes_using(profile) == [] and processes_using(fresh) == []
