"""Browser.cookie_header: the photos' Cookie header is read from the browser again only when
something says the cookies may have changed; each request gets only the cookies a browser
would send it (Secure ones over https only, each under its path)."""

from __future__ import annotations

import pytest

import crawler.steps
from crawler.browser import Cookie, CookieHeader, cookies_header
from crawler.spec import load_builtin_spec
from crawler.steps import Browser

PAGE = "http://127.0.0.1:8101/products?page=1"


class CookieDriver:
    """Just enough of a WebDriver: a cookie jar that counts its reads."""

    def __init__(self, extra: list[dict] | None = None):
        self.jar = {"session": "1"}
        self.extra = extra or []  # cookies with attributes, as WebDriver reports them
        self.reads = 0

    def get_cookies(self):
        self.reads += 1
        plain = [{"name": name, "value": value} for name, value in self.jar.items()]
        return plain + self.extra


def cookie_browser() -> tuple[Browser, CookieDriver]:
    driver = CookieDriver()
    return Browser(load_builtin_spec("classic"), driver), driver


def test_the_header_is_kept_while_the_page_shows_the_same_cookies():
    pages, driver = cookie_browser()
    headers = [pages.cookie_header("seen=a").for_url(PAGE) for _ in range(3)]
    assert headers == ["session=1"] * 3
    assert driver.reads == 1


def test_a_changed_document_cookie_means_a_new_read():
    pages, driver = cookie_browser()
    pages.cookie_header("seen=a")
    driver.jar["seen"] = "b"
    assert pages.cookie_header("seen=b").for_url(PAGE) == "session=1; seen=b"
    assert driver.reads == 2


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


# -- where each cookie goes ----------------------------------------------------------------

WEBDRIVER_COOKIES = [  # what Chrome reports for https://shop.example/products
    {"name": "sid", "value": "S", "path": "/", "secure": True, "httpOnly": True},
    {"name": "lang", "value": "ko", "path": "/", "secure": False},
    {"name": "cart", "value": "7", "path": "/images", "secure": False},
    {"name": "odd", "value": "x", "path": "images", "secure": False},  # not a path: "/"
]


@pytest.mark.parametrize(
    ("url", "header"),
    [
        ("https://shop.example/images/1.png", "sid=S; lang=ko; cart=7; odd=x"),
        ("http://shop.example/images/1.png", "lang=ko; cart=7; odd=x"),  # no Secure over http
        ("HTTPS://shop.example/images", "sid=S; lang=ko; cart=7; odd=x"),
        ("https://shop.example/images-big/1.png", "sid=S; lang=ko; odd=x"),  # not under /images
        ("https://shop.example/photos/1.png", "sid=S; lang=ko; odd=x"),
        ("http://shop.example", "lang=ko; odd=x"),
    ],
)
def test_a_request_gets_the_cookies_a_browser_would_send(url, header):
    class Driver:
        def get_cookies(self):
            return WEBDRIVER_COOKIES

    assert cookies_header(Driver()).for_url(url) == header


def test_the_cookies_keep_their_attributes_through_the_browser():
    secure = {"name": "sid", "value": "S", "path": "/", "secure": True, "httpOnly": True}
    pages, _ = cookie_browser()
    pages.driver.extra = [secure]
    cookies = pages.cookie_header(None)
    assert cookies == CookieHeader((Cookie("session", "1"), Cookie("sid", "S", secure=True)))
    assert cookies.for_url("http://shop.example/a.png") == "session=1"
    assert cookies.for_url("https://shop.example/a.png") == "session=1; sid=S"


def test_no_cookies_is_no_header():
    assert not CookieHeader() and CookieHeader().for_url("https://shop.example/") == ""
    only_secure = CookieHeader((Cookie("sid", "S", secure=True),))
    assert only_secure and only_secure.for_url("http://shop.example/") == ""
