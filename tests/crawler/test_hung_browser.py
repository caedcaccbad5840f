"""A page whose script never ends holds its renderer, and every later command with it: the
crawler tells that from a slow page, restarts the browser, and gives up a page that hangs
it twice while the walk and the other shops go on."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
import urllib3
from selenium.common.exceptions import TimeoutException, UnexpectedAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.command import Command

from crawler.browser import (
    BrowserConfig,
    BrowserHung,
    BrowserSession,
    _HangCheck,
    processes_using,
    session_is_dead,
    use_page_load_timeout,
)
from crawler.engine import crawl_shop
from crawler.errors import SpecError
from crawler.spec import load_builtin_spec, load_spec
from demo.mall import MallSettings, run_mall
from pipeline.crawling import CrawlOptions, crawl_shops
from pipeline.settings import Home

pytestmark = pytest.mark.browser

QUICK_LOADS = BrowserConfig(page_load_timeout=2.0)


def test_a_hung_page_raises_browser_hung_and_a_slow_page_a_plain_time_out():
    settings = MallSettings(seed=5, products=20, shops=("classic",))
    with (
        run_mall(replace(settings, faults="hang=1")) as hanging,
        run_mall(replace(settings, faults="slow=1")) as slow,  # 1.5 s a response
        BrowserSession(BrowserConfig(page_load_timeout=1.0)) as session,
    ):
        with pytest.raises(TimeoutException) as timed_out:
            session.driver.get(slow.base_urls["classic"] + "/")
        assert not isinstance(timed_out.value, BrowserHung)
        assert session.driver.execute_script("return 1") == 1  # the browser is fine

        with pytest.raises(BrowserHung, match="stopped answering") as hung:
            session.driver.get(hanging.base_urls["classic"] + "/")
        assert session_is_dead(hung.value)
        with pytest.raises(BrowserHung):  # and so it stays: only a new browser goes on
            session.driver.execute_script("return 1")
        session.start()
        session.driver.get(hanging.base_urls["classic"] + "/robots.txt")  # not HTML: no hang
        assert session.driver.execute_script("return 1") == 1


# Set on the page the crawler is on once it hands over its first page: the next lookup of
# elements there starts a script that never ends, after that lookup has answered (a timer),
# or within it (the lookup itself never answers).
LOOP_AFTER_LOOKUP = """
const find = Document.prototype.querySelectorAll;
Document.prototype.querySelectorAll = function (...args) {
  setTimeout(() => { for (;;) {} }, 0);
  return find.apply(this, args);
};"""
LOOP_IN_LOOKUP = "Document.prototype.querySelectorAll = () => { for (;;) {} };"


@pytest.mark.parametrize(
    ("trap", "config", "why"),
    [
        (LOOP_AFTER_LOOKUP, QUICK_LOADS, "hung (BrowserHung)"),
        # chromedriver waits on such a lookup with no time-out of its own: the WebDriver
        # client's command time-out ends it
        (LOOP_IN_LOOKUP, replace(QUICK_LOADS, command_timeout=5.0), "hung (ReadTimeoutError)"),
    ],
    ids=["after-a-command", "inside-a-command"],
)
def test_a_browser_hung_mid_crawl_is_restarted_and_the_crawl_completes(
    mall, tmp_path, trap, config, why
):
    spec = load_builtin_spec("classic").with_base_url(mall.base_urls["classic"])
    spec = replace(spec, politeness=replace(spec.politeness, page_load_timeout=2.0))
    pages, failures = [], []
    with BrowserSession(config) as session:

        def on_page(page):
            pages.append(page)
            if len(pages) == 1:
                session.driver.execute_script(trap)

        summary = crawl_shop(
            spec, session.driver, tmp_path, on_page, failures.append, session=session
        )
        assert session.starts == 2
    found = [o.url for p in pages for o in p.offers]
    listed = mall.answer_key()["shops"]["classic"]["offers"]
    assert sorted(found) == sorted(o["url"] for o in listed)  # each once, none lost
    assert [f.step for f in failures] == ["session"]
    assert f"{why}; restarted it (1/3)" in failures[0].message
    assert failures[0].html is None  # no snapshot asked of a browser that answers nothing
    assert summary.offers == len(found)


def test_a_page_load_timeout_past_the_command_time_out_is_refused(tmp_path):
    path = tmp_path / "slow.toml"
    spec = (Path(__file__).parents[2] / "crawler/shops/classic.toml").read_text()
    path.write_text(spec + "\n[politeness]\npage_load_timeout = 91\n")
    with pytest.raises(SpecError, match=r"politeness\.page_load_timeout.*at most 90"):
        load_spec(path)


def test_a_page_that_hangs_the_browser_twice_is_skipped_and_the_other_shops_complete(tmp_path):
    home = Home(tmp_path / "home").create()
    options = CrawlOptions(sessions=1, page_load_timeout=2.0, backoff_seconds=0.05)
    with (
        run_mall(MallSettings(seed=5, products=20, shops=("classic",), faults="hang=1")) as bad,
        run_mall(MallSettings(seed=5, products=20, shops=("spa",))) as good,
    ):
        specs = [
            load_builtin_spec("classic").with_base_url(bad.base_urls["classic"]),
            load_builtin_spec("spa").with_base_url(good.base_urls["spa"]),
        ]
        expected = len(good.answer_key()["shops"]["spa"]["offers"])
        classic, spa = crawl_shops(home, specs, options)
    assert (spa.status, spa.offers) == ("ok", expected)
    assert classic.status == "failed" and classic.offers == 0
    rows = sqlite3.connect(home.database).execute(
        "SELECT message, html_path, screenshot_path FROM crawl_errors e "
        "JOIN crawl_runs r ON r.id = e.crawl_run_id "
        "JOIN shops s ON s.id = r.shop_id WHERE s.name = 'classic' ORDER BY e.id"
    )
    messages = [m for m, html, shot in rows if html is None and shot is None]  # never shown
    assert len(messages) == 3, messages
    assert "restarted it (1/3)" in messages[0]
    assert "restarted it (2/3); that page is skipped from now on" in messages[1]
    assert "killed or hung the browser twice; skipped" in messages[2]


def test_a_command_with_no_answer_is_not_sent_again_and_the_hung_browser_is_quit(mall):
    """urllib3 repeats a GET whose answer timed out three times: four command time-outs for
    a hung browser's `current_url`. Not here; and quitting it does not wait either."""
    with BrowserSession(replace(QUICK_LOADS, command_timeout=2.0)) as session:
        driver = session.driver
        driver.get(mall.base_urls["classic"] + "/")
        driver.execute_script(LOOP_IN_LOOKUP)
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            driver.find_elements(By.CSS_SELECTOR, "a")  # a POST: never repeated anyway
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):  # not MaxRetryError
            driver.current_url  # noqa: B018 (a GET)
        assert driver.hung
        profile = session.profile_dir
    assert processes_using(profile) == []


