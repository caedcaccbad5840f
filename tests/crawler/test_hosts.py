"""The shop's host: one value (base_url's, else the first absolute start URL's), compared as
the browser reports hosts (IDNA, lower case, no trailing dot or default port), for pages,
redirects and detail fetches. None of these needs a browser: the guard asks nothing of it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from crawler import unrendered
from crawler.addresses import normal_host, normal_hostname
from crawler.errors import StepFailed
from crawler.spec import load_builtin_spec, normal_base_url
from crawler.steps import Browser

KOREAN = "xn--hp4bo76a.xn--3e0b707e"  # 쇼핑.한국, as Chrome reports it


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://shop.example/a", "shop.example"),
        ("https://Shop.Example:443/a", "shop.example"),
        ("http://SHOP.example:80/a", "shop.example"),
        ("http://shop.example.:80/a", "shop.example"),  # a fully qualified name
        ("http://shop.example:443/a", "shop.example:443"),  # not http's default
        ("https://shop.example:8443/a", "shop.example:8443"),
        ("http://user:pw@shop.example/a", "shop.example"),
        ("https://쇼핑.한국/a", KOREAN),
        (f"https://{KOREAN}/a", KOREAN),
        ("https://ＳＨＯＰ.example/a", "shop.example"),  # full-width letters, as UTS 46 maps
        ("http://[::1]:8080/a", "[::1]:8080"),
        ("http://127.0.0.1:8101/a", "127.0.0.1:8101"),
        ("//shop.example/a", "shop.example"),
        ("/a", None),
        ("http:///a", None),
        ("http://shop.example:99999/a", None),  # a port out of range
        ("http://shop.example:x/a", None),
    ],
)
def test_hosts_compare_as_the_browser_reports_them(url, host):
    assert normal_host(url) == host


@pytest.mark.parametrize(
    ("name", "expected"),
    [("LocalHost", "localhost"), ("localhost.", "localhost"), ("쇼핑.한국", KOREAN), ("", None)],
)
def test_host_names_compare_as_the_browser_reports_them(name, expected):
    assert normal_hostname(name) == expected


def test_an_idn_base_url_is_written_as_the_browser_reports_it():
    assert normal_base_url("https://쇼핑.한국/") == f"https://{KOREAN}"
    assert normal_base_url("https://Shop.Example.:443/Path/") == "https://shop.example/Path"
    with pytest.raises(ValueError, match="not a valid host name"):
        normal_base_url("https://a..b\u0378.example")  # a code point IDNA refuses


def shop_without_base_url(start: str = "https://shop.example/products?page=1"):
    """The classic spec as a shop gives it with an absolute start URL and no base_url."""
    return replace(load_builtin_spec("classic"), base_url="", start_urls=(start,), setup=())


def guard(spec, url: str) -> str | None:
    """Why the browser refuses *url* (step next_page), or None when it would open it."""
    try:
        Browser(spec, driver=None).guard(url, "next_page")
    except StepFailed as exc:
        return str(exc)
    return None


OFF_THE_SHOP = [
    "https://evil.example/products?page=2",
    "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
    "https://shop.example.evil.example/",
    "https://shop.example:8443/products",  # another port is another site
]
ON_THE_SHOP = [
    "https://shop.example/products?page=2",
    "https://SHOP.example:443/products?page=2",
    "http://shop.example/products?page=2",  # the scheme may change (http -> https)
    "https://shop.example./products?page=2",
]


@pytest.mark.parametrize("base_url", ["https://shop.example", ""], ids=["base_url", "no-base"])
@pytest.mark.parametrize("url", OFF_THE_SHOP)
def test_links_off_the_shop_are_refused_with_or_without_a_base_url(base_url, url):
    spec = replace(shop_without_base_url(), base_url=base_url)
    assert spec.host == "shop.example"
    refused = guard(spec, url)
    assert refused and "leaves the shop's host shop.example: not followed" in refused


@pytest.mark.parametrize("base_url", ["https://shop.example", ""], ids=["base_url", "no-base"])
@pytest.mark.parametrize("url", ON_THE_SHOP)
def test_links_on_the_shop_are_followed_however_they_spell_its_host(base_url, url):
    spec = replace(shop_without_base_url(), base_url=base_url)
    assert guard(spec, url) is None


def test_the_first_absolute_start_url_names_the_shop_without_a_base_url():
    spec = replace(
        shop_without_base_url(), start_urls=("/relative", "https://Shop.Example:443/a", "x")
    )
    assert spec.host == "shop.example"


def test_a_shop_with_no_host_at_all_opens_nothing():
    """A spec that `unreachable` refuses (relative start URLs, no base_url) has no host:
    that means no URL is the shop's, never that any URL is."""
    spec = shop_without_base_url("/products?page=1")
    assert spec.host is None and spec.unreachable()
    refused = guard(spec, "https://shop.example/products?page=1")
    assert refused and "leaves the shop (it has no host): not followed" in refused


def test_an_idn_shop_follows_the_links_chrome_reports_in_punycode():
    spec = load_builtin_spec("classic").with_base_url("https://쇼핑.한국")
    assert spec.base_url == f"https://{KOREAN}" and spec.host == KOREAN
    assert guard(spec, f"https://{KOREAN}/products?page=2") is None
    assert guard(spec, "https://쇼핑.한국/products?page=3") is None
    assert "leaves the shop's host" in guard(spec, "https://쇼핑.중국/products")


@pytest.mark.parametrize("base_url", ["https://shop.example", ""], ids=["base_url", "no-base"])
@pytest.mark.parametrize(
    ("final_url", "problem"),
    [
        ("https://shop.example/p/1", None),
        ("https://SHOP.example:443/p/1", None),
        (None, None),  # not redirected: the link itself
        ("https://evil.example/p/1", "redirected off the shop's host"),
        ("http://169.254.169.254/p/1", "redirected off the shop's host"),
    ],
)
def test_a_fetched_detail_page_redirected_off_the_shop_is_not_used(base_url, final_url, problem):
    spec = replace(shop_without_base_url(), base_url=base_url)
    browser = Browser(spec, driver=None)
    found = unrendered._problem(browser, "https://shop.example/p/1", 200, final_url)
    assert (found if found is None else found.split(" to ")[0]) == problem
