"""The classify stage: make sure a model exists (train one on Fashion-MNIST if not), then
label and embed every stored image that the current model has not seen."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from classifier.config import TrainConfig
from classifier.inference import Classifier
from db.records import Prediction
from db.store import ModelRow, Store
from pipeline.errors import TrainingStopped
from pipeline.model_training import export_for_inference, train_and_register
from pipeline.photo_files import file_stamp, known_unreadable
from pipeline.settings import Home

log = logging.getLogger(__name__)

DECODE_WORKERS = 2  # decoding processes; the model runs in this one


def training_steps(progress, description: str, stop: threading.Event | None = None):
    """(progress task, on_step for `train_and_register`): each step shows its loss and
    accuracy, and raises TrainingStopped once *stop* is set (SIGTERM to the service)."""
    task = progress.add_task(description, total=None, status="") if progress else None

    def on_step(step: int, total: int, loss: float, accuracy: float) -> None:
        if stop is not None and stop.is_set():
            raise TrainingStopped(f"stopped at step {step} of {total}")
        if progress:
            progress.update(
                task, completed=step, total=total, status=f"loss {loss:.3f} acc {accuracy:.3f}"
            )

    return task, on_step


def train_fashion_mnist(
    store: Store,
    home: Home,
    config: TrainConfig,
    progress=None,
    stop: threading.Event | None = None,
) -> ModelRow:
    """Train a model on Fashion-MNIST and register it (current when it is the first)."""
    task, on_step = training_steps(progress, "train model", stop)
    outcome = train_and_register(
        store, home, config.replace(dataset="fashion-mnist"), on_step=on_step
    )
    if progress:
        progress.update(task, status=f"accuracy {outcome.result.metrics['accuracy']:.3f}")
    return outcome.model


def ensure_model(
    store: Store,
    home: Home,
    config: TrainConfig,
    progress=None,
    stop: threading.Event | None = None,
) -> ModelRow:
    """The current model, trained first if there is none (or its file went missing)."""
    current = store.current_model()
    if current and Path(current.path).is_file():
        return current
    if current:
        log.warning(
            "model %s is registered but %s is missing; training anew", current.version, current.path
        )
    return train_fashion_mnist(store, home, config, progress, stop)


def unclassified_photos(store: Store, model: ModelRow) -> tuple[int, int]:
    """(photos *model* could classify but has not, photos it has classified): files that are
    missing or known to be unreadable are neither."""
    without = store.images_without_prediction(model.id)
    pending = 0
    for row in without:
        stamp = file_stamp(row["path"])
        pending += stamp is not None and not known_unreadable(row, stamp)
    return pending, store.count("images") - len(without)


def matching_problem(store: Store, model: ModelRow) -> tuple[str | None, str | None]:
    """(why matching must not run now, a warning to show if it does). Offers whose photo the
    model has not classified have no embedding and stay out of every group: after a new model
    became current and before `classify`, matching would break up every group."""
    pending, classified = unclassified_photos(store, model)
    if not pending:
        return None, None
    if not classified:
        return (
            f"model {model.version} has classified none of the {pending} photos (it became "
            "current after the last `pricelens classify`); run `pricelens classify` first: "
            "matching now would leave every offer out of its group"
        ), None
    return None, (
        f"{pending} photos have no prediction from model {model.version} yet: their offers "
        "stay out of groups until `pricelens classify` runs"
    )


@dataclass(frozen=True)
class Classified:
    classified: int  # predictions written
    unreadable: int  # photos whose file could not be decoded: recorded, not decoded again
    previously_unreadable: int = 0  # recorded as unreadable before, file unchanged: skipped
    missing: int = 0  # files not on disk: no prediction, looked for again next time
    backend: str = ""  # what ran the model ("torch", "onnx"); "" when nothing was new


def classify_pending(
    store: Store,
    model: ModelRow,
    device: str = "auto",
    batch: int = 512,
    progress=None,
    backend: str = "auto",
    stop: threading.Event | None = None,
) -> Classified:
    """Predict label, confidence and embedding for each image new to *model*, in batches;
    worker processes decode the next batch while the model runs on this one. A photo whose
    file cannot be decoded gets no prediction and is recorded (images.unreadable_reason), so
    later runs, with any model, skip it until its file changes; a missing file is not
    recorded, as it may come back. Once *stop* is set no further batch is classified (the
    ones done are kept)."""
    pending, stamps, skipped, missing = [], [], 0, 0
    for row in store.images_without_prediction(model.id):
        stamp = file_stamp(row["path"])  # before decoding: a file rewritten since is retried
        if stamp is None:
            missing += 1
        elif known_unreadable(row, stamp):
            skipped += 1
        else:
            pending.append(row)
            stamps.append(stamp)
    if missing:
        log.warning("%d photo files are missing: no prediction until they are back", missing)
    if not pending:
        return Classified(0, 0, skipped, missing)
    if backend == "auto":  # a model made current before promotions exported (once, ~0.2 s)
        export_for_inference(Path(model.path))
    classifier = Classifier(Path(model.path), device, backend)
    task = progress.add_task("classify", total=len(pending), status="") if progress else None
    paths = [row["path"] for row in pending]
    problems: dict[int, str] = {}
    written = 0
    for indexes, predictions in classifier.predict_paths(paths, batch, DECODE_WORKERS, problems):
        if stop is not None and stop.is_set():
            log.warning("classify stopped on request after %d of %d photos", written, len(paths))
            break
        written += store.save_predictions(
            Prediction(
                pending[i]["sha256"],
                model.id,
                p.label,
                p.confidence,
                p.embedding.tobytes(),
                p.second_label,
                p.second_confidence,
            )
            for i, p in zip(indexes, predictions, strict=True)
        )
        if progress:
            progress.update(task, completed=indexes[-1] + 1)
    if progress:
        progress.update(task, completed=len(pending))
    marks = [(pending[i]["sha256"], problem, stamps[i]) for i, problem in problems.items()]
    store.mark_unreadable(marks)
    return Classified(written, len(marks), skipped, missing, classifier.backend)
