"""One crawl shared by several browser sessions. Shops are handed out one at a time, the
longest first; a session with no shop left becomes a helper and takes work that the shops'
own sessions put on the board, as far as each shop's `politeness.concurrency` allows: detail
pages, and the listings behind a category menu's links. A helper only loads and reads: its
results go back to the shop's own session, which stores them (one page, one transaction)
and records any failure."""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from crawler.browser import BrowserConfig, BrowserSession, session_is_dead
from crawler.detail import DetailResult, DetailWork, fetch_detail
from crawler.errors import StepFailed
from crawler.extract import RawItem
from crawler.spec import ShopSpec
from crawler.steps import Browser, Pacer, RobotsCheck, Suspects

log = logging.getLogger(__name__)

MAX_HELPER_RESTARTS = 3  # a helper whose browser keeps dying stops helping
IDLE_CHECK_S = 0.5  # how often an idle helper looks at the stop flag


@dataclass(eq=False)
class _Task:
    spec: ShopSpec
    key: object  # what the shop's session does with it (a detail page's link and item)
    elsewhere: Callable[[Browser, BrowserSession], object]  # what a helper does, in its browser
    state: str = "queued"  # queued -> taken -> done; a helper that fails puts it back
    result: object = None
    cancelled: bool = False  # its shop's session no longer waits for it
    helpers_failed: bool = False  # a helper could not do it: only the shop's session tries
    lent: bool = False  # a helper is on it now


class WorkBoard:
    """Shops to walk and detail pages to load, shared by the sessions of one crawl."""

    def __init__(self, shops: list[tuple[int, ShopSpec]]):
        self._cond = threading.Condition()
        self._shops = deque(shops)
        self._walking = 0  # shops whose own session is walking them now
        self._busy: Counter[str] = Counter()  # sessions working on each shop now
        self._queue: deque[_Task] = deque()
        self._pacers: dict[str, Pacer] = {}
        self._suspects: dict[str, Suspects] = {}

    def pacer(self, spec: ShopSpec) -> Pacer:
        """The shop's one rate limiter, whichever session sends the request."""
        with self._cond:
            return self._pacers.setdefault(spec.name, Pacer(spec.politeness.delay_seconds))

    def suspects(self, spec: ShopSpec) -> Suspects:
        """The shop's pages that killed or hung a browser, whichever session loaded them."""
        with self._cond:
            return self._suspects.setdefault(spec.name, Suspects())

    # -- a shop's own session -------------------------------------------------------------

    def next_shop(self) -> tuple[int, ShopSpec] | None:
        with self._cond:
            if not self._shops:
                return None
            index, spec = self._shops.popleft()
            self._walking += 1
            self._busy[spec.name] += 1
            return index, spec

    def shop_done(self, spec: ShopSpec) -> None:
        with self._cond:
            self._walking -= 1
            self._busy[spec.name] -= 1
            self._cond.notify_all()

    def complete(
        self, spec: ShopSpec, items: list[tuple[str, RawItem]], work: DetailWork
    ) -> list[DetailResult]:
        """Put *items* on the board and load them with *work* (the calling session) until
        none is left; helpers take others meanwhile. Results in the order of *items*."""
        tasks = [
            _Task(
                spec, (link, item), lambda b, _, link=link, item=item: fetch_detail(b, link, item)
            )
            for link, item in items
        ]
        return self._share(tasks, lambda key: work(*key))

    def walk_links(
        self,
        spec: ShopSpec,
        links: list,
        here: Callable[[object], None],
        elsewhere: Callable[[Browser, BrowserSession, object], None],
        inbox: queue.SimpleQueue,
        drain: Callable[[], None],
    ) -> None:
        """Put *links* (a category menu's, each a listing to walk) on the board and walk
        them with *here* (the calling session) until none is left; helpers walk others
        meanwhile with *elsewhere*, in their own browsers, and send what they find to
        *inbox* (WorkBoard.post). *drain* (the calling session) takes it from there:
        between its own links, while it waits for the helpers, and at the end. Ended by an
        error or a stop, it still waits for the links helpers are walking (asked to stop,
        they end after their current page), so that what they read is stored."""

        def helper_walks(browser: Browser, session: BrowserSession, link=None) -> bool:
            elsewhere(browser, session, link)
            return True

        tasks = [
            _Task(spec, link, lambda b, s, link=link: helper_walks(b, s, link)) for link in links
        ]
        try:
            self._share(tasks, here, drain)
        finally:
            with self._cond:
                while any(task.lent for task in tasks):
                    self._cond.wait()
            drain()

    def post(self, inbox: queue.SimpleQueue, message: object) -> None:
        """A helper's message for a shop's session waiting on this board."""
        with self._cond:
            inbox.put(message)
            self._cond.notify_all()

    def _share(
        self,
        tasks: list[_Task],
        here: Callable[[object], object],
        between: Callable[[], None] | None = None,
    ) -> list:
        """Queue *tasks*; the calling session does them with *here* until none is left,
        running *between* before each and whenever woken while helpers finish the last."""
        with self._cond:
            self._queue.extend(tasks)
            self._cond.notify_all()
        try:
            while True:
                if between is not None:
                    between()
                with self._cond:
                    task = next((t for t in tasks if t.state == "queued"), None)
                    if task is None:
                        if all(t.state == "done" for t in tasks):
                            break
                        self._cond.wait()  # a helper is on the last ones (or posts)
                        continue
                    self._queue.remove(task)
                    task.state = "taken"
                result = here(task.key)
                with self._cond:
                    task.result, task.state = result, "done"
        finally:
            with self._cond:
                for task in tasks:
                    task.cancelled = True
                    if task.state == "queued":
                        self._queue.remove(task)
        return [task.result for task in tasks]

    # -- helpers ---------------------------------------------------------------------------

    def take(self, should_stop: Callable[[], bool] | None = None) -> _Task | None:
        """Work for another session's shop; waits for some. None when every shop has been
        walked, or when asked to stop."""
        with self._cond:
            while not (should_stop and should_stop()):
                for task in self._queue:
                    name = task.spec.name
                    if not task.helpers_failed and (
                        self._busy[name] < task.spec.politeness.concurrency
                    ):
                        self._queue.remove(task)
                        task.state, task.lent = "taken", True
                        self._busy[name] += 1
                        return task
                if not self._shops and not self._walking:
                    return None
                self._cond.wait(IDLE_CHECK_S)
            return None

    def finish(self, task: _Task, result: object) -> None:
        """A helper's result; None puts the task back for the shop's own session."""
        with self._cond:
            self._busy[task.spec.name] -= 1
            task.lent = False
            if result is not None:
                task.result, task.state = result, "done"
            elif not task.cancelled:
                task.state, task.helpers_failed = "queued", True
                self._queue.appendleft(task)
            self._cond.notify_all()


