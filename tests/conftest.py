"""Shared fixtures: the real demo mall on free loopback ports, a real headless Chromium."""

from __future__ import annotations

import pytest

from crawler.browser import browser_session
from demo.mall import MallSettings, run_mall

SMALL_MALL = MallSettings(seed=11, products=60)


@pytest.fixture(scope="session")
def mall():
    with run_mall(SMALL_MALL) as running:
        yield running


@pytest.fixture(scope="session")
def browser():
    with browser_session() as driver:
        yield driver


@pytest.fixture
def small_window(browser):
    """The shared browser with a window too short to show a lazy page's next batch (or
    photos) before it is scrolled; its size is restored afterwards."""
    size = browser.get_window_size()
    browser.set_window_size(800, 600)
    yield browser
    browser.set_window_size(size["width"], size["height"])
