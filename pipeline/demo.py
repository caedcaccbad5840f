"""`pricelens demo`: start the demo mall, crawl it, train if needed, classify, match, report."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

from classifier.training import TrainConfig
from crawler.spec import builtin_spec_paths, load_builtin_spec
from db.store import Store
from demo.mall import MallSettings, run_mall
from pipeline.classifying import classify_pending, ensure_model
from pipeline.crawling import CrawlOptions, ShopCrawlResult, crawl_shops
from pipeline.errors import PipelineError
from pipeline.home_lock import working_on
from pipeline.matching import match_offers
from pipeline.runner import crawl_verdict
from pipeline.settings import Home

log = logging.getLogger(__name__)


def crawlable(mall: MallSettings) -> MallSettings:
    """Only the demo shops that have a built-in spec (the crawler can walk them)."""
    specs = builtin_spec_paths()
    return replace(mall, shops=tuple(name for name in mall.shops if name in specs))


@dataclass(frozen=True)
class DemoResult:
    pipeline_run_id: int
    crawls: list[ShopCrawlResult]
    model_version: str
    trained: bool
    classified: int
    groups: int
    shops: list[str]


def run_demo(
    home: Home,
    mall: MallSettings = MallSettings(),
    train: TrainConfig = TrainConfig(),
    crawl: CrawlOptions = CrawlOptions(),
    progress=None,
) -> DemoResult:
    home.create()
    with working_on(home, "demo"), Store(home.database) as store:
        run_id = store.start_pipeline_run("demo")
        seconds: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            seconds[stage] = round(time.perf_counter() - clock, 2)
            clock = time.perf_counter()

        try:
            with run_mall(crawlable(mall)) as running:
                running.write_answer_key(home.answer_key)
                specs = [
                    load_builtin_spec(name).with_base_url(url)
                    for name, url in running.base_urls.items()
                ]
                crawls = crawl_shops(home, specs, crawl, run_id, progress)
            lap("crawl")
            ending, error = crawl_verdict(crawls)
            if ending == "failed":  # no training, and no comparison of older crawls' offers
                raise PipelineError(f"{error}; nothing was trained, classified or matched")
            had_model = store.current_model()
            model = ensure_model(store, home, train, progress)
            lap("model")
            classified = classify_pending(store, model, train.device, progress=progress).classified
            lap("classify")
            groups = match_offers(store, model.id)
            lap("match")
        except BaseException as exc:
            status = "stopped" if isinstance(exc, KeyboardInterrupt) else "failed"
            store.finish_pipeline_run(run_id, status, error=str(exc) or type(exc).__name__)
            raise
        counts = {
            "offers": sum(c.offers for c in crawls),
            "pages": sum(c.pages for c in crawls),
            "crawl_failures": sum(c.failures for c in crawls),
            "classified": classified,
            "groups": len(groups),
            "seconds": seconds,
        }
        status = ending or ("partial" if error else "ok")
        store.finish_pipeline_run(run_id, status, counts, error)
        return DemoResult(
            run_id,
            crawls,
            model.version,
            had_model is None or had_model.id != model.id,
            classified,
            len(groups),
            [s.name for s in specs],
        )
