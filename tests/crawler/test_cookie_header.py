"""Browser.cookie_header: the photos' Cookie header is read from the browser again only when
something says the cookies may have changed."""

from __future__ import annotations

import crawler.steps
from crawler.spec import load_builtin_spec
from crawler.steps import Browser


class CookieDriver:
    """Just enough of a WebDriver: a cookie jar that counts its reads."""

    def __init__(self):
        self.jar = {"session": "1"}
        self.reads = 0

    def get_cookies(self):
        self.reads += 1
        return [{"name": name, "value": value} for name, value in self.jar.items()]


def cookie_browser() -> tuple[Browser, CookieDriver]:
    driver = CookieDriver()
    return Browser(load_builtin_spec("classic"), driver), driver


def test_the_header_is_kept_while_the_page_shows_the_same_cookies():
    pages, driver = cookie_browser()
    assert [pages.cookie_header("seen=a") for _ in range(3)] == ["session=1"] * 3
    assert driver.reads == 1


def test_a_changed_document_cookie_means_a_new_read():
    pages, driver = cookie_browser()
    pages.cookie_header("seen=a")
    driver.jar["seen"] = "b"
    assert pages.cookie_header("seen=b") == "session=1; seen=b" and driver.reads == 2


def test_without_a_view_from_the_load_the_cookies_are_always_read():
    pages, driver = cookie_browser()
    pages.cookie_header(None)
    pages.cookie_header(None)
    assert driver.reads == 2


def test_a_header_older_than_the_limit_is_read_again(monkeypatch):
    pages, driver = cookie_browser()
    monkeypatch.setattr(crawler.steps, "COOKIES_MAX_AGE_S", -1.0)  # always too old
    pages.cookie_header("seen=a")
    pages.cookie_header("seen=a")
    assert driver.reads == 2
