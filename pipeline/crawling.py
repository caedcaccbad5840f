"""The crawl stage: shops spread over N parallel browser sessions, each shop in its own crawl
run; a session with no shop left loads other shops' detail pages and walks their category
listings (crawler.sharing); a failing page or shop is recorded and the others go on."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

from crawler.browser import BrowserConfig
from crawler.engine import CrawledPage, PageFailure, crawl_shop
from crawler.errors import CrawlStopped
from crawler.launcher import BrowserLauncher
from crawler.robots import RobotsPolicy
from crawler.sharing import Helper, WorkBoard
from crawler.spec import MAX_PAGE_LOAD_TIMEOUT, ShopSpec
from db.store import Store
from pipeline.settings import Home

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CrawlOptions:
    sessions: int = 1  # browser sessions in parallel: shops, detail pages, menu listings spread
    browser: BrowserConfig = BrowserConfig()
    max_pages: int | None = None  # overrides every spec's pagination.max_pages
    obey_robots: bool = True
    recycle_after: int | None = 500  # restart a browser after this many page loads
    wait_timeout: float | None = None  # overrides every spec's politeness.wait_timeout
    backoff_seconds: float | None = None  # overrides every spec's politeness.backoff_seconds
    robots_timeout: float | None = None  # overrides every spec's politeness.robots_timeout
    page_load_timeout: float | None = None  # overrides every spec's politeness.page_load_timeout


@dataclass(frozen=True)
class ShopCrawlResult:
    shop: str
    crawl_run_id: int
    status: str
    pages: int
    offers: int
    failures: int  # pages (or the whole shop) that failed
    new: int = 0
    price_changes: int = 0
    error: str | None = None
    photos: int = 0  # photos the offers show, fetched or found unchanged
    photos_unchanged: int = 0  # answered 304: not downloaded again
    errors: int = 0  # rows in crawl_errors: failures and item/photo problems


def _save_snapshot(folder: Path, failure: PageFailure, index: int) -> tuple[str | None, ...]:
    folder.mkdir(parents=True, exist_ok=True)
    html_path = shot_path = None
    if failure.html is not None:
        html_path = folder / f"{index:04d}-{failure.step}.html"
        html_path.write_text(failure.html, encoding="utf-8")
    if failure.screenshot_png is not None:
        shot_path = folder / f"{index:04d}-{failure.step}.png"
        shot_path.write_bytes(failure.screenshot_png)
    return (str(html_path) if html_path else None, str(shot_path) if shot_path else None)


def apply_overrides(spec: ShopSpec, options: CrawlOptions) -> ShopSpec:
    if options.max_pages:
        spec = replace(spec, pagination=replace(spec.pagination, max_pages=options.max_pages))
    politeness = {
        key: value
        for key in ("wait_timeout", "backoff_seconds", "robots_timeout", "page_load_timeout")
        if (value := getattr(options, key)) is not None
    }
    if (options.page_load_timeout or 0) > MAX_PAGE_LOAD_TIMEOUT:
        raise ValueError(f"page_load_timeout: at most {MAX_PAGE_LOAD_TIMEOUT:g} s")
    if politeness:
        spec = replace(spec, politeness=replace(spec.politeness, **politeness))
    return spec


def crawl_one_shop(
    home: Home,
    spec: ShopSpec,
    options: CrawlOptions,
    robots: RobotsPolicy,
    pipeline_run_id: int | None = None,
    progress=None,
    stop: threading.Event | None = None,
    board: WorkBoard | None = None,
    *,
    launcher: BrowserLauncher,
) -> ShopCrawlResult:
    """One shop, one crawl run, one browser session from *launcher* (helpers on *board* may
    load its detail pages and walk its menu's listings, and send what they read here); the
    store connection is this thread's, and only this thread writes the run."""
    spec = apply_overrides(spec, options)
    with Store(home.database) as store:
        run_id = store.start_crawl_run(spec.name, spec.base_url, pipeline_run_id)
        snapshots = home.crawl_errors / f"run-{run_id}"
        failures: list[PageFailure] = []
        task = progress.add_task(f"crawl {spec.name}", total=None, status="") if progress else None

        known_photos = store.known_photos(spec.name)
        photos = {"photos": 0, "photos_unchanged": 0}  # and, at the end, "errors"
        offers = [0]  # so far, for the progress line

        def show_progress(advance: int = 0, done: bool = False) -> None:
            if progress:
                errors = f", {len(failures)} pages failed" if failures else ""
                status = f"{'done: ' if done else ''}{offers[0]} offers{errors}"
                progress.update(task, advance=advance, status=status)

        def on_page(page: CrawledPage) -> None:
            store.save_page(run_id, page.offers, page.images, page.shop_labels, page.photo_sources)
            photos["photos"] += len(page.photo_sources)
            photos["photos_unchanged"] += page.photos_unchanged
            for problem in page.problems:
                store.record_crawl_error(run_id, problem, url=page.url, step="extract")
            offers[0] += len(page.offers)
            show_progress(advance=1)

        def on_failure(failure: PageFailure) -> None:
            failures.append(failure)
            html, shot = _save_snapshot(snapshots, failure, len(failures))
            store.record_crawl_error(run_id, failure.message, failure.url, failure.step, shot, html)
            log.warning("%s", failure.message)
            show_progress()

        try:
            with launcher.session() as session:
                summary = crawl_shop(
                    spec,
                    session.driver,
                    home.images,
                    on_page,
                    on_failure,
                    robots,
                    session,
                    options.recycle_after,
                    stop.is_set if stop else None,
                    share=board,
                    pacer=board.pacer(spec) if board else None,
                    suspects=board.suspects(spec) if board else None,
                    known_photos=known_photos,
                )
        except CrawlStopped as exc:
            store.finish_crawl_run(run_id, "stopped", str(exc))
            run = store.crawl_run(run_id)
            return ShopCrawlResult(
                spec.name,
                run_id,
                "stopped",
                run["pages"],
                run["offers"],
                len(failures),
                error=str(exc),
                errors=run["errors"],
            )
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (pipeline.cli): the run ends recorded
            store.finish_crawl_run(run_id, "interrupted", "interrupted (Ctrl-C or SIGTERM)")
            raise
        except Exception as exc:  # a shop that cannot be crawled at all never stops the others
            text = str(exc)  # step errors already start with the shop's name
            message = (
                text if text.startswith(f"{spec.name}:") else f"{spec.name}: crawl failed: {text}"
            )
            status = "failed"
            try:
                store.record_crawl_error(run_id, message, spec.base_url, "session")
                run = store.crawl_run(run_id)
                status = "partial" if run["pages"] else "failed"  # what was stored stays
                store.finish_crawl_run(run_id, status, message)
            except Exception:  # the database itself cannot be written (disk full): say so
                log.exception("%s; the run could not be recorded", message)
            run = store.crawl_run(run_id)
            return ShopCrawlResult(
                spec.name,
                run_id,
                status,
                run["pages"],
                run["offers"],
                len(failures) + 1,
                error=message,
                errors=run["errors"],
            )
        finally:
            show_progress(done=True)
        status = "ok" if not failures else ("partial" if summary.pages else "failed")
        error = failures[0].message if failures else None
        store.finish_crawl_run(run_id, status, error, capped=summary.capped)
        changes = store.crawl_run_changes(run_id)
        photos["errors"] = store.crawl_run(run_id)["errors"]
        return ShopCrawlResult(
            spec.name,
            run_id,
            status,
            summary.pages,
            summary.offers,
            len(failures),
            changes["new"],
            changes["price_changes"],
            error,
            **photos,
        )


def expected_work(spec: ShopSpec) -> tuple[bool, bool, bool]:
    """Sort key, largest first: a rendered detail page per item dwarfs a listing; a menu of
    listings comes next, then fetched (unrendered) detail pages. Starting the longest shop
    first keeps it from finishing alone at the end."""
    detail = spec.detail is not None
    return (detail and spec.detail.render, spec.for_each is not None, detail)


def crawl_shops(
    home: Home,
    specs: list[ShopSpec],
    options: CrawlOptions = CrawlOptions(),
    pipeline_run_id: int | None = None,
    progress=None,
    stop: threading.Event | None = None,
) -> list[ShopCrawlResult]:
    """Crawl *specs* with up to ``options.sessions`` browsers at once; results in spec order.
    Each session walks one shop at a time, longest first; with no shop left it helps with
    the detail pages and menu listings of shops still being walked. Setting *stop* ends
    every shop's crawl after its current page, and shops not begun are left out of the
    results."""
    stop = stop or threading.Event()
    robots = RobotsPolicy(obey=options.obey_robots, backoff_seconds=options.backoff_seconds or 0.5)
    with BrowserLauncher(options.browser, needed=len(specs)) as launcher:
        if options.sessions <= 1:
            return [
                crawl_one_shop(
                    home, spec, options, robots, pipeline_run_id, progress, stop, launcher=launcher
                )
                for spec in specs
                if not stop.is_set()  # a shop not begun before the stop is not begun at all
            ]
        return _crawl_in_sessions(
            home, specs, options, robots, pipeline_run_id, progress, stop, launcher
        )


def _crawl_in_sessions(
    home: Home,
    specs: list[ShopSpec],
    options: CrawlOptions,
    robots: RobotsPolicy,
    pipeline_run_id: int | None,
    progress,
    stop: threading.Event,
    launcher: BrowserLauncher,
) -> list[ShopCrawlResult]:
    order = sorted(range(len(specs)), key=lambda i: expected_work(specs[i]), reverse=True)
    board = WorkBoard([(i, specs[i]) for i in order])
    results: list[ShopCrawlResult | None] = [None] * len(specs)

    def session() -> None:
        while not stop.is_set() and (picked := board.next_shop()) is not None:
            index, spec = picked
            try:
                results[index] = crawl_one_shop(
                    home,
                    spec,
                    options,
                    robots,
                    pipeline_run_id,
                    progress,
                    stop,
                    board,
                    launcher=launcher,
                )
            finally:
                board.shop_done(spec)
        should_stop = stop.is_set if stop else None
        Helper(board, options.browser, robots, options.recycle_after, should_stop).run()

    with ThreadPoolExecutor(max_workers=options.sessions, thread_name_prefix="crawl") as pool:
        futures = [pool.submit(session) for _ in range(options.sessions)]
        try:
            for future in futures:
                future.result()
        except KeyboardInterrupt:  # Ctrl-C reaches this thread only: stop the sessions too
            stop.set()  # each ends after its current page, its run recorded as stopped
            wait(futures)
            raise
    return [result for result in results if result is not None]  # None: not begun (stop)
