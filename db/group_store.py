"""Product groups: the input to matching, its output, users' corrections, and the report
and price-history reads over them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from db.clock import now_iso as _now
from db.connection import write_transaction
from db.paths import resolved_path
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
    fingerprint: str | None = None  # what the offer looked like when it was last matched
    score: float | None = None  # its score in its current group
    # the model's two likeliest categories; None where a user labelled the photo
    predicted_label: str | None = None
    second_label: str | None = None
    second_confidence: float | None = None


@dataclass(frozen=True)
class OfferInGroup:
    offer_id: int
    shop: str
    title: str
    group_id: int | None


class GroupStore:
    """Mixed into `Store`; uses its ``db`` and ``home``."""

    home: Path

    def offers_for_matching(self, model_id: int | None) -> list[OfferForMatching]:
        """Every offer with its category (a user's label, else the shop's, else the model's
        prediction), the model's two likeliest categories unless a user labelled the photo,
        the model's embedding of its photo, and its current group."""
        rows = self.db.execute(
            """
            SELECT o.id, s.name AS shop, o.title, o.price, o.currency,
                   COALESCE(user_label.label, shop_label.label, p.label) AS label,
                   p.embedding, gm.group_id, gm.fingerprint, gm.score,
                   CASE WHEN user_label.label IS NULL THEN p.label END,
                   CASE WHEN user_label.label IS NULL THEN p.second_label END,
                   CASE WHEN user_label.label IS NULL THEN p.second_confidence END
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
        ).fetchall()
        return [OfferForMatching(*row) for row in rows]

    def save_groups(
        self,
        groups: Sequence[ProductGroup],
        fingerprints: Mapping[int, str] | None = None,
        user_offers: Iterable[int] = (),
    ) -> list[int]:
        """Write the whole grouping in one transaction; a group with an id keeps it.

        *fingerprints* (offer id -> fingerprint) let the next run skip unchanged offers;
        offers in *user_offers* are marked as placed by a user's correction. Returns the ids.
        """
        now = _now()
        fingerprints = fingerprints or {}
        user = set(user_offers)
        ids = []
        with write_transaction(self.db) as conn:
            conn.execute("DELETE FROM group_members")
            members = []
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
                members.extend(
                    (
                        m.offer_id,
                        group_id,
                        m.score,
                        "user" if m.offer_id in user else "model",
                        fingerprints.get(m.offer_id),
                    )
                    for m in group.members
                )
                ids.append(group_id)
            conn.executemany(
                "INSERT INTO group_members (offer_id, group_id, score, source, fingerprint) "
                "VALUES (?, ?, ?, ?, ?)",
                members,
            )
            conn.execute(
                "DELETE FROM product_groups WHERE id NOT IN (SELECT group_id FROM group_members)"
            )
        return ids

    def replace_groups(self, groups: Sequence[ProductGroup]) -> list[int]:
        """Write a grouping without fingerprints: every offer is re-matched next time."""
        return self.save_groups(groups)

    # -- corrections --------------------------------------------------------------------

    def offer_in_group(self, offer_id: int) -> OfferInGroup | None:
        row = self.db.execute(
            "SELECT o.id, s.name, o.title, gm.group_id FROM offers o "
            "JOIN shops s ON s.id = o.shop_id "
            "LEFT JOIN group_members gm ON gm.offer_id = o.id WHERE o.id = ?",
            [offer_id],
        ).fetchone()
        return None if row is None else OfferInGroup(*row)

    def group_offers(self, group_id: int) -> list[OfferInGroup]:
        rows = self.db.execute(
            "SELECT o.id, s.name, o.title, gm.group_id FROM group_members gm "
            "JOIN offers o ON o.id = gm.offer_id JOIN shops s ON s.id = o.shop_id "
            "WHERE gm.group_id = ? ORDER BY s.name, o.id",
            [group_id],
        ).fetchall()
        return [OfferInGroup(*row) for row in rows]

    def correct_match(
        self,
        offer_id: int,
        group_id: int | None,
        pairs: Sequence[tuple[int, int, bool]],
        parted: Sequence[int] = (),
    ) -> tuple[int, list[int]]:
        """Record a user's correction and move the offer into *group_id* (None: a group of its
        own), in one transaction. *pairs* are (offer, other offer, same); each offer in
        *parted* gets a group of its own (the correction says it is not the group's product).
        Returns the offer's group and the parted offers' new groups."""
        now = _now()
        with write_transaction(self.db) as conn:
            conn.executemany(
                "INSERT INTO match_corrections (offer_id, other_offer_id, same, created_at) "
                "VALUES (?, ?, ?, ?)",
                [(min(a, b), max(a, b), int(same), now) for a, b, same in pairs],
            )
            if group_id is None:
                group_id = _new_group_of(conn, offer_id, now)
            own_groups = [_new_group_of(conn, o, now) for o in parted]
            for member, group in [(offer_id, group_id), *zip(parted, own_groups, strict=True)]:
                conn.execute(
                    "INSERT INTO group_members (offer_id, group_id, score, source) "
                    "VALUES (?, ?, 1.0, 'user') ON CONFLICT(offer_id) DO UPDATE SET "
                    "group_id = excluded.group_id, score = 1.0, source = 'user'",
                    (member, group),
                )
            conn.execute(
                "DELETE FROM product_groups WHERE id NOT IN (SELECT group_id FROM group_members)"
            )
        return group_id, own_groups

    def match_feedback(self) -> list[dict]:
        """The corrections in force (the latest per pair): the matcher's training signal."""
        return list(self.db.query("SELECT * FROM match_feedback ORDER BY offer_id, other_offer_id"))

    # -- reports ----------------------------------------------------------------------

    def comparison_rows(self) -> list[dict]:
        """One row per (group, offer) the shop still lists, with the offer's latest price and
        its previous one in the same currency, and its photo's file (``image_path``).

        An offer is left out once its shop had a *complete* crawl after the last crawl that
        saw it: one that ended ``ok`` (a ``partial`` run had failed pages, so its missing
        offers prove nothing), was not stopped at a page cap (``capped``: ``--max-pages`` or
        pagination.max_pages with more to read) and walked at least as many pages as that
        last crawl (a "next" link that went missing ends a crawl ``ok`` with fewer pages).
        Runs are told apart by id, not by time: ``last_seen_at`` is the shop's clock at
        scraping, ``started_at`` ours."""
        rows = self.db.query(
            """
            SELECT g.id AS group_id, g.label, g.canonical_title, s.name AS shop,
                   o.id AS offer_id, o.title, o.url, o.price, o.currency, o.in_stock,
                   o.price_is_from,
                   i.path AS image_path, i.format AS image_format,
                   (SELECT po.price FROM price_observations po
                     WHERE po.offer_id = o.id AND po.price IS NOT NULL
                       AND po.currency IS o.currency
                     ORDER BY po.observed_at DESC, po.id DESC LIMIT 1 OFFSET 1) AS previous_price
            FROM product_groups g
            JOIN group_members gm ON gm.group_id = g.id
            JOIN offers o ON o.id = gm.offer_id
            JOIN shops s ON s.id = o.shop_id
            LEFT JOIN images i ON i.sha256 = o.image_sha256
            WHERE NOT EXISTS (
                SELECT 1 FROM crawl_runs seen JOIN crawl_runs later
                    ON later.shop_id = o.shop_id
                   AND later.started_at >= seen.started_at AND later.id > seen.id
                WHERE seen.id = (SELECT MAX(po.crawl_run_id) FROM price_observations po
                                  WHERE po.offer_id = o.id)
                  AND later.status = 'ok' AND NOT later.capped
                  AND later.pages > 0 AND later.pages >= seen.pages
            )
            ORDER BY g.id, s.name
            """
        )
        return [row | {"image_path": resolved_path(self.home, row["image_path"])} for row in rows]

    def price_history(self, offer_ids: Sequence[int]) -> list[dict]:
        """Every good price observed for the offers, oldest first."""
        found: list[dict] = []
        ids = list(offer_ids)
        for start in range(0, len(ids), 500):  # SQLite caps bound parameters
            chunk = ids[start : start + 500]
            found.extend(
                self.db.query(
                    "SELECT po.offer_id, s.name AS shop, po.observed_at, po.price, po.currency, "
                    "po.in_stock FROM price_observations po "
                    "JOIN offers o ON o.id = po.offer_id JOIN shops s ON s.id = o.shop_id "
                    f"WHERE po.offer_id IN ({', '.join('?' * len(chunk))}) "
                    "AND po.price IS NOT NULL",
                    chunk,
                )
            )
        return sorted(found, key=lambda r: (r["observed_at"], r["offer_id"]))

    def group_title(self, group_id: int) -> str | None:
        row = self.db.execute(
            "SELECT canonical_title FROM product_groups WHERE id = ?", [group_id]
        ).fetchone()
        return None if row is None else row[0]

    def shop_names(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM shops ORDER BY name")]

    def count(self, table: str) -> int:
        return self.db[table].count

    def offer_keys(self) -> list[dict]:
        return list(
            self.db.query(
                "SELECT o.id AS offer_id, s.name AS shop, o.url, o.sku FROM offers o "
                "JOIN shops s ON s.id = o.shop_id ORDER BY o.id"
            )
        )

    def group_assignments(self) -> list[dict]:
        return list(
            self.db.query(
                "SELECT s.name AS shop, o.url, o.sku, o.id AS offer_id, gm.group_id "
                "FROM group_members gm "
                "JOIN offers o ON o.id = gm.offer_id JOIN shops s ON s.id = o.shop_id "
                "ORDER BY o.id"
            )
        )


def _new_group_of(conn, offer_id: int, now: str) -> int:
    """A new, empty group named after the offer, with its current group's label."""
    title, label = conn.execute(
        "SELECT o.title, g.label FROM offers o "
        "LEFT JOIN group_members gm ON gm.offer_id = o.id "
        "LEFT JOIN product_groups g ON g.id = gm.group_id WHERE o.id = ?",
        (offer_id,),
    ).fetchone()
    return conn.execute(
        "INSERT INTO product_groups (label, canonical_title, created_at, updated_at)"
        " VALUES (?, ?, ?, ?) RETURNING id",
        (label, title, now, now),
    ).fetchone()[0]
