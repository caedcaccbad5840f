"""Sharing a crawl among sessions: the work board hands detail pages to idle sessions within a
shop's concurrency, results go back to the shop's own session in order, a page a helper could
not load goes back to that session, and a shared pacer keeps the shop's delay."""

from __future__ import annotations

import queue
import sqlite3
import threading
from dataclasses import replace

import pytest

import crawler.steps as steps
from crawler.detail import DetailResult
from crawler.engine import CrawledPage, ShopCrawler, _HarvestedPage
from crawler.errors import CrawlStopped
from crawler.extract import RawItem
from crawler.images import PhotoResults
from crawler.sharing import WorkBoard
from crawler.spec import load_builtin_spec
from crawler.steps import Pacer
from db.records import Image, Offer, PhotoSource
from demo.mall import MallSettings, run_mall
from pipeline.crawling import CrawlOptions, crawl_shops, expected_work
from pipeline.settings import Home


def scroll_spec(concurrency: int):
    """The scroll shop with rendered detail pages: fetched ones are never shared."""
    spec = load_builtin_spec("scroll")
    politeness = replace(spec.politeness, concurrency=concurrency)
    return replace(spec, politeness=politeness, detail=replace(spec.detail, render=True))


def items(n: int) -> list[tuple[str, RawItem]]:
    return [(f"http://shop/item/{i}", RawItem({"title": f"item {i}"}, False)) for i in range(n)]


def done(link: str, item: RawItem, by: str) -> DetailResult:
    return DetailResult(link, RawItem(item.fields | {"by": by}, False))


def test_an_idle_session_takes_detail_pages_and_results_come_back_in_order():
    spec = scroll_spec(concurrency=2)
    board = WorkBoard([(0, spec)])
    assert board.next_shop() == (0, spec)
    helper_took = threading.Event()
    taken = []

    def helper():
        while (task := board.take()) is not None:
            link, item = task.key
            taken.append(link)
            helper_took.set()
            board.finish(task, done(link, item, "helper"))

    thread = threading.Thread(target=helper)
    thread.start()

    def own(link, item):
        helper_took.wait()  # the shop's session is busy until the helper has taken one
        return done(link, item, "own")

    results = board.complete(spec, items(6), own)
    board.shop_done(spec)
    thread.join()
    assert [r.link for r in results] == [link for link, _ in items(6)]
    by = [r.item.fields["by"] for r in results]
    assert taken and by.count("helper") == len(taken) and "own" in by


def test_a_shop_with_concurrency_one_gets_no_helper():
    spec = scroll_spec(concurrency=1)
    board = WorkBoard([(0, spec)])
    board.next_shop()
    looked = threading.Event()
    task = []

    def helper():
        def stop() -> bool:  # look once, then give up
            if looked.is_set():
                return True
            looked.set()
            return False

        task.append(board.take(stop))

    def own(link, item):
        if not looked.is_set():
            thread = threading.Thread(target=helper)
            thread.start()
            thread.join()
        return done(link, item, "own")

    results = board.complete(spec, items(3), own)
    assert task == [None]
    assert {r.item.fields["by"] for r in results} == {"own"}


def test_a_page_a_helper_could_not_load_goes_back_to_the_shops_session():
    spec = scroll_spec(concurrency=2)
    board = WorkBoard([(0, spec)])
    board.next_shop()
    failed = threading.Event()
    again = []

    def helper():
        task = board.take()
        board.finish(task, None)  # e.g. its browser died
        again.append(board.take(lambda: True))  # helpers never take it again
        failed.set()

    thread = threading.Thread(target=helper)
    thread.start()

    def own(link, item):
        failed.wait()  # busy with the first page until the helper gave the second back
        return done(link, item, "own")

    results = board.complete(spec, items(2), own)
    thread.join()
    assert again == [None]
    assert [r.item.fields["by"] for r in results] == ["own", "own"]


def test_helpers_stop_when_every_shop_is_walked():
    spec = scroll_spec(concurrency=2)
    board = WorkBoard([(0, spec)])
    board.next_shop()
    board.shop_done(spec)
    assert board.next_shop() is None and board.take() is None


def test_the_longest_shops_are_walked_first():
    specs = [load_builtin_spec(name) for name in ("classic", "spa", "scroll", "menu")]
    order = sorted(specs, key=expected_work, reverse=True)
    assert [s.name for s in order] == ["menu", "scroll", "classic", "spa"]  # scroll's fetched
    specs[2] = scroll_spec(concurrency=2)  # a rendered detail page per item dwarfs the rest
    order = sorted(specs, key=expected_work, reverse=True)
    assert [s.name for s in order] == ["scroll", "menu", "classic", "spa"]


