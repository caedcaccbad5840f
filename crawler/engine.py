"""Walking a shop: open the start pages, follow its pagination, extract each page in one
round trip, fetch its photos, and hand every page to the caller as soon as it is done."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from selenium.common.exceptions import (
    ElementClickInterceptedException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from crawler.browser import cookies_header, user_agent
from crawler.errors import StepFailed
from crawler.extract import extract_items, to_offer
from crawler.images import HttpContext, download_images
from crawler.spec import ShopSpec
from db.records import Image, Offer

log = logging.getLogger(__name__)


@dataclass
class CrawledPage:
    """One page's results, written by the caller in one transaction."""

    number: int
    url: str
    offers: list[Offer]
    images: list[Image]
    shop_labels: dict[str, str]  # image sha256 -> shared label from the shop's category
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PageFailure:
    shop: str
    step: str
    url: str
    message: str
    html: str | None
    screenshot_png: bytes | None


@dataclass
class CrawlSummary:
    pages: int = 0
    offers: int = 0
    failures: int = 0


class ShopCrawler:
    """Crawls one shop in one browser session."""

    def __init__(
        self,
        spec: ShopSpec,
        driver,
        images_dir: Path,
        on_page: Callable[[CrawledPage], None],
        on_failure: Callable[[PageFailure], None],
    ):
        self.spec, self.driver, self.images_dir = spec, driver, images_dir
        self.on_page, self.on_failure = on_page, on_failure
        self.summary = CrawlSummary()
        self._seen_urls: set[str] = set()
        self._wait = WebDriverWait(driver, spec.politeness.wait_timeout)
        self._last_request = 0.0

    # -- the walk ---------------------------------------------------------------------------

    def crawl(self) -> CrawlSummary:
        for start in self.spec.start_urls:
            url = self.spec.absolute(start)
            walk = {
                "next_page": self._walk_next_pages,
                "load_more": self._walk_load_more,
                "none": self._walk_single,
            }[self.spec.pagination.strategy]
            try:
                self._goto(url)
                walk()
            except StepFailed as exc:
                # this start URL ends here; pages already handed over stay stored
                self._fail(exc.step, exc.url, str(exc))
        return self.summary

    def _walk_single(self) -> None:
        self._harvest()

    def _walk_next_pages(self) -> None:
        selector = self.spec.pagination.selector
        while self.summary.pages < self.spec.pagination.max_pages:
            self._harvest()
            links = self.driver.find_elements(By.CSS_SELECTOR, selector)
            if not links:
                return  # the last page has no "next"
            marker = self.driver.find_element(By.TAG_NAME, "html")
            self._polite()
            self._click(links[0], "next_page", selector)
            try:
                self._wait.until(ec.staleness_of(marker))
                self._wait_for_items()
            except TimeoutException:
                raise StepFailed(
                    self.spec.name,
                    "next_page",
                    self.driver.current_url,
                    "the next page did not load",
                    selector,
                ) from None

    def _walk_load_more(self) -> None:
        selector = self.spec.pagination.selector
        self._harvest()
        while self.summary.pages < self.spec.pagination.max_pages:
            buttons = [
                b for b in self.driver.find_elements(By.CSS_SELECTOR, selector) if b.is_displayed()
            ]
            if not buttons:
                return
            before = self._count_items()
            self._polite()
            self._click(buttons[0], "load_more", selector)
            try:
                self._wait.until(lambda d, n=before: self._count_items() > n)
            except TimeoutException:
                raise StepFailed(
                    self.spec.name,
                    "load_more",
                    self.driver.current_url,
                    f"no new items after clicking (still {before})",
                    selector,
                ) from None
            self._harvest()

    # -- steps ------------------------------------------------------------------------------

    def _goto(self, url: str) -> None:
        self._polite()
        try:
            self.driver.get(url)
            self._wait_for_items()
        except TimeoutException:
            raise StepFailed(
                self.spec.name, "wait_for", url, "no listing items appeared", self.spec.listing.item
            ) from None
        except WebDriverException as exc:
            raise StepFailed(self.spec.name, "goto", url, exc.msg or str(exc)) from exc

    def _wait_for_items(self) -> None:
        self._wait.until(lambda d: self._count_items() > 0)

    def _count_items(self) -> int:
        return self.driver.execute_script(
            "return document.querySelectorAll(arguments[0]).length", self.spec.listing.item
        )

    def _click(self, element, step: str, selector: str) -> None:
        try:
            element.click()
        except (ElementClickInterceptedException, StaleElementReferenceException):
            # an overlay or a re-render got in the way; a script click still follows the link
            self.driver.execute_script("arguments[0].click()", element)

    def _polite(self) -> None:
        delay = self.spec.politeness.delay_seconds
        if delay > 0:
            wait = self._last_request + delay - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # a rate limit for the shop's sake, not a wait for the page
        self._last_request = time.monotonic()

    # -- one page -----------------------------------------------------------------------------

    def _harvest(self) -> None:
        """Extract the current page and hand over the offers not yet seen in this crawl."""
        url = self.driver.current_url
        try:
            html = self.driver.page_source
            scraped_at = datetime.now(UTC)
            offers, problems = [], []
            for item in extract_items(html, self.spec):
                offer = to_offer(item, self.spec, url, scraped_at)
                if offer is None:
                    problems.append(f"{url}: an item without a title or link was skipped")
                elif offer.url not in self._seen_urls:
                    self._seen_urls.add(offer.url)
                    offers.append(offer)
            page = self._with_images(len(self._seen_urls), url, offers, problems)
        except WebDriverException as exc:
            self._fail("extract", url, exc.msg or str(exc))
            return
        self.summary.pages += 1
        self.summary.offers += len(page.offers)
        self.on_page(page)

    def _with_images(
        self, number: int, url: str, offers: list[Offer], problems: list[str]
    ) -> CrawledPage:
        http = HttpContext(
            user_agent(self.driver), cookies_header(self.driver), urlsplit(url).hostname
        )
        images, errors = download_images((o.image_url for o in offers), self.images_dir, http)
        problems.extend(errors.values())
        labelled, shop_labels = [], {}
        for offer in offers:
            image = images.get(offer.image_url)
            if image:
                offer = replace(offer, image_sha256=image.sha256)
                label = self.spec.label_for(offer.category_raw)
                if label:
                    shop_labels[image.sha256] = label
            labelled.append(offer)
        return CrawledPage(number, url, labelled, list(images.values()), shop_labels, problems)

    def _fail(self, step: str, url: str, message: str) -> None:
        self.summary.failures += 1
        html = screenshot = None
        try:
            html = self.driver.page_source
            screenshot = self.driver.get_screenshot_as_png()
        except WebDriverException:
            log.debug("no snapshot for failed page %s", url, exc_info=True)
        self.on_failure(PageFailure(self.spec.name, step, url, message, html, screenshot))


def crawl_shop(
    spec: ShopSpec,
    driver,
    images_dir: Path,
    on_page: Callable[[CrawledPage], None],
    on_failure: Callable[[PageFailure], None],
) -> CrawlSummary:
    """Crawl *spec*'s shop with *driver*, handing over each page as it is done."""
    return ShopCrawler(spec, driver, images_dir, on_page, on_failure).crawl()
