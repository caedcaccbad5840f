"""Errors of the crawler, each carrying the shop, file, step, selector or URL it concerns."""

from __future__ import annotations


class CrawlerError(Exception):
    """Something in crawling failed."""


class SpecError(CrawlerError):
    """A shop spec file is invalid; the message names the file and the key."""


class DriverUnavailable(CrawlerError):
    """No chromedriver could be found or downloaded."""


class StepFailed(CrawlerError):
    """A browser step failed on a page."""

    def __init__(self, shop: str, step: str, url: str, detail: str, selector: str | None = None):
        self.shop, self.step, self.url, self.selector = shop, step, url, selector
        where = f" selector {selector!r}" if selector else ""
        super().__init__(f"{shop}: step {step}{where} failed at {url}: {detail}")


class ImageRejected(CrawlerError):
    """A downloaded image was refused (too big, not an image, a decompression bomb)."""


class CrawlStopped(CrawlerError):
    """The crawl was asked to stop (SIGTERM); it stops between pages, so no page is half-stored."""
