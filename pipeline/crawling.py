"""The crawl stage: each shop in its own browser session and crawl run; a failing page or
shop is recorded and the others go on."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from crawler.browser import BrowserConfig, browser_session
from crawler.engine import CrawledPage, PageFailure, crawl_shop
from crawler.spec import ShopSpec
from db.store import Store
from pipeline.settings import Home

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShopCrawlResult:
    shop: str
    crawl_run_id: int
    status: str
    pages: int
    offers: int
    failures: int
    error: str | None = None


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


def crawl_one_shop(
    store: Store,
    spec: ShopSpec,
    home: Home,
    browser: BrowserConfig,
    pipeline_run_id: int | None = None,
    progress=None,
) -> ShopCrawlResult:
    run_id = store.start_crawl_run(spec.name, spec.base_url, pipeline_run_id)
    snapshots = home.crawl_errors / f"run-{run_id}"
    failures: list[PageFailure] = []
    task = progress.add_task(f"crawl {spec.name}", total=None, status="") if progress else None

    def on_page(page: CrawledPage) -> None:
        store.save_page(run_id, page.offers, page.images, page.shop_labels)
        for problem in page.problems:
            store.record_crawl_error(run_id, problem, url=page.url, step="extract")
        if progress:
            progress.update(task, advance=1, status=f"{page.url} +{len(page.offers)} offers")

    def on_failure(failure: PageFailure) -> None:
        failures.append(failure)
        html, shot = _save_snapshot(snapshots, failure, len(failures))
        store.record_crawl_error(run_id, failure.message, failure.url, failure.step, shot, html)
        log.warning("%s", failure.message)

    try:
        with browser_session(browser) as driver:
            summary = crawl_shop(spec, driver, home.images, on_page, on_failure)
    except Exception as exc:  # a shop that cannot be crawled at all never stops the others
        message = f"{spec.name}: crawl failed: {exc}"
        store.record_crawl_error(run_id, message, spec.base_url, "session")
        store.finish_crawl_run(run_id, "failed", message)
        run = store.crawl_run(run_id)
        return ShopCrawlResult(
            spec.name, run_id, "failed", run["pages"], run["offers"], len(failures) + 1, message
        )
    finally:
        if progress:
            progress.update(task, status="done")
    status = "ok" if not failures else ("partial" if summary.pages else "failed")
    error = failures[0].message if failures else None
    store.finish_crawl_run(run_id, status, error)
    return ShopCrawlResult(
        spec.name, run_id, status, summary.pages, summary.offers, len(failures), error
    )


def crawl_shops(
    store: Store,
    specs: list[ShopSpec],
    home: Home,
    browser: BrowserConfig,
    pipeline_run_id: int | None = None,
    progress=None,
) -> list[ShopCrawlResult]:
    return [crawl_one_shop(store, spec, home, browser, pipeline_run_id, progress) for spec in specs]
