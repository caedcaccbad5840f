"""The store API: every read and write the rest of pricelens does goes through here.

`Store` is one object per database file; its methods are grouped by subject in mixins
(runs, models, groups) so each module stays small.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import sqlite_utils

from db.clock import iso as _iso
from db.clock import now_iso as _now
from db.connection import open_database, write_transaction
from db.group_store import GroupStore, OfferForMatching
from db.model_store import ModelRow, ModelStore
from db.paths import resolved_path, stored_path
from db.records import Image, Offer, PhotoSource
from db.run_locks import RunLocks
from db.run_store import RunStore

__all__ = ["ModelRow", "OfferForMatching", "Store", "offer_key"]


def offer_key(offer: Offer) -> str:
    """How an offer is recognised on the next crawl: its SKU if shown, else its URL."""
    return f"sku:{offer.sku}" if offer.sku else f"url:{offer.url}"


def _bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


class Store(RunStore, ModelStore, GroupStore):
    """A pricelens database file. Methods are named for what they do to it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.home = self.path.absolute().parent  # file paths in the database are relative to it
        self.db: sqlite_utils.Database = open_database(self.path)
        self.run_locks = RunLocks(self.path)

    def close(self) -> None:
        """Close the file; runs this store started and never finished lose their locks, so
        the next `pricelens serve` marks them interrupted."""
        try:
            self.db.close()
        finally:
            self.run_locks.release_all()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- shops and offers -------------------------------------------------------------

    def upsert_shop(self, name: str, base_url: str | None = None) -> int:
        with write_transaction(self.db) as conn:
            return self._upsert_shop(conn, name, base_url)

    def _upsert_shop(self, conn, name: str, base_url: str | None) -> int:
        row = conn.execute(
            "INSERT INTO shops (name, base_url, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET base_url = COALESCE(excluded.base_url, base_url) "
            "RETURNING id",
            (name, base_url, _now()),
        ).fetchone()
        return row[0]

    def upsert_offer(self, offer: Offer) -> int:
        """Insert or refresh one offer; returns its id. Idempotent for the same offer."""
        with write_transaction(self.db) as conn:
            shop_id = self._upsert_shop(conn, offer.shop, None)
            return self._upsert_offer(conn, shop_id, offer)

    def _upsert_offer(self, conn, shop_id: int, offer: Offer) -> int:
        seen = _iso(offer.scraped_at)
        row = conn.execute(
            """
            INSERT INTO offers (shop_id, offer_key, url, sku, title, price, currency, list_price,
                                in_stock, category_raw, image_url, image_sha256, first_seen_at,
                                last_seen_at, price_is_from)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(shop_id, offer_key) DO UPDATE SET
                url = excluded.url,
                title = excluded.title,
                -- keep the last good price when this crawl could not read one
                price = COALESCE(excluded.price, price),
                currency = CASE WHEN excluded.price IS NULL THEN currency
                                ELSE excluded.currency END,
                list_price = CASE WHEN excluded.price IS NULL THEN list_price
                                  ELSE excluded.list_price END,
                price_is_from = CASE WHEN excluded.price IS NULL THEN price_is_from
                                     ELSE excluded.price_is_from END,
                in_stock = COALESCE(excluded.in_stock, in_stock),
                category_raw = COALESCE(excluded.category_raw, category_raw),
                image_url = COALESCE(excluded.image_url, image_url),
                image_sha256 = COALESCE(excluded.image_sha256, image_sha256),
                last_seen_at = MAX(last_seen_at, excluded.last_seen_at)
            RETURNING id
            """,
            (
                shop_id,
                offer_key(offer),
                offer.url,
                offer.sku,
                offer.title,
                offer.price,
                offer.currency,
                offer.list_price,
                _bool(offer.in_stock),
                offer.category_raw,
                offer.image_url,
                offer.image_sha256,
                seen,
                seen,
                int(offer.price_is_from),
            ),
        ).fetchone()
        return row[0]

    def record_observation(self, offer_id: int, crawl_run_id: int, offer: Offer) -> None:
        with write_transaction(self.db) as conn:
            self._record_observation(conn, offer_id, crawl_run_id, offer)

    def _record_observation(self, conn, offer_id: int, crawl_run_id: int, offer: Offer) -> None:
        error = offer.price_error
        if offer.price is None and not error:
            error = "no price found"
        # OR IGNORE: re-saving a page of the same crawl run adds no second row
        conn.execute(
            """
            INSERT OR IGNORE INTO price_observations
                (offer_id, crawl_run_id, price, currency, list_price, in_stock,
                 price_raw, price_error, observed_at, price_is_from)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            (
                offer_id,
                crawl_run_id,
                offer.price,
                offer.currency,
                offer.list_price,
                _bool(offer.in_stock),
                offer.price_raw,
                None if offer.price is not None else error,
                _iso(offer.scraped_at),
                int(offer.price_is_from),
            ),
        )

    def save_page(
        self,
        crawl_run_id: int,
        offers: Sequence[Offer],
        images: Iterable[Image] = (),
        shop_labels: dict[str, str] | None = None,
        photo_sources: Iterable[PhotoSource] = (),
    ) -> list[int]:
        """Write one crawled page (images, photo sources, offers, observations, shop labels)
        atomically."""
        with write_transaction(self.db) as conn:
            for image in images:
                self._store_image(conn, image)
            for source in photo_sources:
                self._store_photo_source(conn, source)
            shop_ids: dict[str, int] = {}
            offer_ids = []
            for offer in offers:
                if offer.shop not in shop_ids:
                    shop_ids[offer.shop] = self._upsert_shop(conn, offer.shop, None)
                offer_id = self._upsert_offer(conn, shop_ids[offer.shop], offer)
                self._record_observation(conn, offer_id, crawl_run_id, offer)
                offer_ids.append(offer_id)
            for sha256, label in (shop_labels or {}).items():
                self._set_label(conn, sha256, label, "shop")
            conn.execute(
                "UPDATE crawl_runs SET pages = pages + 1, offers = offers + ? WHERE id = ?",
                (len(offers), crawl_run_id),
            )
        return offer_ids

    # -- images and labels ------------------------------------------------------------

    def store_image(self, image: Image) -> None:
        with write_transaction(self.db) as conn:
            self._store_image(conn, image)

    def _store_image(self, conn, image: Image) -> None:
        conn.execute(
            "INSERT OR IGNORE INTO images "
            "(sha256, path, width, height, format, bytes, source_url, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                image.sha256,
                stored_path(self.home, image.path),
                image.width,
                image.height,
                image.format,
                image.bytes,
                image.source_url,
                _now(),
            ),
        )

    def _store_photo_source(self, conn, source: PhotoSource) -> None:
        conn.execute(
            "INSERT INTO photo_sources (url, image_sha256, etag, last_modified, checked_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(url) DO UPDATE SET "
            "image_sha256 = excluded.image_sha256, etag = excluded.etag, "
            "last_modified = excluded.last_modified, checked_at = excluded.checked_at",
            (source.url, source.image_sha256, source.etag, source.last_modified, _now()),
        )

    def known_photos(self, shop: str) -> dict[str, tuple[PhotoSource, Image]]:
        """The photo URLs *shop*'s offers show that gave an image before, each with that
        image and the validators to ask the shop whether it changed."""
        rows = self.db.query(
            "SELECT p.url, p.image_sha256, p.etag, p.last_modified, i.path, i.width, "
            "i.height, i.format, i.bytes, i.source_url FROM photo_sources p "
            "JOIN images i ON i.sha256 = p.image_sha256 WHERE p.url IN ("
            "SELECT o.image_url FROM offers o JOIN shops s ON s.id = o.shop_id "
            "WHERE s.name = ?)",
            [shop],
        )
        return {
            r["url"]: (
                PhotoSource(r["url"], r["image_sha256"], r["etag"], r["last_modified"]),
                Image(
                    r["image_sha256"],
                    resolved_path(self.home, r["path"]),
                    r["width"],
                    r["height"],
                    r["format"],
                    r["bytes"],
                    r["source_url"],
                ),
            )
            for r in rows
        }

    def set_label(self, image_sha256: str, label: str, source: str = "user") -> None:
        with write_transaction(self.db) as conn:
            self._set_label(conn, image_sha256, label, source)

    def _set_label(self, conn, image_sha256: str, label: str, source: str) -> None:
        conn.execute(
            "INSERT INTO labels (image_sha256, label, source, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(image_sha256, source) DO UPDATE SET label = excluded.label, "
            # a changed label counts as new training signal; a re-crawl repeating it does not
            "created_at = iif(label = excluded.label, created_at, excluded.created_at)",
            (image_sha256, label, source, _now()),
        )