class _Answers:
    """A WebDriver connection whose page timed out waiting for the renderer; the hang probe
    (`return 1`) gets *probe*'s answer."""

    def __init__(self, probe: Exception | None):
        self.probe, self.sent = probe, []

    def execute(self, command, params=None):
        self.sent.append((command, params))
        if command == Command.SET_TIMEOUTS:
            return {}
        if command == Command.W3C_EXECUTE_SCRIPT and params["script"] == "return 1":
            if self.probe:
                raise self.probe
            return {"value": 1}
        raise TimeoutException("timeout: Timed out receiving message from renderer: 2.000")


class _Driver(_HangCheck, _Answers):
    def set_page_load_timeout(self, seconds):
        self.execute(Command.SET_TIMEOUTS, {"pageLoad": int(seconds * 1000)})


@pytest.mark.parametrize(
    ("probe", "hung"),
    [
        (None, False),  # a slow page: the renderer answers
        (UnexpectedAlertPresentException("alert open"), False),  # it answers, with an error
        (TimeoutException("timeout: Timed out receiving message from renderer: 5.000"), True),
    ],
)
def test_only_a_probe_that_times_out_makes_a_time_out_a_hang(probe, hung):
    driver = _Driver(probe)
    use_page_load_timeout(driver, 12.0)
    with pytest.raises(TimeoutException if not hung else BrowserHung) as raised:
        driver.execute(Command.GET, {"url": "http://shop.example/"})
    assert isinstance(raised.value, BrowserHung) == hung == driver.hung
    timeouts = [p["pageLoad"] for c, p in driver.sent if c == Command.SET_TIMEOUTS]
    assert timeouts == [12000, 5000, 12000]  # the probe's, then the page's back
