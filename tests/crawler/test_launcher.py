"""Browsers started one ahead and quit in the background: fresh ones, none left behind."""

from __future__ import annotations

import logging

import pytest

from crawler import launcher as launcher_module
from crawler.browser import BrowserConfig, BrowserSession, processes_using
from crawler.errors import DriverUnavailable
from crawler.launcher import BrowserLauncher

pytestmark = pytest.mark.browser


def test_each_shop_gets_a_fresh_browser_and_none_outlives_the_launcher(mall):
    url = mall.base_urls["classic"] + "/products?page=1"
    profiles = []
    with BrowserLauncher(BrowserConfig(), needed=3) as launcher:
        for _ in range(3):
            with launcher.session() as session:
                profiles.append(session.profile_dir)
                session.driver.get(url)
                # a profile of its own: what one shop stored is not seen by the next
                assert session.driver.get_cookies() == []
                session.driver.add_cookie({"name": "seen", "value": "1"})
                assert [c["name"] for c in session.driver.get_cookies()] == ["seen"]
    assert len(set(profiles)) == 3
    assert all(processes_using(profile) == [] for profile in profiles)


def test_a_browser_that_failed_to_start_ahead_is_started_again_when_needed(monkeypatch):
    calls = []

    def flaky(config):
        calls.append(config)
        if len(calls) == 2:  # the one started ahead
            raise RuntimeError("chrome would not start this time")
        return real(config)

    real = launcher_module._started
    monkeypatch.setattr(launcher_module, "_started", flaky)
    with BrowserLauncher(BrowserConfig(), needed=2) as launcher:
        with launcher.session():
            pass
        with launcher.session() as second:
            assert second.driver.execute_script("return 1 + 1") == 2
    assert len(calls) == 3


def test_no_browser_is_started_ahead_on_a_remote_grid(monkeypatch):
    monkeypatch.setattr(launcher_module, "_started", lambda config: FakeSession())
    launcher = BrowserLauncher(BrowserConfig(remote_url="http://127.0.0.1:9"), needed=3)
    launcher.take()
    assert launcher._ahead is None  # a Grid would end a session left idle for a whole shop
    launcher.close()


class FakeSession:
    def close(self):
        pass


def test_a_browser_started_ahead_but_never_needed_is_quit():
    launcher = BrowserLauncher(BrowserConfig(), needed=2)
    first = launcher.take()
    profiles = [first.profile_dir]
    launcher.give_back(first)
    assert launcher._ahead is not None  # the second one is on its way
    ahead = launcher._ahead.result()
    profiles.append(ahead.profile_dir)
    assert processes_using(profiles[1])  # running, ready for the next shop
    launcher.close()  # the crawl ended early (stopped): the second is never taken
    assert ahead.driver is None
    assert all(processes_using(profile) == [] for profile in profiles)


def test_a_browser_that_cannot_start_raises_from_take_and_leaves_nothing(tmp_path):
    fake = tmp_path / "chromedriver"
    fake.write_text("not a program")
    with (
        BrowserLauncher(BrowserConfig(driver_path=str(fake)), needed=2) as launcher,
        pytest.raises(DriverUnavailable, match=str(fake)),
    ):
        launcher.take()
    assert launcher._ahead is None  # nothing started ahead of a browser that would not start


def test_a_driver_that_cuts_its_shutdown_request_short_is_stopped_without_a_warning(caplog):
    """chromedriver, exiting, may reset the connection of the /shutdown request it answers
    (ConnectionResetError out of Selenium's quit): the browser is gone, which is no fault."""
    session = BrowserSession(BrowserConfig())
    session.start()
    service, profile = session.driver.service, session.profile_dir
    shut_down = service.send_remote_shutdown_command

    def reset_as_it_exits():
        shut_down()
        raise ConnectionResetError(104, "Connection reset by peer")

    service.send_remote_shutdown_command = reset_as_it_exits
    session.close()
    assert service.process is None or service.process.poll() is not None
    assert processes_using(profile) == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