def test_a_shared_pacer_spaces_requests_from_every_session(monkeypatch):
    now, slept = [100.0], []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(steps.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(steps.time, "sleep", sleep)
    pacer = Pacer(2.0)
    for _ in range(3):  # as if three sessions asked at the same moment
        pacer.wait()
    assert slept == [2.0, 2.0]


@pytest.mark.browser
def test_two_sessions_on_one_shop_with_detail_pages_store_every_offer(tmp_path):
    home = Home(tmp_path / "home").create()
    with run_mall(MallSettings(seed=5, products=60, shops=("scroll",))) as mall:
        spec = scroll_spec(concurrency=2).with_base_url(mall.base_urls["scroll"])
        (result,) = crawl_shops(home, [spec], CrawlOptions(sessions=2))
        expected = {o["sku"]: o["price"] for o in mall.answer_key()["shops"]["scroll"]["offers"]}
    assert result.status == "ok" and result.offers == len(expected)
    with sqlite3.connect(home.database) as db:
        stored = dict(db.execute("SELECT sku, price FROM offers"))
        runs = db.execute("SELECT COUNT(*) FROM crawl_runs").fetchone()[0]
    assert stored == expected and runs == 1


def test_every_session_of_a_crawl_skips_a_page_that_killed_a_browser_twice():
    spec = load_builtin_spec("classic")
    board = WorkBoard([(0, spec)])
    suspects = board.suspects(spec)
    assert board.suspects(spec) is suspects  # one per shop, whichever session asks
    assert board.suspects(load_builtin_spec("spa")) is not suspects
    assert suspects.died_at("http://shop/p/1") is False  # once: maybe the browser's fault
    assert suspects.died_at("http://shop/p/2") is False
    assert suspects.died_at("http://shop/p/1") is True and suspects.avoid == {"http://shop/p/1"}


def test_menu_links_helpers_walk_report_through_the_inbox_and_a_failed_one_goes_back():
    """walk_links: a helper walks a link in its browser and posts what it found, which the
    shop's session drains; a link the helper could not walk is walked by the shop's own
    session; the inbox is drained once more at the end."""
    spec = scroll_spec(concurrency=2)
    board = WorkBoard([(0, spec)])
    board.next_shop()
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    drained, walked_here, helped = [], [], threading.Event()

    def elsewhere(browser, session, link):
        board.post(inbox, ("page", link))

    def helper():
        task = board.take()
        board.finish(task, task.elsewhere(None, None))
        board.finish(board.take(), None)  # e.g. its browser died: back to the shop's session
        helped.set()

    def here(link):
        if not walked_here:
            threading.Thread(target=helper).start()
            helped.wait()  # busy with the first link until the helper is through
        walked_here.append(link)

    def drain():
        while not inbox.empty():
            drained.append(inbox.get())

    board.walk_links(spec, ["a", "b", "c"], here, elsewhere, inbox, drain)
    assert walked_here == ["a", "c"] and drained == [("page", "b")]


def test_a_shop_session_that_stops_still_stores_what_helpers_on_its_links_read():
    """walk_links ended by an error (a stop) waits for the links helpers are walking: what
    they post after the shop's session stopped is drained, not left in the inbox."""
    spec = scroll_spec(concurrency=2)
    board = WorkBoard([(0, spec)])
    board.next_shop()
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    drained, taken, helper_took, stopped = [], [], threading.Event(), threading.Event()

    def helper():
        task = board.take()
        taken.append(task.key)
        helper_took.set()
        stopped.wait()  # the shop's session has given up waiting for its own link
        board.post(inbox, ("page", task.key))
        board.finish(task, True)

    def here(link):
        helper_took.wait()
        stopped.set()
        raise CrawlStopped("stopped after page 1")

    def drain():
        while not inbox.empty():
            drained.append(inbox.get())

    thread = threading.Thread(target=helper)
    thread.start()
    with pytest.raises(CrawlStopped):
        board.walk_links(spec, ["a", "b"], here, None, inbox, drain)
    thread.join()
    assert drained == [("page", taken[0])] and inbox.empty()


def photo(url: str) -> Image:
    return Image(f"sha-{url}", f"/images/{url}", 1, 1, "PNG", 1, url)


def test_a_product_a_helper_stored_is_dropped_from_the_page_this_session_still_holds(
    tmp_path,
):
    """Two categories list product P: this session's last page of one waits for its photos
    while a helper's page of the other, with P, is drained and stored. The waiting page is
    then stored without P (nor P's photo), and a helper's listing stopped at max_pages
    marks the crawl capped."""
    stored: list[CrawledPage] = []
    crawler = ShopCrawler(load_builtin_spec("menu"), None, tmp_path, stored.append, stored.append)
    p, q, r = (Offer("menu", f"http://shop/goods/{n}", n, 100, "KRW", image_url=n) for n in "pqr")
    p, q, r = (replace(o, image_sha256=f"sha-{o.image_url}") for o in (p, q, r))
    photos = PhotoResults(
        images={u: photo(u) for u in "pq"},
        sources={u: PhotoSource(u, f"sha-{u}") for u in "pq"},
    )
    crawler._waiting = _HarvestedPage(
        1, "http://shop/c/tees", [p, q], [p.url, q.url], [], lambda: photos
    )
    helper_page = CrawledPage(1, "http://shop/c/pants", [r, p], [photo("r"), photo("p")], {})
    crawler._inbox.put(("page", helper_page))
    crawler._inbox.put(("capped", None))
    crawler._drain()
    crawler._hand_over()
    assert [[o.url for o in page.offers] for page in stored] == [[r.url, p.url], [q.url]]
    assert [i.sha256 for i in stored[1].images] == ["sha-q"]
    assert [source.url for source in stored[1].photo_sources] == ["q"]
    assert (crawler.summary.pages, crawler.summary.offers, crawler.summary.capped) == (2, 3, True)
