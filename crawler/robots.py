"""robots.txt: asked before every page, fetched once per site, read the way Google reads it.

A shop that cannot tell us its rules (5xx, timeout, no connection) is not crawled at all, since
a missing answer is not a permission; a shop without a robots.txt (4xx) has no rules.
Redirects are followed by hand, each hop checked like a photo's (crawler.addresses): one to
another host on a private address, or to something not http(s), is refused, and a refused
robots.txt counts as an unreachable one. After MAX_REDIRECTS hops, as Google does, the site
counts as having no robots.txt.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from protego import Protego

from crawler.addresses import (
    DEFAULT_PORTS,
    NO_REDIRECTS,
    destination_problem,
    read_capped,
    redirect_target,
)
from crawler.identity import FETCH_USER_AGENT, ROBOTS_NAME

log = logging.getLogger(__name__)

MAX_BYTES = 512 * 1024  # Google reads the first 500 KiB; the rest is ignored
MAX_REDIRECTS = 5  # Google follows five hops, then treats robots.txt as missing
DEFAULT_TIMEOUT = 5.0  # seconds for the whole fetch, redirects included


def robots_url(url: str) -> str:
    """The robots.txt that governs `url`: one per scheme, host and port (default ports dropped,
    credentials never sent). Raises ValueError for a URL that is not http(s) with a host."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS:
        kind = f"{parts.scheme}: URLs" if parts.scheme else "relative URLs"
        raise ValueError(f"only http(s) URLs are crawled, not {kind}")
    if not parts.hostname:
        raise ValueError("the URL has no host")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = parts.port  # ValueError for a port that is not a number in range
    suffix = "" if port in (None, DEFAULT_PORTS[parts.scheme]) else f":{port}"
    return f"{parts.scheme}://{host}{suffix}/robots.txt"


@dataclass(frozen=True)
class _Rules:
    """One site's answer: parsed rules, or none (all allowed), or a problem (all disallowed);
    a *final* problem (a time-out, a refused redirect) is not asked again."""

    parser: Protego | None = None
    problem: str | None = None
    final: bool = False


class RobotsPolicy:
    """Whether pricelens may fetch a URL. Safe to share between browser sessions: each site's
    robots.txt is fetched once, even when several threads ask about it at the same moment.
    *timeout* bounds each fetch unless a question brings its own (the shop's
    `politeness.robots_timeout`); the first question about a site decides."""

    def __init__(
        self,
        user_agent: str = ROBOTS_NAME,
        timeout: float = DEFAULT_TIMEOUT,
        obey: bool = True,
        retries: int = 2,
        backoff_seconds: float = 0.5,
    ):
        self.user_agent, self.timeout, self.obey = user_agent, timeout, obey
        self.retries, self.backoff_seconds = retries, backoff_seconds
        self._rules: dict[str, _Rules] = {}
        self._site_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()  # guards _site_locks; a slow site never blocks another

    def allowed(self, url: str, timeout: float | None = None) -> bool:
        return self.why_not(url, timeout) is None

    def why_not(self, url: str, timeout: float | None = None) -> str | None:
        """A one-line reason naming the URL and its robots.txt, or None when it may be fetched.
        Non-http(s) URLs are refused even with obey=False: the browser must never open them."""
        try:
            where = robots_url(url)
        except ValueError as exc:
            return f"{url}: refused: {exc}"
        if not self.obey:
            return None
        rules = self._rules_for(where, timeout)
        if rules.problem:
            return f"{url}: {where} {rules.problem}, so disallowed"
        if rules.parser and not rules.parser.can_fetch(url, self.user_agent):
            return f"{url}: disallowed for {self.user_agent!r} by {where}"
        return None

    def crawl_delay(self, url: str, timeout: float | None = None) -> float | None:
        """The site's Crawl-delay for our agent in seconds, or None when it sets none."""
        try:
            where = robots_url(url)
        except ValueError:
            return None
        if not self.obey:
            return None
        parser = self._rules_for(where, timeout).parser
        return parser.crawl_delay(self.user_agent) if parser else None

    def _rules_for(self, where: str, timeout: float | None) -> _Rules:
        with self._lock:
            site_lock = self._site_locks.setdefault(where, threading.Lock())
        with site_lock:
            if where not in self._rules:
                self._rules[where] = self._fetch_with_retries(
                    where, self.timeout if timeout is None else timeout
                )
                if problem := self._rules[where].problem:
                    log.warning("%s %s: everything there is disallowed", where, problem)
            return self._rules[where]

    def _fetch_with_retries(self, where: str, timeout: float) -> _Rules:
        """A server error or a dropped connection is asked again with backoff before the
        site counts as unreachable; a time-out (a hanging robots.txt means no) and a refused
        redirect are final."""
        for attempt in range(self.retries + 1):
            rules = self._fetch(where, timeout)
            if not rules.problem or rules.final or attempt == self.retries:
                return rules
            time.sleep(self.backoff_seconds * 2**attempt)  # backing off for the site's sake
        return rules

    def _fetch(self, where: str, timeout: float) -> _Rules:
        """One fetch of *where*, its redirects followed by hand within *timeout* in all."""
        deadline, target = time.monotonic() + timeout, where
        own_host = urlsplit(where).hostname
        timed_out = _Rules(problem=f"timed out after {timeout:g} s", final=True)
        for _ in range(MAX_REDIRECTS + 1):
            hop = "" if target == where else f"its redirect to {target}: "
            try:
                refused = destination_problem(target, own_host)  # never for *where* itself
            except (OSError, UnicodeError) as exc:  # the name does not resolve
                return _Rules(problem=f"unreachable ({hop}{exc})")
            if refused:
                problem = f"unreachable (its redirect to {target} is refused: {refused})"
                return _Rules(problem=problem, final=True)
            left = deadline - time.monotonic()
            if left <= 0:
                return timed_out
            request = urllib.request.Request(target, headers={"User-Agent": FETCH_USER_AGENT})
            try:
                with NO_REDIRECTS.open(request, timeout=left) as response:
                    body = self._read_capped(response, deadline)
            except urllib.error.HTTPError as exc:
                if location := redirect_target(exc, target):
                    target = location
                    continue
                if exc.code < 500 and exc.code != 429:  # Google counts 429 as a server error
                    return _Rules()  # 404, 410, 403...: the site has no rules for us
                return _Rules(problem=f"unreachable ({hop}HTTP {exc.code})")
            except TimeoutError:
                return timed_out
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, TimeoutError):
                    return timed_out
                return _Rules(problem=f"unreachable ({hop}{exc.reason})")
            except (OSError, http.client.HTTPException) as exc:
                return _Rules(problem=f"unreachable ({hop}{exc.__class__.__name__}: {exc})")
            text = body.decode("utf-8-sig", errors="replace")  # -sig: Protego chokes on a BOM
            return _Rules(parser=Protego.parse(text))
        log.warning("%s: more than %d redirects: taken as no robots.txt", where, MAX_REDIRECTS)
        return _Rules()

    def _read_capped(self, response: http.client.HTTPResponse, deadline: float) -> bytes:
        """At most MAX_BYTES, by *deadline* (crawler.addresses.read_capped): a site trickling
        bytes must not hold a session forever."""
        data = read_capped(response, MAX_BYTES, deadline)
        if len(data) > MAX_BYTES:  # drop the cut line: half a rule may be another rule
            data = data[: data.rfind(b"\n", 0, MAX_BYTES) + 1]
        return data
