"""Driver resolution and browser sessions: clear errors offline, no processes left behind."""

from __future__ import annotations

import os
import signal

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException

from crawler.browser import (
    SCRIPT_MARGIN_S,
    BrowserConfig,
    BrowserSession,
    processes_using,
    resolve_driver,
    session_is_dead,
    use_page_load_timeout,
)
from crawler.errors import DriverUnavailable
from crawler.identity import USER_AGENT_SUFFIX
from tests.remote_chromedriver import chromedriver_on_loopback


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


@pytest.mark.parametrize(
    ("browser", "flavour"),
    [
        ("/usr/bin/chromium", "chromium"),
        ("/usr/bin/chromium-browser", "chromium"),
        ("/usr/bin/google-chrome-stable", "google-chrome"),
        ("/Applications/Google Chrome.app/Contents/MacOS/Google Chrome", "google-chrome"),
        (None, "chromium"),
    ],
)
def test_webdriver_manager_is_asked_for_the_driver_of_the_browser_found(
    tmp_path, monkeypatch, browser, flavour
):
    monkeypatch.setenv("PATH", str(tmp_path))  # no chromedriver: the download is next
    asked = []

    class Offline:  # the download itself needs the internet
        def __init__(self, chrome_type):
            asked.append(chrome_type)

        def install(self):
            raise ConnectionError("offline")

    monkeypatch.setattr("webdriver_manager.chrome.ChromeDriverManager", Offline)
    with pytest.raises(DriverUnavailable, match="offline"):
        resolve_driver(None, browser)
    assert asked == [flavour]


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


def test_a_remote_browser_names_pricelens_too_and_gets_no_local_profile():
    with (
        chromedriver_on_loopback() as remote,
        BrowserSession(BrowserConfig(remote_url=remote)) as session,
    ):
        driver = session.start()
        agent = driver.execute_script("return navigator.userAgent")
        assert agent.endswith(USER_AGENT_SUFFIX)  # as a local browser's does
        assert session.profile_dir is None  # a folder here means nothing on a Grid node


def test_a_remote_browser_that_takes_no_cdp_keeps_its_agent_and_says_so(caplog, monkeypatch):
    """A W3C remote that is not Chrome's own: the crawl goes on, the log says how it looks."""

    def refuse(self, cmd, cmd_args):
        raise WebDriverException("unknown command: goog/cdp/execute")

    monkeypatch.setattr(webdriver.Remote, "execute_cdp_cmd", refuse)
    with (
        chromedriver_on_loopback() as remote,
        BrowserSession(BrowserConfig(remote_url=remote)) as session,
    ):
        driver = session.start()
        assert USER_AGENT_SUFFIX not in driver.execute_script("return navigator.userAgent")
    assert f"{remote}: the remote browser takes no CDP commands" in caplog.text


@pytest.mark.browser
def test_scripts_get_the_page_load_timeout_and_a_margin_set_with_it():
    with BrowserSession(BrowserConfig(page_load_timeout=12.0)) as session:
        timeouts = session.driver.timeouts
        assert (timeouts.page_load, timeouts.script) == (12.0, 12.0 + SCRIPT_MARGIN_S)
        use_page_load_timeout(session.driver, 20.0)
        timeouts = session.driver.timeouts
        assert (timeouts.page_load, timeouts.script) == (20.0, 20.0 + SCRIPT_MARGIN_S)


@pytest.mark.browser
def test_the_current_tab_is_asked_once_and_known_again_after_tabs_change():
    with BrowserSession(BrowserConfig()) as session:
        driver = session.driver
        asked = []
        send = driver.command_executor.execute

        def counting(command, params):
            asked.append(command)
            return send(command, params)

        driver.command_executor.execute = counting
        first = driver.current_window_handle
        assert [driver.current_window_handle for _ in range(3)] == [first] * 3
        assert asked.count("w3cGetCurrentWindowHandle") == 1  # once per session and tab
        driver.switch_to.new_window("tab")
        second = driver.current_window_handle
        assert second != first and set(driver.window_handles) == {first, second}
        driver.close()
        driver.switch_to.window(first)
        assert driver.current_window_handle == first
        with pytest.raises(WebDriverException):
            driver.switch_to.window(second)  # closed: WebDriver still has the first tab
        assert driver.current_window_handle == first
        after = asked.count("w3cGetCurrentWindowHandle")
        assert driver.current_window_handle == first
        assert asked.count("w3cGetCurrentWindowHandle") == after  # known again
