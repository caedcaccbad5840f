"""`pricelens shops test`: crawl a shop's first listing page and return what it extracted,
storing nothing, so a user can check a spec they are writing."""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import replace
from pathlib import Path

from crawler.browser import BrowserConfig, BrowserSession
from crawler.engine import CrawledPage, PageFailure, crawl_shop
from crawler.errors import CrawlStopped
from crawler.robots import RobotsPolicy
from crawler.spec import ShopSpec


def test_spec(
    spec: ShopSpec, browser: BrowserConfig = BrowserConfig(), obey_robots: bool = True
) -> tuple[CrawledPage | None, list[PageFailure]]:
    spec = replace(spec, pagination=replace(spec.pagination, max_pages=1))
    pages: list[CrawledPage] = []
    failures: list[PageFailure] = []

    with (
        tempfile.TemporaryDirectory(prefix="pricelens-shop-test-") as images,
        BrowserSession(browser) as session,
        contextlib.suppress(CrawlStopped),  # the first page with offers is in
    ):
        crawl_shop(
            spec,
            session.driver,
            Path(images),
            pages.append,
            failures.append,
            RobotsPolicy(obey=obey_robots),
            first_offers_only=True,
        )
    return (pages[-1] if pages else None), failures
