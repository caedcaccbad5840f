"""Browser steps with explicit waits: every failure is a `StepFailed` naming the shop, step,
selector and URL. No fixed sleeps: each wait is for a condition on the page."""

from __future__ import annotations

import time

from selenium.common.exceptions import (
    ElementClickInterceptedException,
    ElementNotInteractableException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from crawler.errors import StepFailed
from crawler.spec import ShopSpec, Step


class Browser:
    """One shop's view of a WebDriver session."""

    def __init__(self, spec: ShopSpec, driver):
        self.spec, self.driver = spec, driver
        self.wait = WebDriverWait(driver, spec.politeness.wait_timeout)
        self._last_request = 0.0

    def fail(self, step: str, detail: str, selector: str | None = None) -> StepFailed:
        return StepFailed(self.spec.name, step, self.current_url(), detail, selector)

    def current_url(self) -> str:
        try:
            return self.driver.current_url
        except WebDriverException:
            return "<browser gone>"

    def polite(self) -> None:
        delay = self.spec.politeness.delay_seconds
        if delay > 0:
            wait = self._last_request + delay - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # a rate limit for the shop's sake, not a wait for the page
        self._last_request = time.monotonic()

    # -- pages ------------------------------------------------------------------------------

    def goto(self, url: str, expect_items: bool = True) -> None:
        self.polite()
        try:
            self.driver.get(url)
        except TimeoutException:
            raise StepFailed(self.spec.name, "goto", url, "page load timed out") from None
        except WebDriverException as exc:
            raise StepFailed(self.spec.name, "goto", url, exc.msg or str(exc)) from exc
        self.run_steps()
        if expect_items:
            self.wait_for_items()

    def count_items(self) -> int:
        return self.driver.execute_script(
            "return document.querySelectorAll(arguments[0]).length", self.spec.listing.item
        )

    def wait_for_items(self) -> None:
        empty = self.spec.listing.empty
        try:
            self.wait.until(
                lambda d: (
                    self.count_items() > 0 or (empty and d.find_elements(By.CSS_SELECTOR, empty))
                )
            )
        except TimeoutException:
            raise self.fail(
                "wait_for", "no listing items appeared", self.spec.listing.item
            ) from None

    def follow(self, element, step: str, selector: str) -> None:
        """Click a link that loads a new document, and wait for that document's items."""
        marker = self.driver.find_element(By.TAG_NAME, "html")
        self.polite()
        self.click(element, step, selector)
        try:
            self.wait.until(ec.staleness_of(marker))
        except TimeoutException:
            raise self.fail(step, "the next page did not load", selector) from None
        self.run_steps()
        self.wait_for_items()

    def click(self, element, step: str, selector: str) -> None:
        try:
            element.click()
        except (ElementClickInterceptedException, ElementNotInteractableException):
            # an overlay or animation is in the way; a script click still reaches the element
            self.driver.execute_script("arguments[0].click()", element)
        except StaleElementReferenceException:
            fresh = self.driver.find_elements(By.CSS_SELECTOR, selector)
            if not fresh:
                raise self.fail(
                    step, "the element went away before it could be clicked", selector
                ) from None
            self.driver.execute_script("arguments[0].click()", fresh[0])

    def scroll_to_bottom(self) -> None:
        self.driver.execute_script("window.scrollTo(0, document.body.scrollHeight)")

    # -- spec steps -------------------------------------------------------------------------

    def run_steps(self) -> None:
        """The spec's steps, after every page load (a modal may come back on any page)."""
        for index, step in enumerate(self.spec.steps):
            name = f"steps[{index}]:{step.action}"
            if step.action == "dismiss":
                self._dismiss(step, name)
            elif step.action == "click":
                element = self._wait_present(step, name, clickable=True)
                self.click(element, name, step.selector)
            elif step.action == "wait_for":
                self._wait_present(step, name)

    def _wait_present(self, step: Step, name: str, clickable: bool = False):
        condition = ec.element_to_be_clickable if clickable else ec.presence_of_element_located
        try:
            return self.wait.until(condition((By.CSS_SELECTOR, step.selector)))
        except TimeoutException:
            raise self.fail(name, "element did not appear", step.selector) from None

    def _dismiss(self, step: Step, name: str) -> None:
        shown = [
            e for e in self.driver.find_elements(By.CSS_SELECTOR, step.selector) if e.is_displayed()
        ]
        if not shown:
            return  # no modal this time
        self.click(shown[0], name, step.selector)
        try:
            self.wait.until(ec.invisibility_of_element_located((By.CSS_SELECTOR, step.selector)))
        except TimeoutException:
            raise self.fail(name, "the modal did not go away", step.selector) from None
