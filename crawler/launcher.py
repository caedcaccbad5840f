"""Browser sessions for a crawl of several shops: the next one starts in the background while
a shop is crawled, and a finished one quits in the background, so no shop waits for Chrome to
start or close (here about 0.6 s and 0.2 s, a fifth of a small shop's crawl). Each shop still
gets a fresh browser with its own profile: nothing one shop sets is seen by the next."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from crawler.browser import BrowserConfig, BrowserSession

log = logging.getLogger(__name__)


def _started(config: BrowserConfig) -> BrowserSession:
    session = BrowserSession(config)
    try:
        session.start()
    except BaseException:
        session.close()  # a half-started browser leaves no process or profile behind
        raise
    return session


class BrowserLauncher:
    """Hands out *needed* started sessions, at most one started ahead of demand. Not ahead
    on a remote Grid: it would hold a slot idle for a whole shop, and a Grid ends sessions
    idle that long (Selenium Grid's --session-timeout, 300 s by default)."""

    def __init__(self, config: BrowserConfig = BrowserConfig(), needed: int = 1):
        self.config = config
        self._needed = needed
        self._lock = threading.Lock()
        self._ahead: Future[BrowserSession] | None = None
        self._closing: list[Future[None]] = []
        # one thread starts the next browser while another quits the last
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="browser")

    def take(self) -> BrowserSession:
        """A started session: the one started ahead, or one started now. Raises what
        starting the browser raised (no driver, a Grid that refuses)."""
        with self._lock:
            self._needed -= 1
            ahead, self._ahead = self._ahead, None
        session = self._ready(ahead) if ahead is not None else None
        if session is None:
            session = _started(self.config)
        with self._lock:
            # only once this one is up: two browsers starting at once slow each other
            if self._needed > 0 and self._ahead is None and not self.config.remote_url:
                self._ahead = self._pool.submit(_started, self.config)
        return session

    def _ready(self, ahead: Future[BrowserSession]) -> BrowserSession | None:
        """The session started ahead if it started and still answers, else None (a start
        that failed minutes ago is tried again now, not held against this shop)."""
        try:
            session = ahead.result()
        except Exception:
            log.warning("a browser started ahead did not start; starting one now", exc_info=True)
            return None
        try:
            session.driver.execute_script("return 1")
            return session
        except Exception:
            log.warning("a browser started ahead stopped answering; starting one now")
            self.give_back(session)
            return None

    def give_back(self, session: BrowserSession) -> None:
        """Quit *session* in the background."""
        with self._lock:
            self._closing.append(self._pool.submit(session.close))

    @contextlib.contextmanager
    def session(self) -> Iterator[BrowserSession]:
        session = self.take()
        try:
            yield session
        finally:
            self.give_back(session)

    def close(self) -> None:
        """Quit every browser still open (one started ahead but never needed included) and
        wait until they are gone."""
        with self._lock:
            ahead, self._ahead, self._needed = self._ahead, None, 0
        if ahead is not None:
            with contextlib.suppress(Exception):  # it failed to start: nothing to quit
                self.give_back(ahead.result())
        for closing in self._closing:
            try:
                closing.result()
            except Exception:
                log.warning("a browser did not quit cleanly", exc_info=True)
        self._pool.shutdown(wait=True)

    def __enter__(self) -> BrowserLauncher:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
