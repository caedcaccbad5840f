"""Walking a shop: open the start pages, follow its menu and pagination, extract each page in
one round trip, complete items from detail pages, fetch photos, and hand every page to the
caller as soon as it is done."""

from __future__ import annotations

import contextlib
import logging
import queue
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from selenium.common.exceptions import (
    NoSuchWindowException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.common.by import By

from crawler.addresses import normal_hostname
from crawler.browser import IS_DISPLAYED_JS, BrowserSession, session_is_dead, user_agent
from crawler.detail import DetailResult, PageFailure, fetch_detail, snapshot
from crawler.errors import CrawlStopped, SpecError, StepFailed
from crawler.extract import (
    RawItem,
    absolute_fields,
    extract_fragments,
    list_price_problem,
    safe_http_url,
    to_offer,
    with_listing_json_ld,
)
from crawler.images import HttpContext, KnownPhotos, PhotoFetcher, PhotoResults
from crawler.spec import ShopSpec
from crawler.steps import STALE_TRIES, Browser, Pacer, RobotsCheck, Suspects, opens_by_url
from crawler.unrendered import fetch_details
from db.records import Image, Offer, PhotoSource

if TYPE_CHECKING:
    from crawler.sharing import WorkBoard

log = logging.getLogger(__name__)

MAX_RESTARTS = 3  # browser restarts per shop crawl before giving the shop up
STALE_SCROLL_ROUNDS = 3  # infinite scroll that only repeats itself this often has ended
# One round trip per harvest: the page's URL and the HTML of the listing items this document
# has not handed over as they are now. Taken elements are remembered (in an expando property
# of the document named for this crawl, invisible to the page and to a later crawl in the
# same browser) and a MutationObserver marks those changed since (a placeholder
# filled in, an element a list re-uses), so a "load more" listing is neither serialised nor
# sent again after every click; links already seen are dropped in Python. The pagination
# control (next link, load-more button, end marker) comes in the same trip: its first match,
# that one's URL, and the first one shown; so do the page's cookies as scripts see them and,
# with [listing] json_ld, its JSON-LD blocks.
_TAKE_ITEMS = """
const [selector, controlSelector, crawl, jsonLd] = arguments;
let watch = document[crawl];
if (!watch) {
  watch = document[crawl] = {changed: new Set(), taken: new WeakSet()};
  watch.observer = new MutationObserver(records => note(records));
  watch.observer.observe(document.documentElement,
                         {subtree: true, childList: true, characterData: true, attributes: true});
}
function note(records) {
  for (const record of records) {
    const node = record.target.nodeType === 1 ? record.target : record.target.parentElement;
    const item = node && node.closest(selector);
    if (item) watch.changed.add(item);
  }
}
note(watch.observer.takeRecords());  // changes not delivered yet
const fresh = [];
for (const element of document.querySelectorAll(selector)) {
  if (!watch.taken.has(element) || watch.changed.has(element)) {
    watch.taken.add(element);
    fresh.push(element.outerHTML);
  }
}
watch.changed.clear();
let control = null;
try {
  const controls = controlSelector ? document.querySelectorAll(controlSelector) : [];
  if (controls.length) {
    // as Selenium's get_attribute: the resolved link when the attribute has a value
    const raw = controls[0].getAttribute('href');
    const href = raw && typeof controls[0].href === 'string' ? controls[0].href : raw;
    const shown = Array.from(controls).find(e => {
      const box = e.getBoundingClientRect();
      return box.width > 0 && box.height > 0 &&
             e.checkVisibility({opacityProperty: true, visibilityProperty: true});
    });
    control = [controls[0], href, shown || null];
  }
} catch (e) {
  control = false;  // a selector only Python's cssselect knows: WebDriver reads it instead
}
// the page's JSON-LD blocks (their texts), when there are items to complete from them
const blocks = jsonLd && fresh.length ? Array.from(
  document.querySelectorAll('script[type]'),
  s => s.type.split(';')[0].trim().toLowerCase() === 'application/ld+json' ? s.text : null,
).filter(text => text !== null) : [];
return [document.URL, fresh, control, document.cookie, blocks];"""
_UNREAD = object()  # the pagination control was not read with the last harvest


@dataclass
class CrawledPage:
    """One page's results, written by the caller in one transaction."""

    number: int
    url: str
    offers: list[Offer]
    images: list[Image]
    shop_labels: dict[str, str]  # image sha256 -> shared label from the shop's category
    problems: list[str] = field(default_factory=list)
    photo_sources: list[PhotoSource] = field(default_factory=list)
    photos_unchanged: int = 0  # answered 304 to the validators of the last crawl


@dataclass
class _HarvestedPage:
    """A page extracted and waiting for its photos."""

    number: int
    url: str
    offers: list[Offer]
    links: list[str]
    problems: list[str]
    photos: Callable[[], PhotoResults]


@dataclass
class CrawlSummary:
    pages: int = 0
    offers: int = 0
    failures: int = 0
    # a listing stopped at pagination.max_pages (or --max-pages) with more to read: offers
    # this crawl did not see may still be listed
    capped: bool = False


# A "load more" click that does nothing (a button left enabled once the list is complete)
# would otherwise be waited for, and retried, until the time-out. The page's own fetch and
# XMLHttpRequest are counted as they start, changes to the listing (cards added or
# removed) and to the button (a spinner, "Loading...") observed, and script errors kept:
# QUIET_AFTER_CLICK_S with none of them means the click did nothing.
_WATCH_CLICK = """
const key = crawl + ':click';
let w = window[key];
if (!w) {
  w = window[key] = {requests: 0, changes: 0, errors: []};
  Object.defineProperty(window, key, {enumerable: false});
  const started = () => { w.requests += 1; };
  const pageFetch = window.fetch;
  if (pageFetch) window.fetch = function () { started(); return pageFetch.apply(this, arguments); };
  const send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.send = function () { started(); return send.apply(this, arguments); };
  const failed = event => w.errors.push(String(
    (event.error && event.error.message) || (event.reason && event.reason.message) ||
    event.reason || event.message));
  window.addEventListener('error', failed);
  window.addEventListener('unhandledrejection', failed);
  w.observer = new MutationObserver(records => { w.changes += records.length; });
}
w.observer.disconnect();
const lists = new Set([...document.querySelectorAll(itemSelector)].map(i => i.parentNode));
lists.forEach(list => w.observer.observe(list, {childList: true}));
w.observer.observe(e, {subtree: true, childList: true, characterData: true, attributes: true});
w.requests = 0; w.changes = 0; w.errors = [];"""
_CLICK_SEEN = """
const w = window[arguments[0] + ':click'];
if (!w) return null;
w.changes += w.observer.takeRecords().length;
return [w.requests, w.changes, w.errors.slice(0, 3)];"""
QUIET_AFTER_CLICK_S = 2.0


# What Selenium's get_attribute("disabled") is not None says, without sending its 4.5 KB
# script: a `disabled` attribute, or the element's disabled state.
_DISABLED_NOW = "return arguments[0].getAttribute('disabled') !== null || !!arguments[0].disabled"


def _is_disabled(button) -> bool:
    try:
        return bool(button.parent.execute_script(_DISABLED_NOW, button))
    except WebDriverException:  # removed from the page: it is not loading any more
        return False


class ShopCrawler:
    """Crawls one shop in one browser session."""

    def __init__(
        self,
        spec: ShopSpec,
        driver,
        images_dir: Path,
        on_page: Callable[[CrawledPage], None],
        on_failure: Callable[[PageFailure], None],
        robots: RobotsCheck | None = None,
        session: BrowserSession | None = None,
        recycle_after: int | None = None,
        should_stop: Callable[[], bool] | None = None,
        *,
        share: WorkBoard | None = None,
        pacer: Pacer | None = None,
        first_offers_only: bool = False,
        known_photos: KnownPhotos | None = None,
        suspects: Suspects | None = None,
        browser: Browser | None = None,
    ):
        self.spec, self.images_dir, self.robots = spec, images_dir, robots
        self.first_offers_only = first_offers_only
        # one rate limit for the shop's pages and photos (shared with other sessions if given)
        self.share, self.pacer = share, pacer or Pacer(spec.politeness.delay_seconds)
        # the shop's host name (ShopSpec.host without its port): photos there get its
        # cookies and may be on a private address, so they obey its robots.txt and delay
        self._shop_hostname = urlsplit(f"//{spec.host}").hostname if spec.host else None
        self.should_stop = should_stop
        self.on_page, self.on_failure = on_page, on_failure
        self.session, self.recycle_after = session, recycle_after
        self._token = f"__pricelens{uuid.uuid4().hex}"  # this crawl's marks in a document
        self._suspects = suspects or Suspects()  # pages that killed or hung a browser
        self._use(driver, browser)
        self.summary = CrawlSummary()
        self._seen_urls: set[str] = set()
        self._stored_offers: set[str] = set()  # offers' URLs handed over, helpers' included
        # what helpers walking this shop's menu links send: (kind, value), see _drain
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        # links the listing being walked has shown: whether a click or scroll brought
        # anything is judged by this listing alone (a category repeating another's
        # products still grows; a shop-wide count took that for a listing repeating itself)
        self._listing_links: set[str] = set()
        self._links_done: set[int] = set()  # for_each links walked to the end
        self._control = _UNREAD  # (first match, its URL, first shown) or None, per harvest
        self._known_photos = known_photos
        self._photos = PhotoFetcher(images_dir, known=known_photos, gate=self._photo_gate)
        self._waiting: _HarvestedPage | None = None  # handed over at the next harvest

    def _photo_gate(self, url: str) -> str | None:
        """Photos, and each redirect hop, on the shop's own host (however the URL spells it,
        on any port) obey its robots.txt and wait for its delay; those elsewhere (a CDN) are
        fetched only after crawler.addresses has vetted the host."""
        host = normal_hostname(urlsplit(url).hostname)
        if self._shop_hostname is None or host != self._shop_hostname:
            return None
        timeout = self.spec.politeness.robots_timeout
        reason = self.robots.why_not(url, timeout) if self.robots else None
        if reason is None:
            self.pacer.wait()
        return reason

    def _use(self, driver, browser: Browser | None = None) -> None:
        """Crawl in *driver*; with *browser*, a view of it already made for this shop (a
        helper's, its setup done)."""
        self.driver = driver
        self.browser = browser or Browser(
            self.spec, driver, self.robots, self.pacer, self._suspects
        )
        # a listing page is read in the same round trip as its load check, with the control
        # the walk's first harvest of a page asks for
        self.browser.reader = (_TAKE_ITEMS, self._take_arguments(self._first_control()))
        self._detail_tab: str | None = None  # kept open for every detail page of this browser
        self._user_agent: str | None = None  # one browser's agent does not change: ask once

    # -- the walk ---------------------------------------------------------------------------

    def crawl(self) -> CrawlSummary:
        """Walk every start URL. A browser that crashes or hangs is restarted (when this
        crawler owns a session) and the walk resumes, skipping offers already handed over."""
        finished = False
        try:
            self._crawl_start_urls()
            self._hand_over()
            finished = True
        except Exception:
            try:  # the page waiting for its photos still counts...
                self._hand_over()
            except Exception:  # ...but failing to store it must not hide why the crawl ended
                log.exception("%s: the last page could not be handed over", self.spec.name)
            raise
        finally:
            self._photos.close(cancel=not finished)  # Ctrl-C: no waiting for queued photos
        return self.summary

    def _crawl_start_urls(self) -> None:
        pending = list(self.spec.start_urls)
        restarts = 0
        while pending:
            try:
                self._crawl_from(self.spec.absolute(pending[0]))
                pending.pop(0)
            except Exception as exc:
                if not session_is_dead(exc):
                    raise
                self._hand_over()  # the resumed walk skips what it held
                suspect = self.browser.loading
                skipped = bool(suspect) and self._suspects.died_at(suspect)
                url = suspect or self.spec.absolute(pending[0])
                if self.session is None or restarts >= MAX_RESTARTS:
                    self._fail(
                        "session", url, f"{self.spec.name}: the browser is gone: {exc}", False
                    )
                    return
                restarts += 1
                then = "; that page is skipped from now on" if skipped else ""
                self._fail(
                    "session",
                    url,
                    f"{self.spec.name}: the browser crashed or hung "
                    f"({type(exc).__name__}); restarted it ({restarts}/{MAX_RESTARTS}){then}",
                    False,
                )
                self._use(self.session.start())

    def _crawl_from(self, url: str) -> None:
        try:
            self.browser.goto(url, expect_items=self.spec.for_each is None)
            if self.spec.for_each:
                self._walk_each_link(url)
            else:
                self._walk_listing()
        except StepFailed as exc:
            # this start URL ends here; pages already handed over stay stored
            self._fail(exc.step, exc.url, str(exc))

    def _recycle_due(self) -> bool:
        return bool(
            self.session and self.recycle_after and self.browser.loads >= self.recycle_after
        )

    def _recycle(self) -> None:
        log.info(
            "%s: recycling the browser after %d page loads", self.spec.name, self.browser.loads
        )
        self._use(self.session.start())

    # The for_each links on a page in one round trip: each one's element, its URL as
    # Selenium's get_attribute reads it (resolved when the attribute has a value), its text.
    _MENU_LINKS = """
return Array.from(document.querySelectorAll(arguments[0]), e => {
  const raw = e.getAttribute('href');
  return [e, raw && typeof e.href === 'string' ? e.href : raw, e.textContent.trim()];
});"""

    def _walk_each_link(self, start_url: str) -> None:
        """Walk the listing behind each for_each link. The links are read once, on the start
        page, and each is opened by its URL (through the guard every page passes): a
        listing's own menu may differ from the start page's (its category as plain text,
        sub-categories matching the same selector), so the i-th link there need not be the
        i-th category. Only a link without a usable URL (a script's, "#...") is clicked, on
        the start page, opened again for it. Links are numbered by their place on the start
        page, so a restarted browser skips those already walked. With other sessions
        sharing the crawl and the shop's concurrency above 1, helpers may walk some of the
        links with a URL in their own browsers (WorkBoard.walk_links)."""
        selector = self.spec.for_each.selector
        links = self._menu_links(selector)
        if not links:
            raise self.browser.fail("for_each", "no links to follow", selector)
        on_start_page = True  # as loaded, nothing clicked yet
        if self.share is not None and self.spec.politeness.concurrency > 1:
            shared = [
                link for link in links if opens_by_url(link[1]) and link[0] not in self._links_done
            ]
            if shared:
                on_start_page = False
                self.share.walk_links(
                    self.spec,
                    shared,
                    self._walk_link,
                    self._for_helpers(),
                    self._inbox,
                    self._drain,
                )
                links = [link for link in links if link not in shared]  # failed: not again
        for position, href, text in links:
            if position in self._links_done:
                continue
            if opens_by_url(href):
                on_start_page = False
                self._walk_link((position, href, text))
                continue
            step = f"for_each[{position}]"
            try:
                if self._recycle_due():
                    self._recycle()
                    on_start_page = False
                if not on_start_page:
                    self.browser.goto(start_url, expect_items=False)
                on_start_page = False
                self._click_menu_link(selector, position, href, text, step)
                self._walk_listing()
                self._links_done.add(position)
            except StepFailed as exc:
                self._fail(exc.step, exc.url, str(exc))  # one link failing skips only it

    def _walk_link(self, link: tuple[int, str, str]) -> None:
        """Open a menu link by its URL and walk its listing; a failure skips only it."""
        position, href, _ = link
        try:
            if self._recycle_due():
                self._recycle()
            self.browser.goto(href, step=f"for_each[{position}]")
            self._walk_listing()
            self._links_done.add(position)
        except StepFailed as exc:
            self._fail(exc.step, exc.url, str(exc))

    def _for_helpers(self) -> Callable[[Browser, BrowserSession, tuple[int, str, str]], None]:
        """How a helper walks one of this shop's menu links: a crawler of its own in the
        helper's browser, sharing this one's pacer, suspects and known photos, sending its
        pages, failures and links walked to this session's inbox."""
        seen = frozenset(self._seen_urls)  # read here, in this session's thread
        post = self.share.post

        def walk(browser: Browser, session: BrowserSession, link: tuple[int, str, str]) -> None:
            helper = ShopCrawler(
                self.spec,
                browser.driver,
                self.images_dir,
                lambda page: post(self._inbox, ("page", page)),
                lambda failure: post(self._inbox, ("failure", failure)),
                self.robots,
                session,  # its detail tabs identify themselves; it recycles on the way
                self.recycle_after,
                should_stop=self.should_stop,
                pacer=self.pacer,
                known_photos=self._known_photos,
                suspects=self._suspects,
                browser=browser,
            )
            helper._seen_urls.update(seen)
            try:
                walked = helper.walk_one(link)
            except CrawlStopped:  # asked to stop: what it read is sent, nothing else is wrong
                walked = False
            if helper.summary.capped:
                post(self._inbox, ("capped", None))
            if walked:
                post(self._inbox, ("done", link[0]))

        return walk

    def walk_one(self, link: tuple[int, str, str]) -> bool:
        """(A helper's crawler) walk one menu link and hand over its pages; whether it was
        walked to its end. A browser that dies raises, after the pages read."""
        finished = False
        try:
            self._walk_link(link)
            self._hand_over()
            finished = True
        except Exception:
            with contextlib.suppress(Exception):  # what was read still counts
                self._hand_over()
            raise
        finally:
            self._photos.close(cancel=not finished)
            self._close_detail_tab()  # the helper's browser goes on as it came
        return link[0] in self._links_done

    def _close_detail_tab(self) -> None:
        if self._detail_tab is None:
            return
        tab, self._detail_tab = self._detail_tab, None
        with contextlib.suppress(WebDriverException):
            listing = self.driver.current_window_handle
            if listing != tab:
                self.driver.switch_to.window(tab)
                self.driver.close()
                self.driver.switch_to.window(listing)

    def _drain(self) -> None:
        """Take in what helpers walking this shop's links sent: pages are stored as this
        session's own (less the offers already stored: see _store), failures recorded, a
        listing stopped at max_pages marks the crawl capped, links walked to their end are
        skipped on a resume."""
        while True:
            try:
                kind, value = self._inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "page":
                self._store(value)
            elif kind == "failure":
                self.summary.failures += 1
                self.on_failure(value)
            elif kind == "capped":
                self.summary.capped = True
            else:
                self._links_done.add(value)

    def _menu_links(self, selector: str) -> list[tuple[int, str | None, str]]:
        """The for_each links on this page as (place, URL, text); a URL already listed (the
        same category in two menus) is left out."""
        links, listed = [], set()
        for position, (_, href, text) in enumerate(
            self.driver.execute_script(self._MENU_LINKS, selector)
        ):
            key = href if opens_by_url(href) else (href, text)
            if key not in listed:
                listed.add(key)
                links.append((position, href, text))
        return links

    def _click_menu_link(
        self, selector: str, position: int, href: str | None, text: str, step: str
    ) -> None:
        """Follow the start page's link at *position*, read before as (*href*, *text*); if
        the start page has changed since, the link that still reads so."""
        found = self.driver.execute_script(self._MENU_LINKS, selector)
        if position < len(found) and found[position][1:] == [href, text]:
            element = found[position][0]
        else:
            element = next((e for e, h, t in found if (h, t) == (href, text)), None)
        if element is None:
            raise self.browser.fail(step, f"the link {text!r} left the start page", selector)
        self.browser.follow(element, step, selector, href)

    def _walk_listing(self) -> None:
        self._listing_links = set()
        walk = {
            "none": self._harvest,
            "next_page": self._walk_next_pages,
            "load_more": self._walk_load_more,
            "infinite_scroll": self._walk_infinite_scroll,
        }[self.spec.pagination.strategy]
        walk()

    def _walk_next_pages(self) -> None:
        """Read each page and follow its "next" until there is none, or max_pages. A "next"
        back to a page this walk has opened (a last page linking to itself, or round to
        page 1) ends the listing as well, instead of reading the same pages again up to
        max_pages. Pages are told apart by their URLs without the #fragment."""
        selector = self.spec.pagination.selector
        here = self._without_fragment(self.browser.current_url())
        opened = {here}
        for page in range(1, self.spec.pagination.max_pages + 1):
            self._harvest(selector)
            if page == self.spec.pagination.max_pages:
                # the last page allowed: its "next" is not opened
                self.summary.capped |= self._pagination_control(selector) is not None
                return
            control = self._pagination_control(selector)
            if control is None:
                return  # the last page has no "next"
            link, href, _ = control
            if self._leads_back(href, here, opened):
                return  # the last page's "next" goes where this walk has been
            if href and self._recycle_due():  # the listing is URL-addressed: safe to recycle
                self._recycle()
                self.browser.goto(href, step="next_page")
            else:
                self.browser.follow(link, "next_page", selector, href)
            # a clicked control's page is known once there (the page's URL: a round trip)
            landed = href if opens_by_url(href) else self.browser.current_url()
            here = self._without_fragment(landed)
            opened.add(here)

    @staticmethod
    def _without_fragment(url: str) -> str:
        return url.partition("#")[0]

    # Whether arguments[0] (a #fragment) names a place on this page: an element with that id
    # or name, or "top", which every page has.
    _ANCHOR = """
let name = arguments[0];
try { name = decodeURIComponent(name); } catch (e) {}
return name.toLowerCase() === 'top' || document.getElementById(name) !== null ||
       document.getElementsByName(name).length > 0;"""

    def _leads_back(self, href: str | None, here: str, opened: set[str]) -> bool:
        """Whether a "next" link's URL *href* is a page this walk has opened. A #fragment on
        this very page is an in-page jump when the page has that place, and leads nowhere
        new; any other ("#", a script's link) is clicked, as only that tells where it goes."""
        if not href:
            return False  # a script's control: no URL to judge it by
        target, mark, fragment = href.partition("#")
        if target not in opened:
            return False
        if not mark or target != here:
            return True
        if not fragment:
            return False
        try:
            return bool(self.driver.execute_script(self._ANCHOR, fragment))
        except WebDriverException as exc:
            if session_is_dead(exc):
                raise
            return False  # unknown: clicked, as before

    def _walk_load_more(self) -> None:
        """Click "load more" until the button is gone or disabled (`disabled` or
        aria-disabled="true" before a click: the usual end-of-list markup), does nothing
        when clicked (twice: no request, no change, no script error), max_pages, or
        STALE_SCROLL_ROUNDS clicks in a row that bring only items already seen (a button
        that adds the same cards again), which is recorded, as infinite scroll does."""
        selector = self.spec.pagination.selector
        stale = 0
        self._harvest(selector)
        for _ in range(self.spec.pagination.max_pages - 1):
            control = self._pagination_control(selector)
            button = control[2] if control else None
            # the harvest's "shown" is a quick look: Selenium's is_displayed has the last word
            shown, disabled, count = self._button_state(button, check_shown=True)
            if button is not None and not shown:
                control = self._pagination_control(selector)  # read now, by WebDriver
                button = control[2] if control else None
                _, disabled, count = self._button_state(button)
            if button is None or disabled:
                return  # gone or disabled: the listing has ended
            try:
                grew = self._grow(
                    lambda b=button: self._click_load_more(b),
                    "load_more",
                    None,
                    watched=lambda b=button: self._button_state(b)[1],
                    before=count,
                )
            except StepFailed:
                if self.driver.find_elements(By.CSS_SELECTOR, selector):
                    raise
                # the button went away as it was clicked: a load still under way was the
                # last one; keep what the listing shows
                self._harvest()
                return
            if not grew:
                return  # the button did nothing: the list has ended
            stale = 0 if self._harvest(selector) else stale + 1
            if self._given_up(stale, "load_more", f"clicking {selector!r}: {stale} clicks"):
                return
        # max_pages clicks: a button still shown may have had more
        control = self._pagination_control(selector)
        self.summary.capped |= bool(control and control[2] is not None)

    # [shown, disabled, listing items] for "load more" arguments[0], in one round trip.
    # Shown: as Selenium's is_displayed (its script), in the variant that asks. Disabled: it
    # says it cannot be used now: disabled (itself or by its fieldset), a `disabled`
    # attribute on an element that has no such state (a link), aria-disabled. If shown and
    # usable, what the page does from now on is watched (_WATCH_CLICK), so that a click that
    # does nothing is known without waiting out the time-out.
    _BUTTON_STATE = (
        """
const [e, itemSelector, crawl] = arguments;
const count = document.querySelectorAll(itemSelector).length;
SHOWN
if (e.matches(':disabled') || e.hasAttribute('disabled') ||
    (e.getAttribute('aria-disabled') || '').trim().toLowerCase() === 'true') {
  return [true, true, count];
}
"""
        + _WATCH_CLICK
        + "\nreturn [true, false, count];"
    )
    _BUTTON_STATES = (  # by check_shown
        _BUTTON_STATE.replace("SHOWN", ""),
        _BUTTON_STATE.replace(
            "SHOWN", f"if (!({IS_DISPLAYED_JS}).call(null, e)) return [false, false, count];"
        ),
    )

    def _button_state(self, button, check_shown: bool = False) -> tuple[bool, bool, int | None]:
        """(shown, disabled, listing items now) for a "load more" *button* (None: not
        shown), shown only checked when asked. Disabled before it is clicked is a shop's way
        to say the list is complete. Asked once the last click's items are in, by when a
        button disabled while they loaded is enabled again (shops do both in one go). A
        button the page has re-rendered or removed since it was read counts as not shown
        when that is asked, else as usable: the click finds out."""
        if button is None:
            return False, False, None
        try:
            script = self._BUTTON_STATES[check_shown]
            arguments = (button, self.spec.listing.item, self._token)
            shown, disabled, count = self.driver.execute_script(script, *arguments)
            return shown, disabled, count
        except WebDriverException as exc:
            if session_is_dead(exc):
                raise
            return not check_shown, False, None

    def _click_did_nothing(self) -> list[str] | None:
        """None while the page has started a request or changed the listing or the button
        since the watch was armed (or cannot tell); else the script errors it reported."""
        try:
            seen = self.driver.execute_script(_CLICK_SEEN, self._token)
        except WebDriverException as exc:
            if session_is_dead(exc):
                raise
            return None
        if not seen or seen[0] or seen[1]:
            return None
        return [str(error) for error in seen[2]]

    def _given_up(self, stale: int, step: str, doing: str) -> bool:
        """Whether *stale* rounds in a row brought only items already seen (a listing that
        repeats itself): then the walk stops, and records it, as *step* "stopped *doing*"."""
        if stale < STALE_SCROLL_ROUNDS:
            return False
        message = f"{self.spec.name}: stopped {doing} brought only items already seen"
        self._fail(step, self.browser.current_url(), message)
        return True

    def _walk_infinite_scroll(self) -> None:
        done = self.spec.pagination.done_selector
        stale = 0
        self._harvest(done)
        for _ in range(self.spec.pagination.max_pages):
            # an absent end marker is looked for again next round: no second look now
            if done and self._pagination_control(done, look_again_if_absent=False):
                return
            if not self._grow(self.browser.scroll_to_bottom, "infinite_scroll", done):
                return  # no end marker configured: nothing more came, so this is the end
            self.browser.run_steps()
            stale = 0 if self._harvest(done) else stale + 1
            if self._given_up(stale, "infinite_scroll", f"scrolling: {stale} rounds"):
                return
        if done and self._pagination_control(done):
            return  # the end marker came with the last round allowed: not cut short
        self.summary.capped = True
        self._fail(
            "infinite_scroll",
            self.browser.current_url(),
            f"{self.spec.name}: stopped after max_pages="
            f"{self.spec.pagination.max_pages} scroll rounds",
        )

    def _click_load_more(self, button) -> Callable[[], bool] | None:
        """Click; if the button disables itself while loading, return a probe for that."""
        self.browser.click(button, "load_more", self.spec.pagination.selector)
        if _is_disabled(button):  # (re-rendered or removed: nothing to watch)
            return lambda: _is_disabled(button)
        return None

    def _grow(
        self,
        action: Callable[[], Callable[[], bool] | None],
        step: str,
        done: str | None,
        watched: Callable[[], bool] | None = None,
        before: int | None = None,
    ) -> bool:
        """Do *action* (click "load more", scroll) until the listing grows or shows its end
        marker, retrying with backoff: a failed background request leaves it as it was.
        Returns False when it never grew and there is no end marker to tell an end from a
        failure, or when a *watched* click (see _WATCH_CLICK; *watched* arms the watch
        again and says whether the button is disabled by now) did nothing twice in a row:
        no request, no change, no script error. *before*: the listing's items, when the
        caller has just counted them."""
        retries = self.spec.politeness.retries
        quiet_s = min(QUIET_AFTER_CLICK_S, self.spec.politeness.wait_timeout)
        did_nothing, errors = 0, []
        for attempt in range(retries + 1):
            if attempt and watched is not None and watched():
                return False  # disabled while this click's request failed: the end
            if attempt or before is None:
                before = self.browser.count_items()
            self.browser.polite()
            busy = action()
            look_at = [time.monotonic() + quiet_s] if watched is not None else []

            def settled(d, n=before, busy=busy, look_at=look_at, errors=errors):
                # a button that was disabled while loading and is enabled again, with nothing
                # new, means its request failed: no need to wait out the time-out. Asked
                # before counting, or a load ending between the two looks like a failure.
                idle = busy is not None and not busy()
                count, ended = self.browser.items_and(done)
                if count > n:
                    return "grew"
                if ended:
                    return "done"
                if idle:
                    return "failed"
                if look_at and time.monotonic() >= look_at[0]:
                    look_at.clear()  # asked once: a page that got busy stays so
                    reported = self._click_did_nothing()
                    if reported is not None:
                        errors.extend(reported)
                        return "nothing"
                return None

            try:
                outcome = self.browser.wait.until(settled)
                if outcome not in ("failed", "nothing"):
                    return True
            except TimeoutException:
                if step == "infinite_scroll" and not done:
                    return False
                outcome = "timed out"
            did_nothing = did_nothing + 1 if outcome == "nothing" else 0
            if did_nothing == 2 or (did_nothing and attempt == retries):
                self._end_of_inert_list(step, errors)
                return False
            if attempt < retries:
                self.browser.backoff(attempt)
        raise self.browser.fail(
            step,
            f"no new items after {retries + 1} attempts (still {before})",
            self.spec.pagination.selector or done,
        )

    def _end_of_inert_list(self, step: str, errors: list[str]) -> None:
        """A watched click did nothing twice: the end of the list, unless the page reported
        script errors, which make it a failure quoting them (the list may be incomplete)."""
        selector = self.spec.pagination.selector
        if errors:
            detail = f"the click did nothing; the page reported: {'; '.join(errors)}"
            raise self.browser.fail(step, detail, selector)
        log.info(
            "%s: %r did nothing when clicked twice: the end of the list", self.spec.name, selector
        )

    # -- one page -----------------------------------------------------------------------------

    def _pagination_control(self, selector: str, look_again_if_absent: bool = True):
        """The pagination control the last harvest read, or (when it did not, or found none:
        a control drawn after the items) as it is now: (first match, its URL, first one
        shown) or None when there is none. The harvest's reading is used once; a second
        call reads the page through WebDriver."""
        control, self._control = self._control, _UNREAD
        if control is not _UNREAD and (control is not None or not look_again_if_absent):
            return control
        for _ in range(STALE_TRIES):
            found = self.driver.find_elements(By.CSS_SELECTOR, selector)
            if not found:
                return None
            try:
                shown = next((element for element in found if element.is_displayed()), None)
                return found[0], found[0].get_attribute("href"), shown
            except StaleElementReferenceException:
                continue  # re-rendered while read: read it again
        raise self.browser.fail(
            "pagination", f"the control was replaced {STALE_TRIES} times while read", selector
        )

    def _harvest(self, control: str | None = None) -> int:
        """Extract the current page; hand over the offers not yet seen. Returns how many
        items this listing had not shown before (new to the listing, perhaps not to the
        shop). The *control* selector's matches are read in the same round trip."""
        self._control = _UNREAD
        try:
            arguments = self._take_arguments(control)
            read = self.browser.take_read_at_load(arguments)
            at_load = read is not None  # this very page, just loaded, nothing done since
            if read is None:
                read = self.driver.execute_script(_TAKE_ITEMS, *arguments)
            url, fragments, found, script_cookies, blocks = read
            if control and found is not False and self._usable_control(found):
                self._control = found
        except WebDriverException as exc:
            if session_is_dead(exc):
                raise
            url = self.browser.current_url()
            self._fail("extract", url, f"{self.spec.name}: reading {url} failed: {exc.msg or exc}")
            return 0
        # the last page's photos came in while this one loaded; handed over before reading
        # this one, so a link both show is taken once
        self._hand_over()
        items = extract_fragments(fragments, self.spec)
        items = with_listing_json_ld(items, blocks, url, self.spec)
        problems: list[str] = []
        unseen: dict[str, RawItem] = {}
        listed_before = len(self._listing_links)
        for item in items:
            link = safe_http_url(item.fields.get("url"), url)
            if link is None:
                problems.append(f"{url}: an item without a usable link was skipped")
                continue
            self._listing_links.add(link)
            if link not in self._seen_urls and link not in unseen:
                unseen[link] = absolute_fields(item, link, url)
        new_to_listing = len(self._listing_links) - listed_before
        fresh = list(unseen.items())
        if self.spec.detail and fresh:
            fresh = self._complete_from_details(fresh)
            at_load = False  # detail responses may have set cookies since the load check
        scraped_at = datetime.now(UTC)
        offers, links = [], []
        for link, item in fresh:
            # links are absolute by now: each resolved against the page it was read from
            offer = to_offer(item, self.spec, url, scraped_at)
            if offer is None:
                problems.append(f"{link}: an item without a title was skipped")
                continue
            offers.append(offer)
            links.append(link)
            if problem := list_price_problem(item, self.spec):
                problems.append(f"{link}: {problem}")
        wanted = [o.image_url for o in offers if o.image_url]
        # the browser's cookies are a round trip, when read: none for a page without photos
        script_view = script_cookies if at_load else None
        http = self._http_context(script_view) if wanted else None
        photos = self._photos.start(wanted, http)
        number = self.summary.pages + 1
        self._waiting = _HarvestedPage(number, url, offers, links, problems, photos)
        if (self.first_offers_only and offers) or (self.should_stop and self.should_stop()):
            self._hand_over()
            raise CrawlStopped(f"{self.spec.name}: stopped after page {number}")
        return new_to_listing

    def _usable_control(self, found: list | None) -> bool:
        """Whether a harvest's reading of the pagination control will do: one taken without
        elements (crawler.browser.evaluate) will only for a "next" link followed by its URL
        (Browser.follow); else the walk reads the control again, by WebDriver."""
        if found is None or found[0] is not None:
            return True
        return self.spec.pagination.strategy == "next_page" and opens_by_url(found[1])

    def _take_arguments(self, control: str | None) -> list:
        return [self.spec.listing.item, control, self._token, self.spec.listing.json_ld]

    def _first_control(self) -> str | None:
        """The control selector the walk reads with a page's first harvest."""
        pagination = self.spec.pagination
        return {
            "next_page": pagination.selector,
            "load_more": pagination.selector,
            "infinite_scroll": pagination.done_selector,
        }.get(pagination.strategy)

    def _hand_over(self) -> None:
        """Give the waiting page, its photos in, to the caller."""
        page, self._waiting = self._waiting, None
        if page is None:
            return
        self._store(self._with_images(page))
        # seen once handed over: a browser that dies before this loses nothing on resume,
        # and an item skipped without a title (a placeholder) is read again when filled in
        self._seen_urls.update(page.links)

    def _store(self, page: CrawledPage) -> None:
        """Hand *page* to the caller, less the offers this crawl has already stored: two
        categories may list one product, and a helper may have read it in the other one
        while this session's page waited for its photos."""
        offers = [offer for offer in page.offers if offer.url not in self._stored_offers]
        if len(offers) < len(page.offers):
            shown = {offer.image_sha256 for offer in offers}
            page = replace(
                page,
                offers=offers,
                images=[image for image in page.images if image.sha256 in shown],
                shop_labels={k: v for k, v in page.shop_labels.items() if k in shown},
                photo_sources=[s for s in page.photo_sources if s.image_sha256 in shown],
            )
        self.summary.pages += 1
        self.summary.offers += len(page.offers)
        self.on_page(page)
        urls = [offer.url for offer in page.offers]
        self._stored_offers.update(urls)
        self._seen_urls.update(urls)  # a helper's too: this session does not read them again

    def _complete_from_details(self, items: list[tuple[str, RawItem]]) -> list[tuple[str, RawItem]]:
        """Load each item's detail page in a second tab, so the listing keeps its state; with
        a share, idle sessions load some of them. Pages not to be rendered are fetched from
        the listing itself. Failed pages are recorded, their items kept as the listing showed
        them."""
        if self.spec.detail.render:
            results = self._rendered_details(items)
        else:
            results = fetch_details(self.browser, items, self._rendered_details)
        for result in results:
            if result.failure is not None:
                self.summary.failures += 1
                self.on_failure(result.failure)
        return [(result.link, result.item) for result in results]

    def _rendered_details(self, items: list[tuple[str, RawItem]]) -> list[DetailResult]:
        listing = self.driver.current_window_handle
        self._enter_detail_tab()
        try:
            if self.share is None:
                return [self._detail_here(link, item) for link, item in items]
            return self.share.complete(self.spec, items, self._detail_here)
        finally:
            self.driver.switch_to.window(listing)

    def _detail_here(self, link: str, item: RawItem) -> DetailResult:
        return fetch_detail(self.browser, link, item)

    def _enter_detail_tab(self) -> None:
        """Switch to the detail tab, opening it once per browser (not once per page)."""
        if self._detail_tab is not None:
            try:
                self.driver.switch_to.window(self._detail_tab)
                return
            except NoSuchWindowException:  # closed by the page: open another
                pass
        self.driver.switch_to.new_window("tab")
        self._detail_tab = self.driver.current_window_handle
        if self.session is not None:
            self.session.identify()  # the user agent override is per tab

    def _http_context(self, script_view: str | None) -> HttpContext:
        """The browser's identity for photo requests: its user agent and current cookies
        (*script_view*: see Browser.cookie_header)."""
        if self._user_agent is None:
            self._user_agent = user_agent(self.driver)
        return HttpContext(
            self._user_agent,
            self.browser.cookie_header(script_view),
            self._shop_hostname,  # the shop's, not the page's: one host, however reached
            retries=self.spec.politeness.retries,
            backoff_seconds=self.spec.politeness.backoff_seconds,
        )

    def _with_images(self, page: _HarvestedPage) -> CrawledPage:
        photos = page.photos()
        problems = page.problems + list(photos.errors.values())
        labelled, shop_labels = [], {}
        for offer in page.offers:
            image = photos.images.get(offer.image_url)
            if image:
                offer = replace(offer, image_sha256=image.sha256)
                label = self.spec.label_for(offer.category_raw)
                if label:
                    shop_labels[image.sha256] = label
            labelled.append(offer)
        return CrawledPage(
            page.number,
            page.url,
            labelled,
            list(photos.images.values()),
            shop_labels,
            problems,
            list(photos.sources.values()),
            photos.unchanged,
        )

    def _fail(self, step: str, url: str, message: str, with_snapshot: bool = True) -> None:
        self.summary.failures += 1
        # (a dead or hung browser has nothing to show, and a hung one takes time to say so;
        # a page skipped as a suspect was never shown)
        if self._suspects.skips(url):
            with_snapshot = False
        html, screenshot = snapshot(self.driver, self.spec.host) if with_snapshot else (None, None)
        self.on_failure(PageFailure(self.spec.name, step, url, message, html, screenshot))


def crawl_shop(
    spec: ShopSpec,
    driver,
    images_dir: Path,
    on_page: Callable[[CrawledPage], None],
    on_failure: Callable[[PageFailure], None],
    robots: RobotsCheck | None = None,
    session: BrowserSession | None = None,
    recycle_after: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    share: WorkBoard | None = None,
    pacer: Pacer | None = None,
    first_offers_only: bool = False,
    known_photos: KnownPhotos | None = None,
    suspects: Suspects | None = None,
) -> CrawlSummary:
    """Crawl *spec*'s shop with *driver*, handing over each page as it is done. With a
    *session*, a crashed browser is restarted and one is recycled after *recycle_after*
    page loads. When *should_stop* says so, `CrawlStopped` is raised after the current page.
    With a *share*, other sessions may load detail pages and walk menu links; a *pacer*
    shared with them keeps the shop's delay between requests, and *suspects* shared with
    them the pages that killed or hung a browser. *first_offers_only* stops
    (`CrawlStopped`) after the first page with offers. Photo URLs in *known_photos* are
    downloaded only if changed."""
    if problem := spec.unreachable():
        raise SpecError(problem)
    crawler = ShopCrawler(
        spec,
        driver,
        images_dir,
        on_page,
        on_failure,
        robots,
        session,
        recycle_after,
        should_stop,
        share=share,
        pacer=pacer,
        first_offers_only=first_offers_only,
        known_photos=known_photos,
        suspects=suspects,
    )
    return crawler.crawl()
