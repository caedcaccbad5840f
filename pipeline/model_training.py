"""Training, evaluating and promoting models against the database: which data a run sees,
where its files go, and whether the new model replaces the current one.

Promotion rule: a model trained from scratch with no current model becomes current; otherwise
the candidate and the current model are scored on the same held-out data (the Fashion-MNIST
test set and the held-out scraped photos, averaged when both are used) and the candidate is
promoted only if it scores higher.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from classifier.checkpoints import load_checkpoint
from classifier.config import SHAPE_KEYS, TrainConfig, config_from_checkpoint
from classifier.data import (
    LabelledImage,
    Splits,
    TensorSet,
    empty_set,
    fashion_mnist,
    fashion_mnist_splits,
    is_held_out,
    scraped_sets,
)
from classifier.errors import ClassifierError
from classifier.evaluation import evaluate
from classifier.export import export_onnx, load_model, onnx_session
from classifier.inference import onnx_beside
from classifier.training import TrainResult, distributed, pick_device, train_model
from db.records import LABELS
from db.store import ModelRow, Store
from pipeline.errors import PipelineError
from pipeline.photo_files import file_stamp, known_unreadable
from pipeline.settings import Home

log = logging.getLogger(__name__)

# beside config.json in a run folder: what the run is beyond its settings (the model it
# fine-tunes), so that `train --resume` registers it as the uninterrupted run would
RUN_FILE = "run.json"


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
) -> tuple[TensorSet, TensorSet, HeldOut, dict, list[tuple[str, str, str]]]:
    """(training set, validation set, held-out sets, a description of the data, the scraped
    photos in them as (sha256, label, split)) for *dataset*. Validation comes out of the
    training data; the held-out sets judge promotion only."""
    train, val = empty_set(), empty_set()
    fmnist_test, scraped = empty_set(), Splits(empty_set(), empty_set(), empty_set())
    described: dict = {"dataset": dataset}
    photos: list[tuple[str, str, str]] = []
    if dataset in ("fashion-mnist", "both"):
        fmnist = fashion_mnist_splits(home.datasets)
        train, val, fmnist_test = (
            fmnist.train.limit(train_limit),
            fmnist.validation,
            fmnist.held_out,
        )
        described["fashion_mnist_train"] = len(train)
    if dataset in ("scraped", "both"):
        rows = store.labelled_images()
        scraped = _scraped(rows, workers)
        if len(scraped.train) == 0:
            raise PipelineError(
                f"{home.database}: no labelled scraped photos to train on; crawl shops with a "
                "category mapping first, or label photos with `pricelens label`"
            )
        if len(scraped.validation) == 0:  # a handful of photos: validate on what trains
            log.warning("no scraped photo falls in the validation split; validating on training")
            scraped = Splits(scraped.train, scraped.train, scraped.held_out, scraped.photos)
        described["scraped_train"] = len(scraped.train)
        photos = list(scraped.photos)
        described["scraped_labelled_until"] = max(r["labelled_at"] for r in rows)
        if dataset == "both":
            # one scraped photo per ~20 Fashion-MNIST ones would barely move the model
            repeats = max(1, len(train) // (8 * len(scraped.train)))
            described["scraped_repeats"] = repeats
            for _ in range(repeats):
                train = train + scraped.train
            val = val + scraped.validation  # monitor both domains
        else:  # with "both" train_limit cuts the Fashion-MNIST part only, above
            train, val = scraped.train.limit(train_limit), scraped.validation
            described["scraped_train"] = len(train)
            photos = _first_trained(photos, len(train))
    described["train_images"] = len(train)
    described["validation_images"] = len(val)
    held = HeldOut(fmnist_test, scraped.held_out)
    described["held_out"] = {k: len(v) for k, v in held.sets().items()}
    return train, val, held, described, photos


def _first_trained(photos: list[tuple[str, str, str]], n: int) -> list[tuple[str, str, str]]:
    """*photos* less the training photos past the first *n* (train_limit keeps those)."""
    kept, trained = [], 0
    for photo in photos:
        if photo[2] == "train":
            trained += 1
            if trained > n:
                continue
        kept.append(photo)
    return kept


def _scraped(rows: list[dict], workers: int = 2) -> Splits:
    """The labelled photos in their splits; those `classify` found undecodable, their files
    unchanged since, are left out rather than decoded (and warned about) again."""
    rows = [r for r in rows if not known_unreadable(r, file_stamp(r["path"]))]
    images = [LabelledImage(r["sha256"], r["path"], r["label"]) for r in rows]
    return scraped_sets(images, LABELS, workers, pin_memory=pick_device().type == "cuda")


def _held_out_scraped(store: Store, workers: int) -> TensorSet:
    """The held-out scraped photos alone, decoded by *workers* processes."""
    rows = [r for r in store.labelled_images() if is_held_out(r["sha256"])]
    return _scraped(rows, workers).held_out


def held_out_data(store: Store, home: Home, dataset: str, workers: int = 2) -> HeldOut:
    """The held-out sets of *dataset* alone: only held-out photos are decoded, by *workers*
    processes."""
    fmnist = empty_set()
    if dataset in ("fashion-mnist", "both"):
        fmnist = fashion_mnist("test", home.datasets)
    scraped = empty_set()
    if dataset in ("scraped", "both"):
        scraped = _held_out_scraped(store, workers)
        if len(scraped) == 0:
            raise PipelineError(
                f"{home.database}: no held-out scraped photos to evaluate on; crawl shops with "
                "a category mapping first, or label photos with `pricelens label`"
            )
    return HeldOut(fmnist, scraped)


def judged_with(
    store: Store, home: Home, held: HeldOut, current: ModelRow, workers: int = 2
) -> HeldOut:
    """*held* with the held-out sets of the data *current* learned from: a model that learned
    the shops' photos is not replaced by one that never saw them for scoring higher on
    Fashion-MNIST alone (nor the other way round). *held* itself when nothing is missing.
    Missing scraped photos are decoded by *workers* processes."""
    seen = (current.data or {}).get("dataset")
    fmnist, scraped = held.fashion_mnist, held.scraped
    if seen in ("scraped", "both") and not len(scraped):
        scraped = _held_out_scraped(store, workers)
    if seen in ("fashion-mnist", "both") and not len(fmnist):
        try:
            fmnist = fashion_mnist("test", home.datasets)
        except ClassifierError as exc:  # gone since the current model was trained
            log.warning("judging without Fashion-MNIST's test set: %s", exc)
    if (len(fmnist), len(scraped)) == (len(held.fashion_mnist), len(held.scraped)):
        return held
    return HeldOut(fmnist, scraped)


def fine_tuning_config(
    config: TrainConfig, base: ModelRow, saved: dict, given: Mapping[str, str]
) -> TrainConfig:
    """*config* with *base*'s shape (architecture, width, embedding_dim: its weights fix
    them); one that the user set (*given*) to something else is an error, not replaced.
    *base*'s tta_flip is kept too unless the user set it."""
    shape = config_from_checkpoint(saved)
    clashes = [
        f"{key} {getattr(config, key)!r} ({given[key]})"
        for key in SHAPE_KEYS
        if key in given and getattr(config, key) != getattr(shape, key)
    ]
    if clashes:
        raise PipelineError(
            f"--from {base.version} keeps that model's shape (architecture "
            f"{shape.architecture!r}, width {shape.width}, embedding_dim {shape.embedding_dim}), "
            f"but {', '.join(clashes)} was asked for; drop it, or train from scratch without --from"
        )
    kept = {key: getattr(shape, key) for key in SHAPE_KEYS}
    if "tta_flip" not in given:  # how the base predicts (its mirror-image vote), unless asked
        kept["tta_flip"] = shape.tta_flip
    return config.replace(**kept)


