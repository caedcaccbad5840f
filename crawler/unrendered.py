"""Detail pages fetched, not rendered (`[detail] render = false`): the listing page's own
fetch() requests them (same origin, so the browser's cookies, user agent and network stack),
a whole page of items per WebDriver call, and lxml reads the HTML. A rendered load
costs the browser about 70 ms of CPU; a fetched page about 5 ms (2-core machine).

fetch() hides why a request failed (a dropped connection, a body cut short, a redirect to
another host all read "Failed to fetch"), so such pages are loaded the rendered way instead,
which retries them and records the browser's own error."""

from __future__ import annotations

import logging
from collections.abc import Callable

from selenium.common.exceptions import WebDriverException

from crawler.browser import SCRIPT_MARGIN_S, session_is_dead, use_page_load_timeout
from crawler.detail import DetailResult, failed_detail
from crawler.errors import StepFailed
from crawler.extract import RawItem, complete_from_detail
from crawler.steps import RETRYABLE_STATUS, Browser

log = logging.getLogger(__name__)

# A fetch call may run SCRIPT_MARGIN_S longer than a request's time-out (the session's
# script time-out: crawler.browser). After each worker's first request, requests start only
# while they can end (time out) within that, less SCRIPT_SLACK_S; the rest come back
# unstarted and go first in the next call. So a call never hits the script time-out (nor
# the WebDriver client's, 120 s), however slow the shop, and a page of quick ones takes one.
SCRIPT_SLACK_S = 2.0  # for the call's own start and end
MAX_PER_CALL = 48  # pages per call: its answer's size, and what one failed call costs
Rendered = Callable[[list[tuple[str, RawItem]]], list[DetailResult]]  # items loaded in a tab

# Workers share one queue so that at most *concurrency* requests are in flight; each request
# is aborted after *timeout* ms. A body cut short makes reading it reject: a network error.
# After a worker's first, no request starts after *budget* ms less its time-out: its result
# stays null (unstarted).
FETCH_SCRIPT = r"""
const [urls, concurrency, timeout, budget, done] = arguments;
const results = new Array(urls.length).fill(null);
const started = performance.now();
let next = 0;
// text() would read every page as UTF-8: use the charset of the header, else of a <meta>
function decode(response, bytes) {
  const type = /charset=["']?([\w-]+)/i.exec(response.headers.get('content-type') || '');
  const head = new TextDecoder('latin1').decode(bytes.slice(0, 2048));
  const meta = /<meta[^>]+charset=["']?([\w-]+)/i.exec(head);
  try {
    return new TextDecoder((type || meta || [])[1] || 'utf-8').decode(bytes);
  } catch (error) {  // a charset the browser does not know
    return new TextDecoder('utf-8').decode(bytes);
  }
}
async function worker() {
  let first = true;
  while (next < urls.length && (first || performance.now() - started + timeout <= budget)) {
    first = false;
    const i = next++;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeout);
    try {
      const response = await fetch(urls[i], {
        credentials: 'same-origin', signal: abort.signal,
        headers: {Accept: 'text/html,application/xhtml+xml'},
      });
      results[i] = [response.status, response.url, decode(response, await response.arrayBuffer()),
                    null];
    } catch (error) {
      results[i] = [null, null, null, abort.signal.aborted ? 'timed out' : String(error)];
    } finally {
      clearTimeout(timer);
    }
  }
}
Promise.allSettled(Array.from({length: concurrency}, worker)).then(() => done(results));
"""


def fetch_details(
    browser: Browser, items: list[tuple[str, RawItem]], rendered: Rendered
) -> list[DetailResult]:
    """Every item completed from its fetched detail page, in order. 5xx/429 are retried with
    backoff; a page whose fetch failed goes to *rendered* (a load in a browser tab); a page
    that still fails, is refused (robots.txt, another host) or answers 4xx keeps the item as
    the listing showed it, with the failure."""
    results: dict[int, DetailResult] = {}
    pending: list[int] = []
    for index, (link, item) in enumerate(items):
        try:
            browser.guard(link, "open_detail")
            pending.append(index)
        except StepFailed as exc:
            results[index] = failed_detail(browser.spec.name, link, item, str(exc))
    unfetched: list[int] = []
    retries = browser.spec.politeness.retries
    for attempt in range(retries + 1):
        retry: list[int] = []
        # the pacer's delay, not only the spec's: the guard has held it to robots.txt's
        # Crawl-delay by now
        answers = _fetch(browser, [items[i][0] for i in pending], browser.pacer.delay)
        for index, answer in zip(pending, answers, strict=True):
            link, item = items[index]
            status, final_url, html, error = answer
            if error:
                unfetched.append(index)
                continue
            problem = _problem(browser, link, status, final_url)
            if problem is None:
                results[index] = DetailResult(
                    link, complete_from_detail(item, html, browser.spec, link)
                )
            elif status not in RETRYABLE_STATUS:
                results[index] = failed_detail(browser.spec.name, link, item, problem, html)
            elif attempt == retries:
                problem = f"{problem} (after {retries + 1} attempts)"
                results[index] = failed_detail(browser.spec.name, link, item, problem, html)
            else:
                retry.append(index)
        if not retry:
            break
        log.info("%s: %d detail pages failed; retry %d", browser.spec.name, len(retry), attempt + 1)
        browser.backoff(attempt)
        pending = retry
    if unfetched:
        log.info("%s: %d detail pages loaded rendered", browser.spec.name, len(unfetched))
        done = rendered([items[i] for i in unfetched])
        results.update(zip(unfetched, done, strict=True))
    return [results[i] for i in range(len(items))]


def _fetch(browser: Browser, urls: list[str], delay: float = 0.0) -> list[list]:
    """[status, final URL, text, error] per URL. With a *delay* between requests (the shop's
    pacer's: its delay_seconds or robots.txt's longer Crawl-delay), one request per call,
    each paced; else *concurrency* at a time, as many per call as start in its budget."""
    if not urls:
        return []
    politeness = browser.spec.politeness
    timeout_ms = int(politeness.page_load_timeout * 1000)
    concurrency, size = (1, 1) if delay > 0 else (max(1, politeness.concurrency), MAX_PER_CALL)
    use_page_load_timeout(browser.driver, politeness.page_load_timeout)  # and scripts'
    budget_ms = int((politeness.page_load_timeout + SCRIPT_MARGIN_S - SCRIPT_SLACK_S) * 1000)
    answers: list[list | None] = [None] * len(urls)
    pending = list(range(len(urls)))
    while pending:
        batch, pending = pending[:size], pending[size:]
        browser.polite()
        try:
            found = browser.driver.execute_async_script(
                FETCH_SCRIPT, [urls[i] for i in batch], concurrency, timeout_ms, budget_ms
            )
        except WebDriverException as exc:
            if session_is_dead(exc):
                raise
            found = [[None, None, None, f"fetch script failed: {exc.msg}"]] * len(batch)
        if all(answer is None for answer in found):  # a page's script in the way: give up
            found = [[None, None, None, "the fetch script started no request"]] * len(batch)
        unstarted = [i for i, answer in zip(batch, found, strict=True) if answer is None]
        for i, answer in zip(batch, found, strict=True):
            answers[i] = answer
        pending = unstarted + pending
    return answers


def _problem(browser: Browser, link: str, status: int, final_url: str | None) -> str | None:
    if not browser.on_shop(final_url or link):
        return f"redirected off the shop's host to {final_url}: not used"
    if status >= 400:
        return f"HTTP {status}"
    return None
