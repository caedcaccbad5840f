"""Training, evaluating and promoting models against the database: which data a run sees,
where its files go, and whether the new model replaces the current one.

Promotion rule: a model trained from scratch with no current model becomes current; otherwise
the candidate and the current model are scored on the same held-out data (the Fashion-MNIST
test set and the held-out scraped photos, averaged when both are used) and the candidate is
promoted only if it scores higher.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from classifier.checkpoints import load_checkpoint
from classifier.config import TrainConfig, config_from_checkpoint
from classifier.data import LabelledImage, TensorSet, empty_set, fashion_mnist, scraped_sets
from classifier.evaluation import evaluate
from classifier.export import load_model
from classifier.training import TrainResult, distributed, pick_device, train_model
from db.records import LABELS
from db.store import ModelRow, Store
from pipeline.errors import PipelineError
from pipeline.settings import Home

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeldOut:
    fashion_mnist: TensorSet
    scraped: TensorSet

    def sets(self) -> dict[str, TensorSet]:
        return {
            k: v
            for k, v in (("fashion_mnist", self.fashion_mnist), ("scraped", self.scraped))
            if len(v)
        }


@dataclass(frozen=True)
class TrainOutcome:
    model: ModelRow
    result: TrainResult
    scores: dict  # held-out accuracy per set, candidate and current
    promoted: bool
    reason: str


def load_data(
    store: Store, home: Home, dataset: str, workers: int = 2, train_limit: int | None = None
) -> tuple[TensorSet, HeldOut, dict]:
    """(training set, held-out sets, a description of the data) for *dataset*."""
    train, fmnist_test, scraped_train, scraped_test = (
        empty_set(),
        empty_set(),
        empty_set(),
        empty_set(),
    )
    described: dict = {"dataset": dataset}
    if dataset in ("fashion-mnist", "both"):
        train = fashion_mnist("train", home.datasets).limit(train_limit)
        fmnist_test = fashion_mnist("test", home.datasets)
        described["fashion_mnist_train"] = len(train)
    if dataset in ("scraped", "both"):
        rows = store.labelled_images()
        images = [LabelledImage(r["sha256"], r["path"], r["label"]) for r in rows]
        scraped_train, scraped_test = scraped_sets(
            images, LABELS, workers, pin_memory=pick_device().type == "cuda"
        )
        if len(scraped_train) == 0:
            raise PipelineError(
                f"{home.database}: no labelled scraped photos to train on; crawl shops with a "
                "category mapping first, or label photos with `pricelens label`"
            )
        described["scraped_train"] = len(scraped_train)
        described["scraped_labelled_until"] = max(r["labelled_at"] for r in rows)
        if dataset == "both":
            # one scraped photo per ~20 Fashion-MNIST ones would barely move the model
            repeats = max(1, len(train) // (8 * len(scraped_train)))
            described["scraped_repeats"] = repeats
            for _ in range(repeats):
                train = train + scraped_train
        else:
            train = scraped_train
    described["train_images"] = len(train)
    held = HeldOut(fmnist_test, scraped_test)
    described["held_out"] = {k: len(v) for k, v in held.sets().items()}
    return train, held, described


def score(checkpoint: Path, held: HeldOut, device: str = "auto") -> dict:
    """Held-out accuracy per set and their mean ("score") for the model in *checkpoint*."""
    model, classes = load_model(checkpoint)
    model.to(pick_device(device))
    figures = {
        name: evaluate(model, data, classes)["accuracy"] for name, data in held.sets().items()
    }
    figures["score"] = sum(figures.values()) / len(figures) if figures else 0.0
    return figures


def train_and_register(
    store: Store,
    home: Home,
    config: TrainConfig,
    from_model: ModelRow | None = None,
    resume_dir: Path | None = None,
    on_step=None,
) -> TrainOutcome | None:
    """Train on ``config.dataset`` (fine-tuning *from_model* if given), register the model,
    and make it current when it beats the current one on the same held-out data. Returns
    None in the other processes of a torchrun launch."""
    train, held, described = load_data(
        store, home, config.dataset, config.workers, config.train_limit
    )
    val = held.scraped if config.dataset == "scraped" else held.fashion_mnist
    if config.dataset == "both" and len(held.scraped):
        val = held.fashion_mnist.limit(5000) + held.scraped  # monitor both domains
    init_weights = None
    if from_model is not None:
        state = load_checkpoint(Path(from_model.path))
        init_weights = state["model"]
        shape = config_from_checkpoint(state["config"])  # fine-tuning keeps the architecture
        config = config.replace(
            architecture=shape.architecture, width=shape.width, embedding_dim=shape.embedding_dim
        )
        described["fine_tuned_from"] = from_model.version
    out_dir = resume_dir or home.models / datetime.now(UTC).strftime("m-%Y%m%dT%H%M%S%fZ")
    result = train_model(
        config,
        train,
        val,
        out_dir,
        LABELS,
        on_step,
        init_weights,
        resume=resume_dir is not None,
        apply_train_limit=False,  # load_data applied it, to the Fashion-MNIST part only
    )
    if distributed()[0] != 0:
        return None  # under torchrun only the first process judges and registers the model
    current = store.current_model()
    candidate_scores = score(result.checkpoint, held, config.device)
    scores = {"candidate": candidate_scores}
    if current is None or not Path(current.path).is_file():
        promoted, reason = True, "no current model"
    else:
        scores["current"] = score(Path(current.path), held, config.device)
        promoted = candidate_scores["score"] > scores["current"]["score"]
        reason = (
            f"held-out score {candidate_scores['score']:.4f} vs current "
            f"{current.version} {scores['current']['score']:.4f}"
        )
    metrics = {
        "accuracy": result.metrics["accuracy"],
        "per_class": result.metrics["per_class"],
        "held_out": candidate_scores,
        "epochs": result.epochs_run,
        "stopped_early": result.stopped_early,
        "train_seconds": round(result.seconds, 1),
        "config": config.to_dict(),
    }
    model_id = store.register_model(
        out_dir.name, config.architecture, str(result.checkpoint), metrics, described, promoted
    )
    log.info("model %s: %s; %s", out_dir.name, "promoted" if promoted else "kept aside", reason)
    model = next(m for m in store.models() if m.id == model_id)
    return TrainOutcome(model, result, scores, promoted, reason)


def evaluate_model(store: Store, home: Home, model: ModelRow, dataset: str, device: str) -> dict:
    """Accuracy, per-class accuracy and confusion matrix on the held-out data of *dataset*
    (the Fashion-MNIST test set and/or the held-out scraped photos)."""
    if dataset == "fashion-mnist":
        held = HeldOut(fashion_mnist("test", home.datasets), empty_set())
    else:
        _, held, _ = load_data(store, home, dataset)
    data = held.fashion_mnist + held.scraped
    if len(data) == 0:
        raise PipelineError(f"{dataset}: no held-out images to evaluate on")
    net, classes = load_model(Path(model.path))
    net.to(pick_device(device))
    figures = evaluate(net, data, classes)
    parts = held.sets()
    if len(parts) == 1:  # the whole set is that one set: no second pass over it
        figures["by_set"] = dict.fromkeys(parts, figures["accuracy"])
    else:
        figures["by_set"] = {n: evaluate(net, d, classes)["accuracy"] for n, d in parts.items()}
    figures["model"], figures["dataset"] = model.version, dataset
    return figures