@dataclass(frozen=True)
class ResumableRun:
    folder: Path
    config: TrainConfig  # as the run was started
    epoch: int  # epochs done
    finished: bool  # training is over (last epoch, or early stop); only registering is left
    fine_tuned_from: str | None = None  # the base model's version, for a fine-tuning run


def resumable_run(store: Store, models: Path) -> ResumableRun | None:
    """The newest run folder with a ``last.pt`` but no row in the models table: a run stopped
    before its last epoch, or one whose training finished but which was interrupted while it
    was scored and registered. A checkpoint that cannot be loaded is skipped with a warning,
    so it does not hide older runs."""
    registered = {m.version for m in store.models()}  # registering comes after training
    runs = sorted(models.glob("*/last.pt"), key=lambda p: p.stat().st_mtime, reverse=True)
    for last in runs:
        if last.parent.name in registered:
            continue
        try:
            state = load_checkpoint(last)
            config = config_from_checkpoint(state["config"])
        except ClassifierError as exc:
            log.warning("%s; skipped", exc)
            continue
        epoch, bad_epochs = state.get("epoch", 0), state.get("bad_epochs", 0)
        finished = epoch >= config.epochs or bool(config.patience and bad_epochs >= config.patience)
        lineage = read_run_info(last.parent).get("fine_tuned_from")
        return ResumableRun(last.parent, config, epoch, finished, lineage)
    return None


