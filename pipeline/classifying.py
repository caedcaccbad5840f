"""The classify stage: make sure a model exists (train one on Fashion-MNIST if not), then
label and embed every stored image that the current model has not seen."""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import torch

from classifier.fashion_mnist import load_split
from classifier.inference import Classifier
from classifier.training import TrainConfig, train_model
from db.records import LABELS, Prediction
from db.store import ModelRow, Store
from pipeline.settings import Home

log = logging.getLogger(__name__)


def train_fashion_mnist(store: Store, home: Home, config: TrainConfig, progress=None) -> ModelRow:
    """Train a model on Fashion-MNIST, register it in the database and make it current."""
    train = load_split("train", download_dir=home.datasets)
    test = load_split("test", download_dir=home.datasets)
    version = datetime.now(UTC).strftime("fmnist-%Y%m%dT%H%M%S%fZ")
    task = progress.add_task("train model", total=None, status="") if progress else None

    def on_step(step: int, total: int, loss: float) -> None:
        if progress and (step % 10 == 0 or step == total):
            progress.update(task, completed=step, total=total, status=f"loss {loss:.3f}")

    result = train_model(
        config,
        torch.from_numpy(train.images.copy()),
        torch.from_numpy(train.labels),
        torch.from_numpy(test.images.copy()),
        torch.from_numpy(test.labels),
        home.models / version,
        LABELS,
        on_step,
    )
    if progress:
        progress.update(task, status=f"accuracy {result.metrics['accuracy']:.3f}")
    data = {
        "dataset": "fashion-mnist",
        "train_images": config.train_limit or len(train.labels),
        "eval_images": config.eval_limit or len(test.labels),
    }
    store.register_model(
        version,
        config.architecture,
        str(result.checkpoint),
        result.metrics | {"config": asdict(config)},
        data,
    )
    return store.current_model()


def ensure_model(store: Store, home: Home, config: TrainConfig, progress=None) -> ModelRow:
    """The current model, trained first if there is none (or its file went missing)."""
    current = store.current_model()
    if current and Path(current.path).is_file():
        return current
    if current:
        log.warning(
            "model %s is registered but %s is missing; training anew", current.version, current.path
        )
    return train_fashion_mnist(store, home, config, progress)


def classify_images(
    store: Store, model: ModelRow, device: str = "auto", batch: int = 256, progress=None
) -> int:
    """Predict label, confidence and embedding for each image new to *model*."""
    pending = store.images_without_prediction(model.id)
    if not pending:
        return 0
    classifier = Classifier(Path(model.path), device)
    task = progress.add_task("classify", total=len(pending), status="") if progress else None
    done = 0
    for start in range(0, len(pending), batch):
        chunk = pending[start : start + batch]
        predictions = classifier.predict_files([row["path"] for row in chunk])
        store.save_predictions(
            Prediction(row["sha256"], model.id, p.label, p.confidence, p.embedding.tobytes())
            for row, p in zip(chunk, predictions, strict=True)
            if p is not None
        )
        done += len(chunk)
        if progress:
            progress.update(task, completed=done)
    return done
