"""Crawling through a faulty mall: the last good price survives, redirects stay on the shop."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import threading
from dataclasses import replace
from urllib.parse import urlsplit

import pytest

from crawler.browser import BrowserConfig
from crawler.spec import load_builtin_spec
from demo.catalog import Catalog
from demo.classic import ClassicShop
from demo.faults import FaultPlan
from demo.mall import MallSettings, run_mall
from demo.shop import Response
from pipeline.crawling import crawl_shops
from pipeline.settings import Home
from tests.reliability.conftest import NOTHING_LOST, QUICK, crawl_served, lost_or_doubled, serve
from tests.remote_chromedriver import chromedriver_on_loopback

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PRICE_FAULTS = {"bad_price", "missing_price"}
# every request and page fault, and half the prices unreadable
FAULTS = (
    "http500=0.15,http503=0.1,http429=0.1,drop=0.1,truncate=0.1,slow=0.05,"
    "bad_price=0.3,missing_price=0.2,js_error=0.3,modal_reappears=0.3,corrupt_image=0.1"
)


def test_the_last_good_price_is_kept_when_a_faulty_day_cannot_read_it(tmp_path):
    home = Home(tmp_path / "home").create()
    crawled = {}
    for day, faults in ((0, ""), (1, FAULTS)):
        settings = MallSettings(seed=4, products=45, day=day, shops=("classic",), faults=faults)
        with run_mall(settings) as mall:
            spec = load_builtin_spec("classic").with_base_url(mall.base_urls["classic"])
            result = crawl_shops(home, [spec], QUICK)[0]
            crawled[day] = (
                result,
                {o["sku"]: o for o in mall.answer_key()["shops"]["classic"]["offers"]},
            )
    (first, day0), (second, day1) = crawled[0], crawled[1]
    assert first.status == "ok" and second.status in ("ok", "partial"), second
    assert any(PRICE_FAULTS & set(o["faults"]) for o in day1.values())
    db = sqlite3.connect(home.database)
    stored = dict(db.execute("SELECT sku, price FROM offers"))
    today = {
        sku: (price, error, raw)
        for sku, price, error, raw in db.execute(
            "SELECT o.sku, p.price, p.price_error, p.price_raw FROM price_observations p "
            "JOIN offers o ON o.id = p.offer_id WHERE p.crawl_run_id = ?",
            (second.crawl_run_id,),
        )
    }
    assert len(today) == second.offers  # every page stored whole
    for sku, (price, error, raw) in today.items():
        offer = day1[sku]
        if PRICE_FAULTS & set(offer["faults"]):
            assert price is None and error, sku  # NULL with its reason, never 0
            assert stored[sku] == day0[sku]["price"], sku  # the last good price is kept
            if "bad_price" in offer["faults"]:
                assert raw, sku  # the unreadable text is kept as evidence
        else:
            assert price == offer["price"] == stored[sku], sku
    assert set(stored) == set(day0)  # no offer lost
    assert lost_or_doubled(home.database) == NOTHING_LOST


class RedirectingShop(ClassicShop):
    """Classic, except that listing page 2 answers with a redirect to *target*."""

    target = ""

    def route(self, path, query, cookies):
        if path == "/products" and query.get("page") == "2":
            return Response(302, "text/plain", b"moved", (("Location", self.target),))
        return super().route(path, query, cookies)


@pytest.mark.parametrize(
    "target",
    [
        "{other}/products?page=2",  # another host (the same pages, served on another port)
        "file:///etc/passwd",
        "data:text/html,<ul><li class=product><a href=/x>x</a></li></ul>",
        "javascript:alert(1)",
        "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service (SSRF)
    ],
)
def test_a_redirect_off_the_shop_is_not_followed_and_is_recorded(tmp_path, target):
    shop = RedirectingShop(Catalog(4, 45), 0, FaultPlan(), False)
    elsewhere = serve(ClassicShop(Catalog(4, 45), 0, FaultPlan(), False))
    shop.target = target.format(other=elsewhere.base_url)
    home, result, base_url = crawl_served(tmp_path, shop, also=[elsewhere])
    port = urlsplit(base_url).port
    assert result.status == "partial" and result.pages == 1, result
    db = sqlite3.connect(home.database)
    hosts = {urlsplit(url).netloc for (url,) in db.execute("SELECT url FROM offers")}
    assert hosts == {f"127.0.0.1:{port}"}  # nothing was taken from where it went
    errors = [m for (m,) in db.execute("SELECT message FROM crawl_errors")]
    assert len(errors) == 1 and "next_page" in errors[0], errors  # recorded, with its step
    assert lost_or_doubled(home.database) == NOTHING_LOST
    if target.startswith("{other}"):  # the page it landed on is another site's: not kept
        saved = db.execute("SELECT html_path, screenshot_path FROM crawl_errors").fetchall()
        assert saved == [(None, None)]


class CutFirstListingPage(FaultPlan):
    """The first answer for a listing page stops halfway through its body (Content-Length
    says more): Chromium may render the half that came, items and all."""

    def http_fault(self, shop, path, attempt):
        return "truncate" if path == "/products" and attempt == 0 else None


@pytest.mark.parametrize("remote", [False, True], ids=["local", "remote"])
def test_a_listing_page_cut_short_is_loaded_again_never_stored_half(tmp_path, remote):
    """Through a remote WebDriver too: its performance log is read by the W3C command."""
    shop = ClassicShop(Catalog(4, 45), 0, CutFirstListingPage(), False)
    with contextlib.ExitStack() as stack:
        options = QUICK
        if remote:
            url = stack.enter_context(chromedriver_on_loopback())
            options = replace(QUICK, browser=BrowserConfig(remote_url=url))
        home, result, base_url = crawl_served(tmp_path, shop, options=options)
    truth = {o["sku"]: o["price"] for o in shop.answer_key(base_url)}
    assert result.status == "ok" and result.failures == 0, result
    db = sqlite3.connect(home.database)
    stored = dict(db.execute("SELECT sku, price FROM offers"))
    assert stored == truth  # every offer, every price: the half page was not taken
    assert lost_or_doubled(home.database) == NOTHING_LOST


class InterruptingProgress:
    """A progress display that presses Ctrl-C when the first page has been stored: in this
    thread, or (*signal*) as a real SIGINT, which only the main thread receives."""

    def __init__(self, signal: bool = False):
        self.signal, self.pressed = signal, False

    def add_task(self, *args, **kwargs) -> int:
        return 0

    def update(self, task, advance: int = 0, **fields) -> None:
        if advance and not self.pressed:
            self.pressed = True
            if not self.signal:
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture
def sigint_raises():
    """Ctrl-C raises KeyboardInterrupt even where the tests were started with SIGINT ignored
    (a shell's background job, nohup), as Python then leaves it ignored."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize("sessions", [1, 2])
def test_an_interrupted_crawl_records_its_run_as_ended_with_what_it_stored(
    tmp_path, sessions, sigint_raises
):
    home = Home(tmp_path / "home").create()
    settings = MallSettings(seed=4, products=45, shops=("classic", "spa"))
    with run_mall(settings) as mall:
        specs = [load_builtin_spec(s).with_base_url(mall.base_urls[s]) for s in ("classic", "spa")]
        options = replace(QUICK, sessions=sessions)
        with pytest.raises(KeyboardInterrupt):
            crawl_shops(home, specs, options, progress=InterruptingProgress(sessions > 1))
    db = sqlite3.connect(home.database)
    runs = db.execute("SELECT status, finished_at, pages, offers FROM crawl_runs").fetchall()
    assert runs and all(finished for _, finished, _, _ in runs), runs  # none left "running"
    # one session: the run under way is "interrupted" at once; with two, the main thread
    # asks both sessions to stop after their current page
    ended = {"interrupted"} if sessions == 1 else {"stopped", "ok"}
    assert {status for status, *_ in runs} <= ended, runs
    stored = db.execute("SELECT COUNT(*) FROM offers").fetchone()[0]
    assert stored == sum(offers for *_, offers in runs) > 0  # what was stored is counted


@pytest.mark.parametrize("sessions", [1, 2])
def test_a_stop_ends_the_shops_under_way_and_begins_no_other(tmp_path, sessions):
    class StoppingProgress(InterruptingProgress):
        def update(self, task, advance: int = 0, **fields) -> None:
            if advance:
                stop.set()  # as `serve` does on SIGTERM

    stop = threading.Event()
    home = Home(tmp_path / "home").create()
    names = ("classic", "spa", "scroll", "menu")
    with run_mall(MallSettings(seed=4, products=45, shops=names)) as mall:
        specs = [load_builtin_spec(s).with_base_url(mall.base_urls[s]) for s in names]
        options = replace(QUICK, sessions=sessions)
        results = crawl_shops(home, specs, options, progress=StoppingProgress(), stop=stop)
    assert 1 <= len(results) <= sessions < len(names)  # only the shops begun before the stop
    assert {r.status for r in results} <= {"stopped", "ok"}, results
    db = sqlite3.connect(home.database)
    assert db.execute("SELECT COUNT(*) FROM crawl_runs").fetchone()[0] == len(results)


class RecordingProgress:
    """Keeps every status line a shop's progress bar shows."""

    def __init__(self):
        self.statuses: list[str] = []

    def add_task(self, *args, **kwargs) -> int:
        return 0

    def update(self, task, advance: int = 0, status: str = "", **fields) -> None:
        self.statuses.append(status)


def test_a_shops_progress_line_counts_its_offers_and_errors_so_far(tmp_path):
    shop = ClassicShop(Catalog(4, 45), 0, FaultPlan(), False)
    server = serve(shop)
    try:
        home = Home(tmp_path / "home").create()
        spec = load_builtin_spec("classic").with_base_url(server.base_url)
        # a second start URL past the last page: one failure after the listing's pages
        spec = replace(spec, start_urls=(*spec.start_urls, "/no-such-page"))
        progress = RecordingProgress()
        (result,) = crawl_shops(home, [spec], QUICK, progress=progress)
    finally:
        server.stop()
    *walking, last = progress.statuses
    counts = [int(status.split()[0]) for status in walking]
    assert counts == sorted(counts) and counts[-1] == result.offers > counts[0]  # totals
    assert result.failures == 1 and last == f"done: {result.offers} offers, 1 pages failed"