def write_run_info(folder: Path, info: dict) -> None:
    """Write the run's RUN_FILE atomically, before training: an interruption at any epoch
    finds it."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{RUN_FILE}.tmp"
    tmp.write_text(json.dumps(info, indent=2, sort_keys=True))
    tmp.replace(folder / RUN_FILE)


def read_run_info(folder: Path) -> dict:
    """The run's RUN_FILE; {} for a run from before it existed, or one it cannot read (with
    a warning: the run is still worth resuming, only without its lineage)."""
    path = folder / RUN_FILE
    if not path.exists():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable (%s); resuming without its lineage", path, exc)
        return {}
    if not isinstance(info, dict):
        log.warning("%s: not a JSON object; resuming without its lineage", path)
        return {}
    return info


def export_for_inference(checkpoint: Path) -> None:
    """The current model's ONNX export beside it, parity-checked, which `classify` runs on a
    CPU (faster than PyTorch there); one already there, newer and loadable is kept. A failed
    export only costs that speed: said in the log, PyTorch classifies."""
    target = onnx_beside(checkpoint)
    try:
        if target.is_file() and target.stat().st_mtime_ns >= checkpoint.stat().st_mtime_ns:
            try:
                onnx_session(target)
                return
            except Exception:  # cut short, or not ONNX: written again below
                log.info("%s: cannot be loaded; exporting again", target)
        export_onnx(checkpoint, target)
    except Exception as exc:  # an exporter's failure must not undo a promotion
        log.warning("%s: no ONNX export (%s); classify runs it in PyTorch", checkpoint, exc)


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
    given: Mapping[str, str] | None = None,
) -> TrainOutcome | None:
    """Train on ``config.dataset`` (fine-tuning *from_model* if given), register the model,
    and make it current when it beats the current one on the same held-out data. *given*:
    the keys the user set and where (resolve_config's sources), so that a shape asked for
    that *from_model*'s weights cannot take is refused rather than replaced. Returns None in
    the other processes of a torchrun launch. A resumed run (*resume_dir*) takes its lineage
    from the run folder, where the run wrote it when it started."""
    pick_device(config.device)  # --device cuda without CUDA: fail before data and run folder
    init_weights = None
    if from_model is not None:
        state = load_checkpoint(Path(from_model.path))
        init_weights = state["model"]
        config = fine_tuning_config(config, from_model, state["config"], given or {})
    train, val, held, described, photos = load_data(
        store, home, config.dataset, config.workers, config.train_limit
    )
    out_dir = resume_dir or home.models / datetime.now(UTC).strftime("m-%Y%m%dT%H%M%S%fZ")
    if resume_dir is None:
        info = {"fine_tuned_from": from_model.version if from_model is not None else None}
        if distributed()[0] == 0:
            write_run_info(out_dir, info)
    else:
        info = read_run_info(resume_dir)
    if info.get("fine_tuned_from"):
        described["fine_tuned_from"] = info["fine_tuned_from"]
    result = train_model(
        config,
        train,
        val,
        out_dir,
        LABELS,
        on_step,
        init_weights,
        resume=resume_dir is not None,
        apply_train_limit=False,  # load_data applied it (with "both": to Fashion-MNIST)
    )
    if distributed()[0] != 0:
        return None  # under torchrun only the first process judges and registers the model
    current = store.current_model()
    comparable = current is not None and Path(current.path).is_file()
    if comparable:  # the current model's own sets count too
        held = judged_with(store, home, held, current, config.workers)
    candidate_scores = score(result.checkpoint, held, config.device)
    scores = {"candidate": candidate_scores}
    if current is None:
        promoted, reason = True, "no current model"
    elif not comparable:  # nothing to score it against: say so
        promoted = True
        reason = f"current model {current.version} has no checkpoint at {current.path}"
    elif not held.sets():  # both would score 0: better cannot be told
        promoted = False
        reason = (
            f"nothing held out to compare it with current {current.version} on (no labelled "
            f"photo of {home.database} is in the held-out split yet); `pricelens models "
            f"promote {out_dir.name}` makes it current anyway"
        )
    else:
        scores["current"] = score(Path(current.path), held, config.device)
        promoted = candidate_scores["score"] > scores["current"]["score"]
        reason = (
            f"held-out score {candidate_scores['score']:.4f} vs current "
            f"{current.version} {scores['current']['score']:.4f} on "
            f"{' and '.join(held.sets())}"
        )
    metrics = {
        "accuracy": result.metrics["accuracy"],
        "per_class": result.metrics["per_class"],
        "held_out": candidate_scores,
        "epochs": result.epochs_run,
        "stopped_early": result.stopped_early,
        "train_seconds": round(result.seconds, 1),
        "config": result.config or config.to_dict(),  # the schedule as it ran
    }
    model_id = store.register_model(
        out_dir.name,
        config.architecture,
        str(result.checkpoint),
        metrics,
        described,
        promoted,
        photos,
    )
    log.info("model %s: %s; %s", out_dir.name, "promoted" if promoted else "kept aside", reason)
    if promoted:
        export_for_inference(result.checkpoint)
    model = next(m for m in store.models() if m.id == model_id)
    return TrainOutcome(model, result, scores, promoted, reason)


def evaluate_model(store: Store, home: Home, model: ModelRow, dataset: str, device: str) -> dict:
    """Accuracy, per-class accuracy and confusion matrix on the held-out data of *dataset*
    (the Fashion-MNIST test set and/or the held-out scraped photos)."""
    held = held_out_data(store, home, dataset)
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
    # as promotion scores a model: each set counts the same, however many images it has
    figures["score"] = sum(figures["by_set"].values()) / len(figures["by_set"])
    figures["model"], figures["dataset"] = model.version, dataset
    return figures
