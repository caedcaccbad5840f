"""Browser steps with explicit waits: every failure is a `StepFailed` naming the shop, step,
selector and URL. No fixed sleeps: each wait is for a condition on the page."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter
from typing import Protocol
from urllib.parse import urldefrag, urlsplit

from selenium.common.exceptions import (
    ElementClickInterceptedException,
    ElementNotInteractableException,
    InvalidElementStateException,
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
    UnexpectedTagNameException,
    WebDriverException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from crawler.addresses import normal_host
from crawler.browser import (
    CookieHeader,
    cookies_header,
    evaluate,
    navigation_error,
    read_network_log,
    session_is_dead,
    use_page_load_timeout,
)
from crawler.errors import StepFailed
from crawler.spec import ShopSpec, Step

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {429, 500, 502, 503, 504}
POLL_S = 0.05  # how often an explicit wait looks at the page
STALE_TRIES = 3  # a step whose element the page keeps replacing fails after this many
COOKIES_MAX_AGE_S = 30.0  # the longest the photos' Cookie header is used without a re-read
# The main document's URL and HTTP status (Chrome 109+; an error page's URL is chrome-error:),
# how many listing items it already shows, so a ready page costs no extra wait, and whether
# an earlier load already saw this document: a navigation the browser dropped (a redirect to
# javascript:) leaves the old page in place. Documents are stamped with an expando property.
_NAVIGATION_STATUS = """
const nav = performance.getEntriesByType('navigation')[0];
const seen = document.__pricelensSeen === true;
document.__pricelensSeen = true;
return [document.URL, nav ? nav.responseStatus : null,
        document.querySelectorAll(arguments[0]).length, seen];"""


# Where clicking arguments[0] leads, when the page says: a link's URL, or its form's action
# with the query a GET submission sends (the clicked button's name and value included).
_NAVIGATION_TARGET = """
const element = arguments[0];
if (typeof element.href === 'string' && element.href) return element.href;
const form = element.form;
if (!form) return null;
const target = new URL(form.action, document.baseURI);
if ((form.method || 'get').toLowerCase() === 'get') {
  const data = new FormData(form);
  if (element.name) data.append(element.name, element.value);
  target.search = new URLSearchParams(data).toString();
}
return target.href;"""


@functools.cache
def _status_and_read(reader: str) -> str:
    """The load check and, when the page already shows items, *reader* (a script the crawl
    reads a listing with, taking arguments[1]'s items as its arguments): one round trip for
    both. A reader that throws reads nothing here; the crawl then reads as usual."""
    return (
        f"const status = (function () {{{_NAVIGATION_STATUS}\n}}).apply(null, [arguments[0]]);\n"
        "let read = null;\n"
        "if (status[2] > 0 && !status[3] && !status[0].startsWith('chrome-error:')) {\n"
        f"  try {{ read = (function () {{{reader}\n}}).apply(null, arguments[1]); }}\n"
        "  catch (e) { read = null; }\n"
        "}\n"
        "return [status, read];"
    )


def opens_by_url(href: str | None) -> bool:
    """Whether a link is followed by opening its URL rather than clicked: "#..." may be a
    script's or the same page, and a control without a URL can only be clicked."""
    return bool(href) and "#" not in href


class RobotsCheck(Protocol):
    def why_not(self, url: str, timeout: float | None = None) -> str | None:
        """Why *url* may not be fetched, or None; *timeout* bounds fetching robots.txt."""
        ...

    def crawl_delay(self, url: str, timeout: float | None = None) -> float | None:
        """The site's Crawl-delay in seconds, or None."""
        ...


MAX_CRAWL_DELAY = 60.0  # a longer Crawl-delay is held to this, so a crawl still ends


class Pacer:
    """At least *delay* seconds between the starts of requests to one shop, shared by every
    session that works on it, so more sessions never make a shop's crawl less polite."""

    def __init__(self, delay: float):
        self.delay = delay
        self._lock = threading.Lock()
        self._next = 0.0

    def at_least(self, delay: float) -> None:
        """Never less than *delay* between requests from now on (a robots.txt Crawl-delay)."""
        with self._lock:
            self.delay = max(self.delay, delay)

    def wait(self) -> None:
        if self.delay <= 0:
            return
        with self._lock:  # reserve the next slot, then wait for it outside the lock
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.delay
        if start > now:
            time.sleep(start - now)  # a rate limit for the shop's sake, not a wait for the page


class Suspects:
    """Pages that killed or hung a browser as it loaded them, whichever session of the crawl
    loaded them: one that did so twice is not opened again (a page that does it every time
    would use up every restart)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._deaths: Counter[str] = Counter()

    def died_at(self, url: str) -> bool:
        """Count a browser's death while loading *url*; whether it is skipped from now on."""
        with self._lock:
            self._deaths[url] += 1
        return self.skips(url)

    def skips(self, url: str) -> bool:
        return self._deaths.get(url, 0) >= 2

    @property
    def avoid(self) -> set[str]:
        """The pages skipped from now on."""
        with self._lock:
            return {url for url, deaths in self._deaths.items() if deaths >= 2}


class Browser:
    """One shop's view of a WebDriver session."""

    def __init__(
        self,
        spec: ShopSpec,
        driver,
        robots: RobotsCheck | None = None,
        pacer: Pacer | None = None,
        suspects: Suspects | None = None,
    ):
        self.spec, self.driver, self.robots = spec, driver, robots
        # Selenium's default poll is 0.5 s: every page turn, "load more" and scroll round
        # would idle up to that long after the page was ready. A poll is one cheap round trip.
        self.wait = WebDriverWait(driver, spec.politeness.wait_timeout, poll_frequency=POLL_S)
        self.pacer = pacer or Pacer(spec.politeness.delay_seconds)
        self.loads = 0  # page loads in this browser, for recycling
        # the URL being loaded, until its load and load check are done: the browser dying
        # then is that page's doing (after it, on a click or in another tab, no page is blamed)
        self.loading: str | None = None
        self.suspects = suspects or Suspects()  # pages not opened again: they kill browsers
        self._items_at_load = 0  # listing items the last loaded page showed when checked
        # a listing read (script, arguments) done in the load check's round trip for pages
        # without steps; what it read waits in _read_at_load for take_read_at_load
        self.reader: tuple[str, list] | None = None
        self._read_at_load: tuple[int, list, object] | None = None
        # (cookies, document.cookie as the page showed it, monotonic time read)
        self._cookies: tuple[CookieHeader, str | None, float] | None = None
        # the shop's host (ShopSpec.host); None, for a spec without one, refuses every URL
        self.host = spec.host
        # a new browser (a start, restart or recycle) has none of the setup's cookies yet
        self.setup_pending = bool(spec.setup)

    def fail(self, step: str, detail: str, selector: str | None = None) -> StepFailed:
        return StepFailed(self.spec.name, step, self.current_url(), detail, selector)

    def current_url(self) -> str:
        try:
            return self.driver.current_url
        except WebDriverException:
            return "<browser gone>"

    def polite(self) -> None:
        self.pacer.wait()

    # -- pages ------------------------------------------------------------------------------

    def goto(self, url: str, expect_items: bool = True, step: str = "goto") -> None:
        """Open a listing page and wait for its items. A page that loads but never shows
        them (a body cut short, a script that failed) is loaded again, with backoff."""
        retries = self.spec.politeness.retries
        for attempt in range(retries + 1):
            self.load(url, step, read=expect_items)
            self.run_steps()
            if not expect_items or (self._items_at_load and not self.spec.steps):
                return  # (steps may change the listing: then wait for it as it is after them)
            try:
                self.wait_for_items()
                return
            except StepFailed:
                if attempt == retries:
                    raise
                log.info("%s: no items at %s; loading it again", self.spec.name, url)
                self.backoff(attempt)

    def load(self, url: str, step: str, read: bool = False) -> None:
        """Open *url*; retry with exponential backoff on 5xx/429, time-outs and network
        errors (dropped connections, truncated bodies, a name that does not resolve, a
        refused connection). Other 4xx fail at once. The shop's setup runs first, once."""
        if self.suspects.skips(url):
            raise StepFailed(
                self.spec.name, step, url, "this page killed or hung the browser twice; skipped"
            )
        if self.setup_pending:
            self.run_setup()
        self.guard(url, step)
        self.loading = url
        retries = self.spec.politeness.retries
        for attempt in range(retries + 1):
            self.polite()
            self.loads += 1
            try:
                use_page_load_timeout(self.driver, self.spec.politeness.page_load_timeout)
                self.driver.get(url)
                problem = self._load_problem(url, step, read, loaded=True)
            except TimeoutException:
                problem = "page load timed out"
            except WebDriverException as exc:  # chromedriver raises for some network errors
                code = navigation_error(exc)
                if code is None:
                    if not session_is_dead(exc):
                        self.loading = None
                    raise
                problem = f"network error ({code})"
            if problem is None:
                self.loading = None
                return
            if attempt < retries:
                log.info("%s: %s at %s; retry %d", self.spec.name, problem, url, attempt + 1)
                self.backoff(attempt)
        self.loading = None
        raise StepFailed(self.spec.name, step, url, f"{problem} (after {retries + 1} attempts)")

    def take_read_at_load(self, arguments: list) -> object | None:
        """What the reader read in the last load check, if it read this very page (no load,
        click or step since) with these *arguments*; else None. Taken once."""
        found, self._read_at_load = self._read_at_load, None
        if found and found[0] == self.loads and found[1] == arguments:
            return found[2]
        return None

    def _load_problem(
        self, url: str, step: str, read: bool = False, loaded: bool = False
    ) -> str | None:
        """Why the page just opened is not usable, or None. *loaded*: ``driver.get`` has
        returned, so the check may skip executeScript's wait for a navigation (evaluate);
        after a click it may not. A read done here through evaluate carries no elements."""
        self._read_at_load = None
        item = self.spec.listing.item
        run = functools.partial(evaluate, self.driver) if loaded else self.driver.execute_script
        if read and self.reader and not self.spec.steps:
            script, arguments = self.reader
            checked, taken = run(_status_and_read(script), item, arguments)
        else:
            checked, taken = run(_NAVIGATION_STATUS, item), None
        location, status, self._items_at_load, seen = checked
        if seen:
            if urldefrag(location)[0] != urldefrag(url)[0]:  # not a "#..." route change
                raise StepFailed(
                    self.spec.name, step, url, f"the browser did not leave {location}: not loaded"
                )
            self._items_at_load = 0  # those are the last route's: wait for the listing
        if location.startswith("chrome-error:"):
            return "network error (connection dropped or response cut short)"
        network = read_network_log(self.driver)
        if network is None or network.sets_cookies:
            self._cookies = None  # a response set a cookie, or nothing says: read them again
        if network and network.cut_short:
            return f"network error ({network.cut_short}): the page came incomplete"
        if not self.on_shop(location):  # a redirect took us away
            raise StepFailed(
                self.spec.name, step, url, f"redirected off the shop's host to {location}: not used"
            )
        if status in RETRYABLE_STATUS:
            return f"HTTP {status}"
        if status and status >= 400:
            raise StepFailed(self.spec.name, step, url, f"HTTP {status}")
        if taken is not None:
            self._read_at_load = (self.loads, arguments, taken)
        return None

    def on_shop(self, url: str) -> bool:
        """Whether *url* is on the shop's host, however it spells it (crawler.addresses)."""
        return self.host is not None and normal_host(url) == self.host

    def cookie_header(self, script_view: str | None = None) -> CookieHeader:
        """The browser's cookies for photo requests' Cookie headers. *script_view* is what
        document.cookie showed when the page was read in its load check (None otherwise).
        The last header is used again while nothing says the cookies changed: no load
        since logged a Set-Cookie, the page's scripts show the cookies they showed then, and
        it is under COOKIES_MAX_AGE_S old (cookies expire); else they are read again, a
        round trip (6 ms a page on a 2-core machine)."""
        cached, now = self._cookies, time.monotonic()
        if (
            cached is None
            or script_view is None
            or cached[1] != script_view
            or now - cached[2] > COOKIES_MAX_AGE_S
        ):
            cached = self._cookies = (cookies_header(self.driver), script_view, now)
        return cached[0]

    def backoff(self, attempt: int) -> None:
        # the shop asked us to slow down (or failed): back off before asking again
        time.sleep(self.spec.politeness.backoff_seconds * 2**attempt)

    def guard(self, url: str, step: str) -> None:
        """Refuse URLs off the shop's host, non-http(s) URLs and what robots.txt disallows."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise StepFailed(self.spec.name, step, url, "not an http(s) URL: not followed")
        if not self.on_shop(url):
            where = f"the shop's host {self.host}" if self.host else "the shop (it has no host)"
            raise StepFailed(self.spec.name, step, url, f"leaves {where}: not followed")
        timeout = self.spec.politeness.robots_timeout
        reason = self.robots.why_not(url, timeout) if self.robots else None
        if reason:
            raise StepFailed(self.spec.name, "robots", url, reason)
        delay = self.robots.crawl_delay(url, timeout) if self.robots else None
        held = min(delay or 0.0, MAX_CRAWL_DELAY)
        if held > self.pacer.delay:  # once per shop: later pages find it already held
            if delay > MAX_CRAWL_DELAY:
                log.warning("%s: Crawl-delay %g s held to %g s", url, delay, MAX_CRAWL_DELAY)
            self.pacer.at_least(held)

    def count_items(self) -> int:
        return self.driver.execute_script(
            "return document.querySelectorAll(arguments[0]).length", self.spec.listing.item
        )

    _ITEMS_AND_MARKER = """
const [item, marker] = arguments;
return [document.querySelectorAll(item).length,
        Boolean(marker) && document.querySelector(marker) !== null];"""

    def items_and(self, marker: str | None) -> tuple[int, bool]:
        """How many listing items the page shows, and whether it shows *marker* (an end or
        "no results" marker; None: no), in one round trip: a wait polls both."""
        count, shown = self.driver.execute_script(
            self._ITEMS_AND_MARKER, self.spec.listing.item, marker
        )
        return count, shown

    def wait_for_items(self) -> None:
        empty = self.spec.listing.empty

        def listed(_) -> bool:
            count, says_empty = self.items_and(empty)
            return count > 0 or says_empty

        try:
            self.wait.until(listed)
        except TimeoutException:
            raise self.fail(
                "wait_for", "no listing items appeared", self.spec.listing.item
            ) from None

    def follow(self, element, step: str, selector: str, href: str | None = None) -> None:
        """Follow a link to a new document and wait for that document's items. A link with
        a URL (*href*, when the caller has read it) is opened, as the browser would on a
        click; a control without one (a script's button, "#") is clicked. A failed load is
        retried by opening the link's URL."""
        href = href or element.get_attribute("href")
        if href:
            self.guard(href, step)
        if opens_by_url(href):
            # a click costs chromedriver ~30 ms more than opening its URL (scrolling the
            # link into view, mouse events, then the same wait for the load)
            self.goto(href, step=step)
            return
        self._leave_page(
            lambda: self.click(element, step, selector),
            step,
            selector,
            "the next page did not load",
        )
        target = href or self.current_url()
        try:
            problem = self._load_problem(target, step, read=True)
        except TimeoutException:
            problem = "page load timed out"
        if problem is None:
            self.run_steps()
            try:
                self.wait_for_items()
                return
            except StepFailed:
                problem = "no listing items appeared"
        log.info("%s: %s at %s; opening it again", self.spec.name, problem, target)
        self.backoff(0)
        self.goto(target, step=step)

    def _leave_page(self, action, step: str, selector: str | None, unmoved: str) -> None:
        """Do *action*, which opens another document (a page load: paced and counted), and
        wait until this one is gone; *unmoved* is the error when it stays."""
        marker = self.driver.find_element(By.TAG_NAME, "html")
        self.polite()
        self.loads += 1
        action()
        try:
            self.wait.until(ec.staleness_of(marker))
        except TimeoutException:
            raise self.fail(step, unmoved, selector) from None

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
        # up a little first, so the page sees a scroll even when it is already at the bottom
        self.driver.execute_script(
            "window.scrollBy(0, -Math.min(200, window.scrollY));"
            "window.scrollTo(0, document.body.scrollHeight)"
        )

    # -- spec steps -------------------------------------------------------------------------

    def run_steps(self) -> None:
        """The spec's steps, after every page load (a modal may come back on any page)."""
        for index, step in enumerate(self.spec.steps):
            self._run_step(step, f"{step.where or f'steps[{index}]'}:{step.action}")

    def run_setup(self) -> None:
        """The spec's setup (choose a region, sign in, sort), once in this browser before its
        first page; tried again before the next page if a step fails."""
        self.setup_pending = False
        try:
            for index, step in enumerate(self.spec.setup):
                self._run_step(step, f"{step.where or f'setup[{index}]'}:{step.action}")
        except BaseException:
            self.setup_pending = True
            raise

    def _run_step(self, step: Step, name: str) -> None:
        """One step; an element the page replaced between being found and being used (a
        re-render) is found again, up to STALE_TRIES times. Safe to repeat: a stale element
        takes no action, and a navigating step's own action happens at most once."""
        for _ in range(STALE_TRIES):
            try:
                self._run_step_once(step, name)
                return
            except StaleElementReferenceException:
                log.info("%s: %s was replaced while in use; finding it again", name, step.selector)
        raise self.fail(
            name, f"the element was replaced {STALE_TRIES} times while in use", step.selector
        )

    def _run_step_once(self, step: Step, name: str) -> None:
        if step.action == "goto":
            self.load(self.spec.absolute(step.url), name)
            self.run_steps()
        elif step.action == "dismiss":
            self._dismiss(step, name)
        elif step.action == "click":
            element = self._wait_present(step, name, clickable=True)
            self._maybe_navigating(
                step, name, element, lambda: self.click(element, name, step.selector)
            )
        elif step.action == "wait_for":
            self._wait_present(step, name)
        elif step.action == "scroll":
            element = self._wait_present(step, name)
            self.driver.execute_script("arguments[0].scrollIntoView()", element)
        elif step.action == "select":
            element = self._wait_present(step, name)
            self._maybe_navigating(step, name, element, lambda: self._select(element, step, name))
        elif step.action == "type":
            self._type(self._wait_present(step, name, clickable=True), step, name)

    def _maybe_navigating(self, step: Step, name: str, element, action) -> None:
        """Do *action* on *element*; for a step that *navigates*, wait for the page it opens,
        check it as a load, and run the page steps on it. Not retried: it may have submitted
        a form. The page it will open (a link's, a GET form's URL) must pass the guard
        first; where only a script knows it, the page it opened must before it is used."""
        if not step.navigates:
            action()
            return
        # a select's script picks its page from the new choice: known only once there
        clicked = step.action == "click"
        target = self.driver.execute_script(_NAVIGATION_TARGET, element) if clicked else None
        if target:
            self.guard(target, name)
        self._leave_page(action, name, step.selector, "no new page opened")
        try:
            landed = self.current_url()
            self.guard(landed, name)
            problem = self._load_problem(landed, name)
        except TimeoutException:
            problem = "page load timed out"
        if problem is not None:
            raise self.fail(name, problem, step.selector)
        self.run_steps()

    def _type(self, element, step: Step, name: str) -> None:
        try:
            element.clear()
            element.send_keys(step.value)
        except InvalidElementStateException:
            tag = element.tag_name
            raise self.fail(name, f"cannot type into a <{tag}>", step.selector) from None

    def _select(self, element, step: Step, name: str) -> None:
        try:
            choice = Select(element)
        except UnexpectedTagNameException:
            tag = element.tag_name
            raise self.fail(name, f"not a <select> but a <{tag}>", step.selector) from None
        try:
            choice.select_by_value(step.value)
        except NoSuchElementException:
            try:
                choice.select_by_visible_text(step.value)
            except NoSuchElementException:
                raise self.fail(name, f"no option {step.value!r}", step.selector) from None

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
