"""Detail pages fetched, not rendered (`[detail] render = false`, the bundled scroll spec): a
page answering 5xx is fetched again, a 4xx or a page refused by robots.txt fails alone and
is recorded, a fetch that fails in the network is loaded in a tab instead, requests stay
within the shop's concurrency, and every other offer is stored with its price."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace

import pytest

from crawler.spec import load_builtin_spec
from demo.catalog import Catalog
from demo.faults import FaultPlan
from demo.scroll import ScrollShop
from demo.shop import Response
from tests.reliability.conftest import NOTHING_LOST, crawl_served, lost_or_doubled

pytestmark = [pytest.mark.browser, pytest.mark.slow]


class ScriptedShop(ScrollShop):
    """The scroll shop; detail pages in *script* answer the given statuses, one per request,
    before their real page. Counts requests per detail page and the most served at once."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.script: dict[str, list[int]] = {}
        self.encoded: dict[str, tuple[str, str]] = {}  # path -> (charset, where it is said)
        self.disallowed = ""
        self.requests: dict[str, int] = {}
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()
        self.stalled: set[str] = set()  # detail pages that answer only once released
        self.release = threading.Event()

    def stall(self, paths: list[str]) -> None:
        self.stalled.update(paths)

    def handle(self, path, query, cookies=None):
        if path == "/robots.txt" and self.disallowed:
            rules = f"User-agent: *\nDisallow: {self.disallowed}\n"
            return Response(200, "text/plain", rules.encode())
        return super().handle(path, query, cookies)

    def route(self, path, query, cookies):
        if not path.startswith("/item/"):
            return super().route(path, query, cookies)
        with self._lock:
            self.requests[path] = self.requests.get(path, 0) + 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            statuses = self.script.get(path, [])
            status = statuses.pop(0) if statuses else None
        try:
            if path in self.stalled:
                self.release.wait(60)
            if status is not None:
                return Response(status, "text/html", f"<p>error {status}</p>".encode())
            page = super().route(path, query, cookies)
            if path in self.encoded:  # the same page in a legacy charset
                charset, said_in = self.encoded[path]
                html = page.body.decode()
                if said_in == "meta":
                    html = html.replace('<meta charset="utf-8">', f'<meta charset="{charset}">')
                    return Response(200, "text/html", html.encode(charset))
                return Response(200, f"text/html; charset={charset}", html.encode(charset))
            return page
        finally:
            with self._lock:
                self.in_flight -= 1


def shop() -> ScriptedShop:
    return ScriptedShop(Catalog(4, 45), 0, FaultPlan(), False)


def errors(database, run_id: int) -> list[tuple[str, str, str]]:
    with sqlite3.connect(database) as db:
        return db.execute(
            "SELECT step, url, message FROM crawl_errors WHERE crawl_run_id = ? ORDER BY url",
            (run_id,),
        ).fetchall()


def prices(database) -> dict[str, int | None]:
    with sqlite3.connect(database) as db:
        return dict(db.execute("SELECT sku, price FROM offers"))


def test_fetched_detail_pages_are_retried_on_5xx_and_fail_alone_on_4xx(tmp_path):
    served = shop()
    flaky, gone, broken = (served.offers[i] for i in (1, 2, 3))
    served.script = {
        served.detail_path(flaky.sku): [503, 500],  # then the real page
        served.detail_path(gone.sku): [404],
        served.detail_path(broken.sku): [500] * 10,
    }
    home, result, base_url = crawl_served(tmp_path, served, "scroll")
    attempts = 4  # the spec's retries (3) + 1
    assert result.status == "partial" and result.offers == len(served.offers), result
    assert errors(home.database, result.crawl_run_id) == sorted(
        [
            (
                "open_detail",
                base_url + served.detail_path(gone.sku),
                f"scroll: detail page failed at {base_url + served.detail_path(gone.sku)}: "
                "HTTP 404",
            ),
            (
                "open_detail",
                base_url + served.detail_path(broken.sku),
                f"scroll: detail page failed at {base_url + served.detail_path(broken.sku)}: "
                f"HTTP 500 (after {attempts} attempts)",
            ),
        ],
        key=lambda row: row[1],
    )
    assert served.requests[served.detail_path(flaky.sku)] == 3
    assert served.requests[served.detail_path(gone.sku)] == 1  # a 4xx is not asked again
    assert served.requests[served.detail_path(broken.sku)] == attempts
    stored = prices(home.database)
    failed = {gone.sku, broken.sku}
    assert {sku: stored[sku] for sku in stored if sku not in failed} == {
        o.sku: o.price for o in served.offers if o.sku not in failed
    }
    assert stored[gone.sku] is None and stored[broken.sku] is None  # the listing shows none
    assert lost_or_doubled(home.database) == NOTHING_LOST


def test_a_detail_page_robots_txt_disallows_is_never_requested(tmp_path):
    served = shop()
    private = served.offers[0]
    served.disallowed = served.detail_path(private.sku)
    home, result, base_url = crawl_served(tmp_path, served, "scroll")
    assert served.detail_path(private.sku) not in served.requests
    ((step, url, message),) = errors(home.database, result.crawl_run_id)
    assert (step, url) == ("open_detail", base_url + served.detail_path(private.sku)), message
    assert "robots.txt" in message, message
    assert prices(home.database)[private.sku] is None
    assert result.offers == len(served.offers)