class Helper:
    """A browser session with no shop of its own that takes work from the board: detail
    pages, category listings. Its browser starts with the first it takes; it is recycled
    after *recycle_after* page loads and restarted after a crash (the work then goes back to
    the shop's session)."""

    def __init__(
        self,
        board: WorkBoard,
        config: BrowserConfig,
        robots: RobotsCheck | None = None,
        recycle_after: int | None = None,
        should_stop: Callable[[], bool] | None = None,
    ):
        self.board, self.robots, self.should_stop = board, robots, should_stop
        self.recycle_after = recycle_after
        self.session = BrowserSession(config)
        self._browsers: dict[str, Browser] = {}
        self._refused: set[str] = set()  # shops whose setup failed here: left to their own
        self.restarts = 0
        self.pages = 0

    def run(self) -> int:
        """Help until no shop is left; returns how many tasks this session did."""
        try:
            while (task := self.board.take(self.should_stop)) is not None:
                result = None
                try:
                    result = self._load(task)
                finally:
                    self.board.finish(task, result)
                if result is not None:
                    self.pages += 1
        finally:
            self.session.close()
        return self.pages

    def _load(self, task: _Task) -> object:
        if self.restarts > MAX_HELPER_RESTARTS or task.spec.name in self._refused:
            return None
        try:
            browser = self._browser(task.spec)
            if browser.setup_pending:  # here, so a failed setup is not a failed detail page
                try:
                    browser.run_setup()
                except StepFailed as exc:
                    log.warning("helper: %s; its pages are left to the shop's session", exc)
                    self._refused.add(task.spec.name)
                    return None
            return task.elsewhere(browser, self.session)
        except Exception as exc:
            if session_is_dead(exc):
                browser = self._browsers.get(task.spec.name)
                if browser is not None and browser.loading:
                    browser.suspects.died_at(browser.loading)
                self.restarts += 1
                log.warning("helper browser died at %s; it will restart: %s", task.key, exc)
                self.session.close()
            else:  # unexpected: the shop's own session does it and reports what happens
                log.warning("helper could not do %s", task.key, exc_info=True)
                if self.session.driver is None:  # no browser would start: stop helping
                    self.restarts = MAX_HELPER_RESTARTS + 1
            return None

    def _browser(self, spec: ShopSpec) -> Browser:
        # a crawler walking a shop's listing here may have recycled the browser itself
        self._browsers = {
            name: browser
            for name, browser in self._browsers.items()
            if browser.driver is self.session.driver
        }
        loads = sum(browser.loads for browser in self._browsers.values())
        recycle = bool(self.recycle_after and loads >= self.recycle_after)
        if self.session.driver is None or recycle:
            self.session.start()
            self._browsers.clear()
        browser = self._browsers.get(spec.name)
        if browser is None:
            pacer, suspects = self.board.pacer(spec), self.board.suspects(spec)
            browser = Browser(spec, self.session.driver, self.robots, pacer, suspects)
            self._browsers[spec.name] = browser
        return browser
