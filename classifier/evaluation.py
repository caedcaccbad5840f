"""Accuracy, per-class accuracy and the confusion matrix of a model on a held-out set."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from classifier.data import TensorSet
from classifier.transforms import normalise


@torch.no_grad()
def predict_logits(
    model: nn.Module, images: torch.Tensor, batch_size: int | None = None
) -> torch.Tensor:
    """Logits for uint8 (N, 28, 28) images, in eval mode, on the model's device."""
    model.eval()
    parameter = next(model.parameters())
    # a GPU takes a whole test set in a few launches; a CPU works best in cache-sized batches
    batch_size = batch_size or (5000 if parameter.device.type == "cuda" else 1000)
    channels_last = parameter.ndim == 4 and parameter.is_contiguous(
        memory_format=torch.channels_last
    )
    out = []
    for start in range(0, len(images), batch_size):
        batch = normalise(images[start : start + batch_size].to(parameter.device))
        if channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        # bf16 on CUDA, as training runs (fp16 is autocast's CUDA default); CPU in fp32
        cuda = parameter.device.type == "cuda"
        with torch.autocast(parameter.device.type, dtype=torch.bfloat16, enabled=cuda):
            out.append(model(batch)[0].float().cpu())
    return torch.cat(out) if out else torch.empty(0, 0)


def evaluate(
    model: nn.Module, data: TensorSet, classes: Sequence[str], loss_fn: nn.Module | None = None
) -> dict:
    """{"accuracy", "loss", "per_class": {name: accuracy}, "confusion": rows=true, cols=pred}."""
    logits = predict_logits(model, data.images)
    labels = data.labels.cpu()
    predicted = logits.argmax(1)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    confusion = torch.zeros(len(classes), len(classes), dtype=torch.long)
    confusion.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
    per_class = {
        name: float(confusion[i, i] / confusion[i].sum())
        for i, name in enumerate(classes)
        if confusion[i].sum() > 0
    }
    return {
        "accuracy": float((predicted == labels).float().mean()),
        "loss": float(loss_fn(logits, labels)),
        "images": len(labels),
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }


def write_confusion_png(confusion: list[list[int]], classes: Sequence[str], path: Path) -> Path:
    """The confusion matrix as a PNG heat map (rows: true class, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7.5, 6.5), dpi=100)
    image = axes.imshow(confusion, cmap="Blues")
    axes.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    peak = max((max(row) for row in confusion), default=0)
    for i, row in enumerate(confusion):
        for j, count in enumerate(row):
            colour = "white" if count > peak / 2 else "black"
            axes.text(j, i, str(count), ha="center", va="center", fontsize=7, color=colour)
    figure.colorbar(image)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
