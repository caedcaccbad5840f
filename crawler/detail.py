"""Detail pages: one listing item completed from its own page, in whichever browser session
loads it, and what a failed page leaves behind (its HTML and a screenshot)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from selenium.common.exceptions import WebDriverException

from crawler.addresses import normal_host
from crawler.browser import session_is_dead
from crawler.errors import StepFailed
from crawler.extract import RawItem, complete_from_detail
from crawler.steps import Browser

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PageFailure:
    shop: str
    step: str
    url: str
    message: str
    html: str | None
    screenshot_png: bytes | None


@dataclass(frozen=True)
class DetailResult:
    """An item completed from its detail page, or as the listing showed it plus the failure."""

    link: str
    item: RawItem
    failure: PageFailure | None = None


DetailWork = Callable[[str, RawItem], DetailResult]


def snapshot(driver, host: str | None) -> tuple[str | None, bytes | None]:
    """The current page's HTML and screenshot, for the record of a failure; nothing when the
    browser shows a page off the shop's *host* (a redirect elsewhere, say to a cloud's
    metadata address): the crawl never keeps another site's page."""
    html = screenshot = None
    try:
        shown = driver.current_url
        if urlsplit(shown).scheme in ("http", "https") and normal_host(shown) != host:
            log.info("no snapshot of %s: not on the shop's host %s", shown, host)
            return None, None
        html = driver.page_source
        screenshot = driver.get_screenshot_as_png()
    except Exception:  # a dead browser has nothing to show
        log.debug("no snapshot of the failed page", exc_info=True)
    return html, screenshot


def fetch_detail(browser: Browser, link: str, item: RawItem) -> DetailResult:
    """Load *link* in *browser*'s current tab and complete *item* from it. A page that fails
    keeps what the listing showed (stored without a price) and carries its snapshot; only a
    dead browser raises."""
    spec, driver = browser.spec, browser.driver
    try:
        browser.load(link, "open_detail")
        return DetailResult(link, complete_from_detail(item, driver.page_source, spec, link))
    except (StepFailed, WebDriverException) as exc:
        if session_is_dead(exc):
            raise
        message = exc.msg if isinstance(exc, WebDriverException) else str(exc)
        if browser.suspects.skips(link):  # skipped, never shown: the tab shows another page
            return failed_detail(spec.name, link, item, message)
        return failed_detail(spec.name, link, item, message, *snapshot(driver, spec.host))


def failed_detail(
    shop: str,
    link: str,
    item: RawItem,
    problem: str,
    html: str | None = None,
    screenshot: bytes | None = None,
) -> DetailResult:
    """*item* as the listing showed it, with the failure of its detail page."""
    problem = problem.removeprefix(f"{shop}: ")
    where = "" if link in problem else f" at {link}"
    message = f"{shop}: detail page failed{where}: {problem}"
    return DetailResult(
        link, item, PageFailure(shop, "open_detail", link, message, html, screenshot)
    )
