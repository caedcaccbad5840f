"""The store API: every read and write the rest of pricelens does goes through here."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from db.connection import open_database, write_transaction
from db.records import Image, Offer, Prediction, ProductGroup


def _now() -> str:
    return _iso(datetime.now(UTC))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def offer_key(offer: Offer) -> str:
    """How an offer is recognised on the next crawl: its SKU if shown, else its URL."""
    return f"sku:{offer.sku}" if offer.sku else f"url:{offer.url}"


def _bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class ModelRow:
    id: int
    version: str
    architecture: str
    path: str
    metrics: dict
    is_current: bool


@dataclass(frozen=True)
class OfferForMatching:
    offer_id: int
    shop: str
    title: str
    price: int | None
    currency: str | None
    label: str | None
    embedding: bytes | None
    group_id: int | None


class Store:
    """A pricelens database file. Methods are named for what they do to it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.db: sqlite_utils.Database = open_database(self.path)

    def close(self) -> None:
        self.db.close()

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
                                last_seen_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(shop_id, offer_key) DO UPDATE SET
                url = excluded.url,
                title = excluded.title,
                -- keep the last good price when this crawl could not read one
                price = COALESCE(excluded.price, price),
                currency = CASE WHEN excluded.price IS NULL THEN currency
                                ELSE excluded.currency END,
                list_price = CASE WHEN excluded.price IS NULL THEN list_price
                                  ELSE excluded.list_price END,
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
                 price_raw, price_error, observed_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
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
            ),
        )

    def save_page(
        self,
        crawl_run_id: int,
        offers: Sequence[Offer],
        images: Iterable[Image] = (),
        shop_labels: dict[str, str] | None = None,
    ) -> list[int]:
        """Write one crawled page (images, offers, observations, shop labels) atomically."""
        with write_transaction(self.db) as conn:
            for image in images:
                self._store_image(conn, image)
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
                image.path,
                image.width,
                image.height,
                image.format,
                image.bytes,
                image.source_url,
                _now(),
            ),
        )

    def set_label(self, image_sha256: str, label: str, source: str = "user") -> None:
        with write_transaction(self.db) as conn:
            self._set_label(conn, image_sha256, label, source)

    def _set_label(self, conn, image_sha256: str, label: str, source: str) -> None:
        conn.execute(
            "INSERT INTO labels (image_sha256, label, source, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(image_sha256, source) DO UPDATE SET label = excluded.label",
            (image_sha256, label, source, _now()),
        )

    # -- crawl runs -------------------------------------------------------------------

    def start_crawl_run(
        self, shop: str, base_url: str | None = None, pipeline_run_id: int | None = None
    ) -> int:
        with write_transaction(self.db) as conn:
            shop_id = self._upsert_shop(conn, shop, base_url)
            return conn.execute(
                "INSERT INTO crawl_runs (shop_id, pipeline_run_id, started_at, status) "
                "VALUES (?, ?, ?, 'running') RETURNING id",
                (shop_id, pipeline_run_id, _now()),
            ).fetchone()[0]

    def finish_crawl_run(self, crawl_run_id: int, status: str, error: str | None = None) -> None:
        with write_transaction(self.db) as conn:
            conn.execute(
                "UPDATE crawl_runs SET status = ?, finished_at = ?, error = ?, "
                "errors = (SELECT COUNT(*) FROM crawl_errors WHERE crawl_run_id = ?) WHERE id = ?",
                (status, _now(), error, crawl_run_id, crawl_run_id),
            )

    def record_crawl_error(
        self,
        crawl_run_id: int,
        message: str,
        url: str | None = None,
        step: str | None = None,
        screenshot_path: str | None = None,
        html_path: str | None = None,
    ) -> None:
        with write_transaction(self.db) as conn:
            conn.execute(
                "INSERT INTO crawl_errors (crawl_run_id, url, step, message, screenshot_path, "
                "html_path, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (crawl_run_id, url, step, message, screenshot_path, html_path, _now()),
            )

    def crawl_run(self, crawl_run_id: int) -> dict:
        rows = list(
            self.db.query(
                "SELECT crawl_runs.*, shops.name AS shop FROM crawl_runs "
                "JOIN shops ON shops.id = crawl_runs.shop_id WHERE crawl_runs.id = ?",
                [crawl_run_id],
            )
        )
        return rows[0]

    # -- pipeline runs ----------------------------------------------------------------

    def start_pipeline_run(self, kind: str) -> int:
        with write_transaction(self.db) as conn:
            return conn.execute(
                "INSERT INTO pipeline_runs (kind, started_at, status) VALUES (?, ?, 'running') "
                "RETURNING id",
                (kind, _now()),
            ).fetchone()[0]

    def finish_pipeline_run(
        self, run_id: int, status: str, counts: dict | None = None, error: str | None = None
    ) -> None:
        with write_transaction(self.db) as conn:
            conn.execute(
                "UPDATE pipeline_runs SET status = ?, finished_at = ?, counts_json = ?, error = ? "
                "WHERE id = ?",
                (status, _now(), json.dumps(counts or {}, sort_keys=True), error, run_id),
            )

    # -- models and predictions -------------------------------------------------------

    def register_model(
        self,
        version: str,
        architecture: str,
        path: str,
        metrics: dict,
        data: dict,
        make_current: bool = True,
    ) -> int:
        with write_transaction(self.db) as conn:
            if make_current:
                conn.execute("UPDATE models SET is_current = 0 WHERE is_current = 1")
            return conn.execute(
                "INSERT INTO models (version, architecture, path, metrics_json, data_json, "
                "is_current, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    version,
                    architecture,
                    path,
                    json.dumps(metrics, sort_keys=True),
                    json.dumps(data, sort_keys=True),
                    int(make_current),
                    _now(),
                ),
            ).fetchone()[0]

    def current_model(self) -> ModelRow | None:
        for row in self.db.query("SELECT * FROM models WHERE is_current = 1"):
            return ModelRow(
                row["id"],
                row["version"],
                row["architecture"],
                row["path"],
                json.loads(row["metrics_json"]),
                True,
            )
        return None

    def images_without_prediction(self, model_id: int) -> list[dict]:
        return list(
            self.db.query(
                "SELECT images.sha256, images.path FROM images WHERE NOT EXISTS ("
                " SELECT 1 FROM predictions p WHERE p.image_sha256 = images.sha256"
                " AND p.model_id = ?) ORDER BY images.sha256",
                [model_id],
            )
        )

    def save_predictions(self, predictions: Iterable[Prediction]) -> int:
        rows = [
            (p.image_sha256, p.model_id, p.label, p.confidence, p.embedding, _now())
            for p in predictions
        ]
        with write_transaction(self.db) as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO predictions "
                "(image_sha256, model_id, label, confidence, embedding, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    # -- matching ---------------------------------------------------------------------

    def offers_for_matching(self, model_id: int | None) -> list[OfferForMatching]:
        """Every offer with its category (a user's label, else the shop's, else the model's
        prediction), the model's embedding of its photo, and its current group."""
        rows = self.db.query(
            """
            SELECT o.id, s.name AS shop, o.title, o.price, o.currency,
                   COALESCE(user_label.label, shop_label.label, p.label) AS label,
                   p.embedding, gm.group_id
            FROM offers o
            JOIN shops s ON s.id = o.shop_id
            LEFT JOIN predictions p ON p.image_sha256 = o.image_sha256 AND p.model_id = ?
            LEFT JOIN labels user_label
                   ON user_label.image_sha256 = o.image_sha256 AND user_label.source = 'user'
            LEFT JOIN labels shop_label
                   ON shop_label.image_sha256 = o.image_sha256 AND shop_label.source = 'shop'
            LEFT JOIN group_members gm ON gm.offer_id = o.id
            ORDER BY o.id
            """,
            [model_id],
        )
        return [
            OfferForMatching(
                r["id"],
                r["shop"],
                r["title"],
                r["price"],
                r["currency"],
                r["label"],
                r["embedding"],
                r["group_id"],
            )
            for r in rows
        ]

    def replace_groups(self, groups: Sequence[ProductGroup]) -> list[int]:
        """Write the model's grouping; a group with an id keeps it. Returns the group ids."""
        now = _now()
        ids = []
        with write_transaction(self.db) as conn:
            conn.execute("DELETE FROM group_members WHERE source = 'model'")
            for group in groups:
                if group.id is None:
                    group_id = conn.execute(
                        "INSERT INTO product_groups (label, canonical_title, created_at, "
                        "updated_at) VALUES (?, ?, ?, ?) RETURNING id",
                        (group.label, group.canonical_title, now, now),
                    ).fetchone()[0]
                else:
                    group_id = group.id
                    conn.execute(
                        "INSERT INTO product_groups (id, label, canonical_title, created_at, "
                        "updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                        "label = excluded.label, canonical_title = excluded.canonical_title, "
                        "updated_at = excluded.updated_at",
                        (group_id, group.label, group.canonical_title, now, now),
                    )
                conn.executemany(
                    "INSERT OR IGNORE INTO group_members (offer_id, group_id, score, source) "
                    "VALUES (?, ?, ?, 'model')",
                    [(m.offer_id, group_id, m.score) for m in group.members],
                )
                ids.append(group_id)
            conn.execute(
                "DELETE FROM product_groups WHERE id NOT IN (SELECT group_id FROM group_members)"
            )
        return ids

    # -- reports ----------------------------------------------------------------------

    def comparison_rows(self) -> list[dict]:
        """One row per (group, offer) with the offer's latest and previous observed price."""
        return list(
            self.db.query(
                """
            SELECT g.id AS group_id, g.label, g.canonical_title, s.name AS shop,
                   o.id AS offer_id, o.title, o.url, o.price, o.currency, o.in_stock,
                   (SELECT po.price FROM price_observations po
                     WHERE po.offer_id = o.id AND po.price IS NOT NULL
                     ORDER BY po.observed_at DESC, po.id DESC LIMIT 1 OFFSET 1) AS previous_price
            FROM product_groups g
            JOIN group_members gm ON gm.group_id = g.id
            JOIN offers o ON o.id = gm.offer_id
            JOIN shops s ON s.id = o.shop_id
            ORDER BY g.id, s.name
            """
            )
        )

    def count(self, table: str) -> int:
        return self.db[table].count

    def group_assignments(self) -> list[dict]:
        return list(
            self.db.query(
                "SELECT s.name AS shop, o.url, gm.group_id FROM group_members gm "
                "JOIN offers o ON o.id = gm.offer_id JOIN shops s ON s.id = o.shop_id"
            )
        )