@pytest.mark.parametrize("concurrency", [1, 3])
def test_fetches_stay_within_the_shops_concurrency(tmp_path, concurrency):
    served = shop()

    def edit(spec):
        return replace(spec, politeness=replace(spec.politeness, concurrency=concurrency))

    result = crawl_served(tmp_path, served, "scroll", edit=edit).result
    assert result.status == "ok" and result.offers == len(served.offers), result
    assert 1 <= served.most_in_flight <= concurrency
    assert set(served.requests.values()) == {1}  # each detail page fetched once


def test_fetched_pages_are_read_in_the_charset_they_state(tmp_path):
    served = shop()
    by_header, by_meta = served.offers[0], served.offers[1]
    served.encoded = {
        served.detail_path(by_header.sku): ("euc-kr", "header"),
        served.detail_path(by_meta.sku): ("euc-kr", "meta"),
    }
    home, result, _ = crawl_served(tmp_path, served, "scroll")
    assert result.status == "ok", result
    with sqlite3.connect(home.database) as db:
        titles = dict(db.execute("SELECT sku, title FROM offers"))
    assert titles[by_header.sku] == by_header.title
    assert titles[by_meta.sku] == by_meta.title
    assert {sku: p for sku, p in prices(home.database).items()} == {
        o.sku: o.price for o in served.offers
    }


class FetchingDriver:
    """A driver whose fetch calls start the first *starts* pages of each call (None: none)."""

    def __init__(self, starts: int):
        self.starts, self.calls, self.timeouts = starts, [], []

    def execute(self, command, params):
        self.timeouts.append(params)

    def execute_async_script(self, script, urls, concurrency, timeout_ms, budget_ms):
        self.calls.append((urls, concurrency, timeout_ms, budget_ms))
        return [[200, url, "", None] if n < self.starts else None for n, url in enumerate(urls)]


def fetching_shop(driver: FetchingDriver, page_load_timeout: float = 30.0):
    politeness = load_builtin_spec("scroll").politeness

    class Shop:
        spec = replace(
            load_builtin_spec("scroll"),
            politeness=replace(politeness, page_load_timeout=page_load_timeout, concurrency=2),
        )

        def __init__(self):
            self.driver = driver

        def polite(self):
            pass

    return Shop()


def test_fetch_calls_take_what_starts_in_their_budget_and_the_rest_goes_in_the_next(
    monkeypatch,
):
    """A call's script says which pages it did not start (null): they go first in the next
    call, until every page has an answer. Scripts get the page-load time-out plus a margin
    (set once per session), and the budget leaves the call its slack: even at the longest
    page-load time-out (90 s) both end well before the WebDriver client's 120 s."""
    from crawler import unrendered
    from crawler.browser import SCRIPT_MARGIN_S
    from crawler.spec import MAX_PAGE_LOAD_TIMEOUT

    monkeypatch.setattr(unrendered, "MAX_PER_CALL", 4)
    driver = FetchingDriver(starts=3)
    urls = [f"http://shop/item/{i}" for i in range(8)]
    assert [answer[1] for answer in unrendered._fetch(fetching_shop(driver), urls)] == urls
    assert [[u[-1] for u in called] for called, *_ in driver.calls] == [
        ["0", "1", "2", "3"],
        ["3", "4", "5", "6"],
        ["6", "7"],
    ]
    assert {(c, t, b) for _, c, t, b in driver.calls} == {(2, 30_000, 33_000)}
    assert unrendered._fetch(fetching_shop(driver), urls[:2])
    assert driver.timeouts == [{"pageLoad": 30_000, "script": 35_000}]  # once per session
    longest = fetching_shop(FetchingDriver(1), MAX_PAGE_LOAD_TIMEOUT)
    unrendered._fetch(longest, urls[:1])
    ((_, _, _, budget_ms),) = longest.driver.calls
    script_s = longest.driver.timeouts[0]["script"] / 1000
    assert budget_ms / 1000 + unrendered.SCRIPT_SLACK_S == script_s
    assert script_s == MAX_PAGE_LOAD_TIMEOUT + SCRIPT_MARGIN_S < 120


def test_a_fetch_call_that_starts_nothing_fails_its_pages_instead_of_going_round():
    from crawler.unrendered import _fetch

    driver = FetchingDriver(starts=0)
    answers = _fetch(fetching_shop(driver), ["http://shop/item/1", "http://shop/item/2"])
    assert answers == [[None, None, None, "the fetch script started no request"]] * 2
    assert len(driver.calls) == 1  # then loaded in a tab, which says why (fetch_details)


def test_the_fetch_script_starts_no_request_that_could_outlast_its_budget():
    """Requests that never answer, 300 ms time-out, 700 ms budget, one at a time: the
    script starts only those that can time out within the budget and leaves the others
    unstarted (null), for the next call."""
    from crawler.browser import BrowserConfig, BrowserSession
    from crawler.unrendered import FETCH_SCRIPT
    from demo.server import ShopServer

    served = shop()
    stalled = [served.detail_path(offer.sku) for offer in served.offers[:5]]
    served.stall(stalled)
    server = ShopServer(served).start()
    try:
        with BrowserSession(BrowserConfig()) as session:
            session.driver.get(server.base_url + "/robots.txt")  # any page of the shop
            urls = [server.base_url + path for path in stalled]
            answers = session.driver.execute_async_script(FETCH_SCRIPT, urls, 1, 300, 700)
    finally:
        served.release.set()
        server.stop()
    started = [a for a in answers if a is not None]
    assert 1 <= len(started) < len(urls)
    assert answers[len(started) :] == [None] * (len(urls) - len(started))
    assert all(a == [None, None, None, "timed out"] for a in started)
    assert all(served.requests.get(path) for path in stalled[: len(started)])
    assert not any(served.requests.get(path) for path in stalled[len(started) :])
