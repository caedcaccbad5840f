"""Product groups: the input to matching, its output, and the report over it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from db.clock import now_iso as _now
from db.connection import write_transaction
from db.records import ProductGroup


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


class GroupStore:
    """Mixed into `Store`; uses its ``db``."""

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
