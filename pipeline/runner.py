"""One pipeline run: crawl -> classify -> match -> report, recorded in pipeline_runs (our source
of truth: APScheduler runs a job at most once, so we keep our own record of what happened)."""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from classifier.training import TrainConfig
from crawler.browser import BrowserConfig
from db.store import Store
from pipeline.classifying import classify_pending, ensure_model, matching_problem
from pipeline.config import EXTRA_STEPS, STEPS, ServiceConfig
from pipeline.crawling import CrawlOptions, ShopCrawlResult, crawl_shops
from pipeline.errors import PipelineError, TrainingStopped
from pipeline.home_lock import working_on
from pipeline.matching import match_offers
from pipeline.output import write_rows_csv, write_text_atomic
from pipeline.report import comparison, report_columns, report_rows
from pipeline.report_html import render_html
from pipeline.retraining import retrain_if_due
from pipeline.settings import Home
from pipeline.shops import UnknownShop, resolve_specs

log = logging.getLogger(__name__)


# the names write_report gives: only these are pruned (the folder may hold the user's own
# report-2019-q3.html, and a name sorting after the stamps must not outlive a new report)
WRITTEN = re.compile(r"report-\d{8}T\d{12}Z\.(html|csv)")


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    status: str
    counts: dict
    error: str | None = None


def write_report(home: Home, store: Store, config: ServiceConfig) -> Path:
    """The comparison as one HTML page (and CSV when `report.csv` is on) in the report
    folder; only the newest `report_keep` of each kind are kept. Returns the HTML path."""
    folder = home.root / config.report_folder
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    rows = comparison(store)
    path = folder / f"report-{stamp}.html"
    write_text_atomic(path, render_html(store, rows, store.shop_names()))
    kinds = ["html"]
    if config.report_csv:
        write_rows_csv(path.with_suffix(".csv"), report_columns(), report_rows(rows))
        kinds.append("csv")
    for kind in kinds:
        ours = sorted(p for p in folder.glob(f"report-*.{kind}") if WRITTEN.fullmatch(p.name))
        for old in ours[: -config.report_keep]:
            old.unlink(missing_ok=True)
    return path


def run_pipeline(
    home: Home,
    config: ServiceConfig,
    steps: tuple[str, ...] = STEPS,
    shops: tuple[str, ...] = (),
    kind: str = "pipeline",
    stop: threading.Event | None = None,
    progress=None,
) -> RunOutcome:
    """Run *steps* in order now, once no other process works on the home (`working_on`:
    this waits for it). A stop request ends the run after the current page
    ('stopped'); an error, or a crawl in which every shop failed, ends it 'failed' (the steps
    after it are not run); all are recorded before returning. A crawl in which some shops
    failed or were partly crawled goes on and ends 'partial', those shops named in the run's
    error."""
    home.create()
    steps = tuple(s for s in STEPS + EXTRA_STEPS if s in steps)
    with working_on(home, f"{kind} run", stop), Store(home.database) as store:
        run_id = store.start_pipeline_run(kind)
        counts: dict = {"steps": list(steps), "seconds": {}}
        try:
            status, error = _run_steps(
                home, config, store, run_id, steps, shops, stop, counts, progress
            )
        except TrainingStopped as exc:
            store.finish_pipeline_run(run_id, "stopped", counts, f"stopped on request: {exc}")
            return RunOutcome(run_id, "stopped", counts, f"stopped on request: {exc}")
        except BaseException as exc:
            stopped = isinstance(exc, KeyboardInterrupt)
            store.finish_pipeline_run(
                run_id, "stopped" if stopped else "failed", counts, str(exc) or type(exc).__name__
            )
            raise
        store.finish_pipeline_run(run_id, status, counts, error)
        return RunOutcome(run_id, status, counts, error)


def crawl_verdict(results: list[ShopCrawlResult]) -> tuple[str | None, str | None]:
    """What the shops' crawl results mean for the run: (status that ends it, or None to go
    on; error to record). Every shop failed: 'failed'. A shop stopped: 'stopped'. Some shops
    failed or were partly crawled: go on, naming them."""
    if any(r.status == "stopped" for r in results):
        return "stopped", "stopped on request"
    failed = [r for r in results if r.status == "failed"]
    if results and len(failed) == len(results):
        return "failed", f"every shop failed ({_first_error(failed)})"
    troubled = [r for r in results if r.status != "ok"]
    if not troubled:
        return None, None
    shops = ", ".join(f"{r.shop} {r.status}" for r in troubled)
    return None, f"crawl: {shops} ({_first_error(troubled)})"


def _first_error(results: list[ShopCrawlResult]) -> str:
    first = results[0]
    return first.error or f"{first.shop}: {first.status}"


def _run_steps(
    home, config, store, run_id, steps, shops, stop, counts, progress
) -> tuple[str, str | None]:
    started = time.perf_counter()
    model = None
    note = None  # what went wrong in a run that goes on, to end 'partial'
    for step in steps:
        if stop and stop.is_set():
            return "stopped", "stopped on request"
        if step == "crawl":
            try:
                specs = resolve_specs(home, shops or config.shops, base_urls=config.base_urls)
            except UnknownShop as exc:  # a name from pricelens.toml: say where it is written
                written = sorted(set(exc.names) & set(config.unknown_shops(exc.known)))
                if written:
                    raise PipelineError(
                        config.unknown_shop_problem(written[0], exc.known)
                    ) from None
                raise
            browser = BrowserConfig(config.chromedriver, config.chrome, config.remote_url)
            options = CrawlOptions(sessions=config.sessions, browser=browser)
            results = crawl_shops(home, specs, options, run_id, progress, stop)
            counts["offers"] = sum(r.offers for r in results)
            counts["price_changes"] = sum(r.price_changes for r in results)
            counts["crawl_failures"] = sum(r.failures for r in results)
            ending, note = crawl_verdict(results)
            if ending:
                return ending, note
        elif step == "classify":
            train = TrainConfig(epochs=config.train_epochs, train_limit=config.train_limit)
            model = ensure_model(store, home, train, progress, stop)
            counts["classified"] = classify_pending(
                store, model, progress=progress, stop=stop
            ).classified
        elif step == "match":
            model = model or store.current_model()
            refusal, warning = matching_problem(store, model) if model else (None, None)
            if refusal:  # the groups stay as they were; the report shows them
                log.warning("match skipped: %s", refusal)
                note = f"{note}; match skipped: {refusal}" if note else f"match skipped: {refusal}"
            else:
                if warning:
                    log.warning("%s", warning)
                counts["groups"] = len(match_offers(store, model.id if model else None))
        elif step == "report":
            counts["report"] = str(write_report(home, store, config))
        elif step == "retrain":
            counts.update(retrain_if_due(store, home, config, stop, progress))
        counts["seconds"][step] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
    return ("partial" if note else "ok"), note
