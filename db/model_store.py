"""Trained models and their predictions for stored photos."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from db.clock import now_iso as _now
from db.connection import write_transaction
from db.paths import resolved_path, stored_path
from db.records import Prediction


@dataclass(frozen=True)
class ModelRow:
    id: int
    version: str
    architecture: str
    path: str  # the checkpoint file, absolute (the table keeps it relative to the home)
    metrics: dict
    is_current: bool
    data: dict
    created_at: str


class ModelStore:
    """Mixed into `Store`; uses its ``db`` and ``home``."""

    home: Path

    def register_model(
        self,
        version: str,
        architecture: str,
        path: str,
        metrics: dict,
        data: dict,
        make_current: bool = True,
        photos: Iterable[tuple[str, str, str]] = (),
    ) -> int:
        """A trained model; *photos*: the scraped photos it saw, (sha256, label, split)."""
        with write_transaction(self.db) as conn:
            if make_current:
                conn.execute("UPDATE models SET is_current = 0 WHERE is_current = 1")
            model_id = conn.execute(
                "INSERT INTO models (version, architecture, path, metrics_json, data_json, "
                "is_current, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    version,
                    architecture,
                    stored_path(self.home, path),
                    json.dumps(metrics, sort_keys=True),
                    json.dumps(data, sort_keys=True),
                    int(make_current),
                    _now(),
                ),
            ).fetchone()[0]
            conn.executemany(
                "INSERT INTO model_photos (model_id, image_sha256, label, split) "
                "VALUES (?, ?, ?, ?)",
                [(model_id, *photo) for photo in photos],
            )
            return model_id

    def current_model(self) -> ModelRow | None:
        for row in self.db.query("SELECT * FROM models WHERE is_current = 1"):
            return _model_row(row, self.home)
        return None

    def models(self) -> list[ModelRow]:
        return [
            _model_row(row, self.home) for row in self.db.query("SELECT * FROM models ORDER BY id")
        ]

    def model(self, version: str) -> ModelRow | None:
        """By version name, or by id given as a number; "current" is the current model."""
        if version == "current":
            return self.current_model()
        for row in self.db.query(
            "SELECT * FROM models WHERE version = ? OR CAST(id AS TEXT) = ?", [version, version]
        ):
            return _model_row(row, self.home)
        return None

    def promote(self, model_id: int) -> None:
        with write_transaction(self.db) as conn:
            conn.execute("UPDATE models SET is_current = 0 WHERE is_current = 1")
            conn.execute("UPDATE models SET is_current = 1 WHERE id = ?", (model_id,))

    def update_model_metrics(self, model_id: int, metrics: dict) -> None:
        """Merge *metrics* into the model's (an evaluation or export adds figures later)."""
        with write_transaction(self.db) as conn:
            row = conn.execute("SELECT metrics_json FROM models WHERE id = ?", (model_id,))
            merged = json.loads(row.fetchone()[0]) | metrics
            conn.execute(
                "UPDATE models SET metrics_json = ? WHERE id = ?",
                (json.dumps(merged, sort_keys=True), model_id),
            )

    def _with_files(self, rows: Iterable[dict]) -> list[dict]:
        """*rows* with their ``path`` as a file name to open."""
        return [row | {"path": resolved_path(self.home, row["path"])} for row in rows]

    def labelled_images(self) -> list[dict]:
        """Stored photos with a label, the user's winning over the shop's category mapping."""
        return self._with_files(
            self.db.query(
                "SELECT images.sha256, images.path, images.unreadable_reason, "
                "images.unreadable_file, coalesce(u.label, s.label) AS label, "
                "max(coalesce(u.created_at, ''), coalesce(s.created_at, '')) AS labelled_at "
                "FROM images "
                "LEFT JOIN labels u ON u.image_sha256 = images.sha256 AND u.source = 'user' "
                "LEFT JOIN labels s ON s.image_sha256 = images.sha256 AND s.source = 'shop' "
                "WHERE u.label IS NOT NULL OR s.label IS NOT NULL ORDER BY images.sha256"
            )
        )

    def labels_since(self, timestamp: str) -> int:
        """Photos labelled (or relabelled) after *timestamp*: the retraining trigger."""
        return self.db.execute(
            "SELECT count(DISTINCT image_sha256) FROM labels WHERE created_at > ?", [timestamp]
        ).fetchone()[0]

    def offer_photo(self, offer_id: int) -> tuple[bool, str | None]:
        """(whether the offer exists, the sha256 of its photo or None)."""
        row = self.db.execute("SELECT image_sha256 FROM offers WHERE id = ?", [offer_id]).fetchone()
        return (row is not None, row[0] if row else None)

    def photos_with_prefix(self, prefix: str, limit: int = 2) -> list[str]:
        """The sha256s (at most *limit*) of stored photos starting with *prefix*, taken
        literally: ``%`` and ``_`` in it are not LIKE wildcards."""
        escaped = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self.db.execute(
            "SELECT sha256 FROM images WHERE sha256 LIKE ? ESCAPE '\\' ORDER BY sha256 LIMIT ?",
            [escaped + "%", limit],
        ).fetchall()
        return [row[0] for row in rows]

    def images_without_prediction(self, model_id: int) -> list[dict]:
        """Stored photos the model has not classified, with the mark of those found
        unreadable before (see `mark_unreadable`)."""
        return self._with_files(
            self.db.query(
                "SELECT sha256, path, unreadable_reason, unreadable_file FROM images "
                "WHERE NOT EXISTS (SELECT 1 FROM predictions p"
                " WHERE p.image_sha256 = images.sha256 AND p.model_id = ?) ORDER BY sha256",
                [model_id],
            )
        )

    def mark_unreadable(self, marks: Iterable[tuple[str, str, str]]) -> None:
        """Record photos whose file could not be decoded: (sha256, why, the file's size and
        modification time), so classifying skips them while that file stays the same."""
        rows = [(reason, stamp, sha256) for sha256, reason, stamp in marks]
        if not rows:
            return
        with write_transaction(self.db) as conn:
            conn.executemany(
                "UPDATE images SET unreadable_reason = ?, unreadable_file = ? WHERE sha256 = ?",
                rows,
            )

    def save_predictions(self, predictions: Iterable[Prediction]) -> int:
        rows = [
            (
                p.image_sha256,
                p.model_id,
                p.label,
                p.confidence,
                p.embedding,
                p.second_label,
                p.second_confidence,
                _now(),
            )
            for p in predictions
        ]
        with write_transaction(self.db) as conn:
            # a photo with a prediction was decoded: a mark from before is out of date
            conn.executemany(
                "UPDATE images SET unreadable_reason = NULL, unreadable_file = NULL "
                "WHERE sha256 = ? AND unreadable_reason IS NOT NULL",
                [row[:1] for row in rows],
            )
            conn.executemany(
                "INSERT OR REPLACE INTO predictions "
                "(image_sha256, model_id, label, confidence, embedding,"
                " second_label, second_confidence, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)


def _model_row(row: dict, home: Path) -> ModelRow:
    return ModelRow(
        row["id"],
        row["version"],
        row["architecture"],
        resolved_path(home, row["path"]),
        json.loads(row["metrics_json"]),
        bool(row["is_current"]),
        json.loads(row["data_json"]),
        row["created_at"],
    )
