"""Trained models and their predictions for stored photos."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from db.clock import now_iso as _now
from db.connection import write_transaction
from db.records import Prediction


@dataclass(frozen=True)
class ModelRow:
    id: int
    version: str
    architecture: str
    path: str
    metrics: dict
    is_current: bool


class ModelStore:
    """Mixed into `Store`; uses its ``db``."""

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
