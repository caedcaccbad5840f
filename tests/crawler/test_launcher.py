"""Browsers started one ahead and quit in the background: fresh ones, none left behind."""

from __future__ import annotations

import pytest

from crawler.browser import BrowserConfig, processes_using
from crawler.errors import DriverUnavailable
from crawler.launcher import BrowserLauncher

pytestmark = pytest.mark.browser


def test_each_shop_gets_a_fresh_browser_and_none_outlives_the_launcher():
    profiles = []
    with BrowserLauncher(BrowserConfig(), needed=3) as launcher:
        for _ in range(3):
            with launcher.session() as session:
                profiles.append(session.profile_dir)
                assert session.driver.execute_script("return 1 + 1") == 2
                # a profile of its own: what one shop stored is not seen by the next
                session.driver.get("data:text/html,<p>x")
                assert session.driver.get_cookies() == []
    assert len(set(profiles)) == 3
    assert all(processes_using(profile) == [] for profile in profiles)


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
