"""Record types shared by every package: frozen dataclasses with UTC datetimes.

Money is integer minor units (KRW 12,900 -> 12900; USD 1.50 -> 150), never a float.
An unparseable price is ``None`` with the raw text and a reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Image:
    """A downloaded product photo, addressed by the sha256 of its bytes."""

    sha256: str
    path: str
    width: int
    height: int
    format: str
    bytes: int
    source_url: str | None = None


@dataclass(frozen=True)
class PhotoSource:
    """What a photo URL answered last: its image and the validators (ETag, Last-Modified)
    with which the next crawl asks whether it changed instead of downloading it again."""

    url: str
    image_sha256: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Offer:
    """One product as one shop sells it, as seen on one crawl."""

    shop: str
    url: str
    title: str
    price: int | None
    currency: str
    sku: str | None = None
    list_price: int | None = None
    in_stock: bool | None = None
    category_raw: str | None = None
    image_url: str | None = None
    price_raw: str | None = None
    price_error: str | None = None
    image_sha256: str | None = None
    scraped_at: datetime = field(default_factory=utc_now)
    price_is_from: bool = False  # "from 9,900": the lowest of several variants' prices


@dataclass(frozen=True)
class PriceObservation:
    offer_id: int
    crawl_run_id: int
    price: int | None
    currency: str
    in_stock: bool | None
    observed_at: datetime


@dataclass(frozen=True)
class Prediction:
    image_sha256: str
    model_id: int
    label: str
    confidence: float
    embedding: bytes  # float32, L2-normalised
    second_label: str | None = None  # the runner-up category
    second_confidence: float | None = None


@dataclass(frozen=True)
class GroupMember:
    offer_id: int
    score: float


@dataclass(frozen=True)
class ProductGroup:
    id: int | None
    label: str | None
    canonical_title: str
    members: tuple[GroupMember, ...]


@dataclass(frozen=True)
class CrawlRun:
    id: int
    shop: str
    started_at: datetime
    status: str
    finished_at: datetime | None = None
    pages: int = 0
    offers: int = 0
    errors: int = 0
    error: str | None = None


@dataclass(frozen=True)
class PipelineRun:
    id: int
    kind: str
    started_at: datetime
    status: str
    finished_at: datetime | None = None
    counts: dict = field(default_factory=dict)
    error: str | None = None


# The shared category vocabulary: Fashion-MNIST's ten classes, in its label order.
LABELS: tuple[str, ...] = (
    "tshirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
)
