"""The robots.txt time-out is the shop's `politeness.robots_timeout` (5 s unless it says),
a crawl can cut it short (`CrawlOptions.robots_timeout`), and it reaches the fetch."""

from __future__ import annotations

from dataclasses import replace

import pytest

from crawler.errors import SpecError, StepFailed
from crawler.robots import RobotsPolicy
from crawler.spec import load_builtin_spec, load_spec
from crawler.steps import Browser
from pipeline.crawling import CrawlOptions, apply_overrides
from tests.crawler.test_robots import serve_site
from tests.crawler.test_spec import write_variant

POLITENESS = 'currency = "KRW"\n'


def with_politeness(tmp_path, lines: str):
    return write_variant(tmp_path, POLITENESS, f"{POLITENESS}\n[politeness]\n{lines}\n")


def test_the_default_is_five_seconds():
    assert load_builtin_spec("classic").politeness.robots_timeout == 5.0


@pytest.mark.parametrize(
    ("text", "seconds"), [("robots_timeout = 1.5", 1.5), ("robots_timeout = 2", 2.0)]
)
def test_a_shop_sets_its_own(tmp_path, text, seconds):
    spec = load_spec(with_politeness(tmp_path, text))
    assert spec.politeness.robots_timeout == seconds
    assert type(spec.politeness.robots_timeout) is float


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("robots_timeout = 0", "politeness.robots_timeout", "must be more than 0"),
        ("robots_timeout = -1.0", "politeness.robots_timeout", "must be more than 0"),
        ('robots_timeout = "5s"', "politeness.robots_timeout", "must be a float"),
        ("robots_timout = 1.0", "politeness.robots_timout", "unknown key"),
    ],
)
def test_a_bad_value_or_a_misspelt_key_names_the_file_and_key(tmp_path, text, key, problem):
    path = with_politeness(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: key '{key}'") and problem in message, message


def test_crawl_options_override_every_shop():
    spec = load_builtin_spec("classic")
    assert apply_overrides(spec, CrawlOptions(robots_timeout=0.5)).politeness.robots_timeout == 0.5
    assert apply_overrides(spec, CrawlOptions()).politeness.robots_timeout == 5.0


def test_the_shops_time_out_bounds_the_fetch_of_its_robots_txt():
    with serve_site() as site:
        site.hanging.add("/robots.txt")
        spec = load_builtin_spec("classic").with_base_url(site.base)
        spec = replace(spec, politeness=replace(spec.politeness, robots_timeout=0.2))
        # guard() asks robots.txt before the browser is used: no browser is needed here
        browser = Browser(spec, None, RobotsPolicy())
        with pytest.raises(StepFailed) as caught:
            browser.guard(site.url("/products?page=1"), "goto")
    assert caught.value.step == "robots"
    assert "timed out after 0.2 s" in str(caught.value) and "disallowed" in str(caught.value)
    assert site.robots_requests() == 1
