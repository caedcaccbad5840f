"""Training the CNN on in-memory images: config, loop, evaluation and full-state checkpoints.

Checkpoints hold only tensors and plain values, so they load with ``weights_only=True``.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from classifier.errors import CheckpointError
from classifier.model import build_model
from classifier.transforms import augment, normalise

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    architecture: str = "shopnet"
    width: int = 16
    embedding_dim: int = 64
    epochs: int = 2
    batch_size: int = 128
    lr: float = 4e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    train_limit: int | None = None  # use only the first N training images (tests, demos)
    eval_limit: int | None = None
    augment: bool = True
    seed: int = 0
    device: str = "auto"


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    metrics: dict


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise CheckpointError("--device cuda asked for, but CUDA is not available here")
    return torch.device(name)


def model_kwargs(config: TrainConfig, num_classes: int) -> dict:
    return {
        "num_classes": num_classes,
        "width": config.width,
        "embedding_dim": config.embedding_dim,
    }


@torch.no_grad()
def evaluate(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512
) -> dict:
    """Accuracy overall and per class index on uint8 images (N, 28, 28)."""
    model.eval()
    device = next(model.parameters()).device
    predicted = []
    for start in range(0, len(images), batch_size):
        batch = normalise(images[start : start + batch_size].to(device))
        predicted.append(model(batch)[0].argmax(1).cpu())
    predicted = torch.cat(predicted)
    correct = predicted == labels
    per_class = {
        int(c): float(correct[labels == c].float().mean()) for c in labels.unique().tolist()
    }
    return {"accuracy": float(correct.float().mean()), "per_class": per_class}


def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically: a crash mid-save never leaves a truncated checkpoint behind."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path}: checkpoint not found") from exc
    except Exception as exc:  # pickle payloads are refused here by weights_only
        raise CheckpointError(f"{path}: not a loadable pricelens checkpoint: {exc}") from exc
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"{path}: not a pricelens checkpoint (no model/config)")
    return state


def train_model(
    config: TrainConfig,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    eval_images: torch.Tensor,
    eval_labels: torch.Tensor,
    out_dir: Path,
    class_names: tuple[str, ...],
    on_step: Callable[[int, int, float], None] | None = None,
) -> TrainResult:
    """Train from scratch; the best epoch by eval accuracy is kept as ``best.pt``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(json.dumps(asdict(config), indent=2))
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    device = pick_device(config.device)
    if config.train_limit:
        train_images, train_labels = (
            train_images[: config.train_limit],
            train_labels[: config.train_limit],
        )
    if config.eval_limit:
        eval_images, eval_labels = (
            eval_images[: config.eval_limit],
            eval_labels[: config.eval_limit],
        )
    model = build_model(config.architecture, **model_kwargs(config, len(class_names))).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    steps_per_epoch = -(-len(train_images) // config.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    # the whole set fits in memory: keep it on the device, no loader workers needed
    images_dev, labels_dev = train_images.to(device), train_labels.to(device)
    best, step, total = -1.0, 0, config.epochs * steps_per_epoch
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(images_dev), device=device, generator=generator)
        for start in range(0, len(order), config.batch_size):
            index = order[start : start + config.batch_size]
            batch = normalise(images_dev[index])
            if config.augment:
                batch = augment(batch, generator)
            logits, _ = model(batch)
            loss = loss_fn(logits, labels_dev[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if on_step:
                on_step(step, total, loss.item())
        metrics = evaluate(model, eval_images, eval_labels)
        log.info("epoch %d: eval accuracy %.4f", epoch + 1, metrics["accuracy"])
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": epoch + 1,
            "rng": torch.get_rng_state(),
            "best_metric": max(best, metrics["accuracy"]),
            "metrics": {"accuracy": metrics["accuracy"]},
            "config": asdict(config),
            "classes": list(class_names),
        }
        save_checkpoint(out_dir / "last.pt", state)
        if metrics["accuracy"] > best:
            best = metrics["accuracy"]
            save_checkpoint(out_dir / "best.pt", state)
            best_metrics = metrics
    best_metrics["per_class"] = {class_names[k]: v for k, v in best_metrics["per_class"].items()}
    return TrainResult(out_dir / "best.pt", best_metrics)
