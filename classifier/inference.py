"""Labels, confidences and embeddings for photo files, from a checkpoint (PyTorch) or its ONNX
export (ONNX Runtime)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from classifier.data import photo_batches, read_photo
from classifier.errors import ClassifierError
from classifier.export import load_model, onnx_session
from classifier.training import pick_device
from classifier.transforms import normalise

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnx")


@dataclass(frozen=True)
class ImagePrediction:
    label: str
    confidence: float
    embedding: np.ndarray  # float32, L2-normalised
    second_label: str | None = None  # the runner-up, for matching's top-2 blocking
    second_confidence: float | None = None


# every uint8 value as training's `normalise` makes it: one table lookup per pixel instead of
# three passes, and the same floats, bit for bit (normalise works value by value)
_NORMALISED = normalise(torch.arange(256, dtype=torch.uint8).view(1, 1, 256)).flatten().numpy()


def to_input(arrays: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> normalised float32 (N, 1, 28, 28), as `normalise` in training."""
    return _NORMALISED[arrays][:, None]


def onnx_beside(checkpoint: Path) -> Path:
    """Where a checkpoint's ONNX export goes (`models export --onnx`, promotion)."""
    return Path(checkpoint).with_name("model.onnx")


def chosen_backend(checkpoint: Path, device: str, backend: str) -> str:
    """*backend*, with "auto" resolved: ONNX Runtime on the CPU when the checkpoint has an
    export at least as new as itself (~1.4x PyTorch's photos a second on 2 cores), else
    PyTorch (a GPU, or no export)."""
    if backend != "auto":
        return backend
    onnx_path = onnx_beside(checkpoint)
    if pick_device(device).type != "cpu" or not onnx_path.is_file():
        return "torch"
    fresh = onnx_path.stat().st_mtime_ns >= Path(checkpoint).stat().st_mtime_ns
    return "onnx" if fresh else "torch"


class Classifier:
    """A trained model ready for inference: ``backend="onnx"`` runs *checkpoint*'s ONNX file
    (``model.onnx`` beside it, from ``pricelens models export --onnx`` or a promotion);
    "auto" runs it where that is the faster way (`chosen_backend`)."""

    def __init__(self, checkpoint: Path, device: str = "auto", backend: str = "auto"):
        if backend not in BACKENDS:
            raise ClassifierError(f"backend {backend!r}: expected one of {BACKENDS}")
        self.model, self.classes = load_model(checkpoint)
        self.backend = chosen_backend(checkpoint, device, backend)
        if self.backend == "onnx":
            onnx_path = onnx_beside(checkpoint)
            if not onnx_path.is_file():
                raise ClassifierError(  # the run folder is named after the version
                    f"{onnx_path}: no ONNX export; run `pricelens models export "
                    f"{Path(checkpoint).parent.name} --onnx`"
                )
            try:
                self.session = onnx_session(onnx_path)
            except Exception as exc:
                if backend != "auto":
                    raise
                # chosen for speed only: a broken export costs that, never the run
                log.warning("%s: cannot be loaded (%s); PyTorch runs the model", onnx_path, exc)
                self.backend = "torch"
        if self.backend == "torch":
            self.device = pick_device(device)
            self.model.to(self.device, memory_format=torch.channels_last)

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.backend == "onnx":
            logits, embeddings = self.session.run(None, {"images": batch})
            return logits, embeddings
        with torch.no_grad():
            tensor = torch.from_numpy(batch).to(self.device)
            logits, embeddings = self.model(tensor.contiguous(memory_format=torch.channels_last))
        return logits.float().cpu().numpy(), embeddings.float().cpu().numpy()

    def predict_arrays(self, arrays: np.ndarray, batch_size: int = 512) -> list[ImagePrediction]:
        """Predict for (N, 28, 28) uint8 arrays."""
        results = []
        for start in range(0, len(arrays), batch_size):
            logits, embeddings = self._run(to_input(arrays[start : start + batch_size]))
            shifted = np.exp(logits - logits.max(1, keepdims=True))
            probabilities = shifted / shifted.sum(1, keepdims=True)
            ranked = np.argsort(-probabilities, axis=1)[:, :2]
            for probs, order, emb in zip(probabilities, ranked, embeddings, strict=True):
                first, second = int(order[0]), int(order[-1])
                has_second = len(order) > 1
                results.append(
                    ImagePrediction(
                        self.classes[first],
                        float(probs[first]),
                        emb.astype(np.float32),
                        self.classes[second] if has_second else None,
                        float(probs[second]) if has_second else None,
                    )
                )
        return results

    def predict_files(self, paths: list[str | Path]) -> list[ImagePrediction | None]:
        """One prediction per path, in order; None where a file is unreadable."""
        arrays = [read_photo(path) for path in paths]
        return self.predict_decoded(arrays)

    def predict_paths(
        self,
        paths: Sequence[str | Path],
        batch_size: int = 512,
        workers: int = 2,
        problems: dict[int, str] | None = None,
    ) -> Iterator[tuple[list[int], list[ImagePrediction]]]:
        """(indexes into *paths*, their predictions) batch by batch, while *workers*
        processes decode the next batches; unreadable files are logged and left out (with
        why, by index, in *problems* if given)."""
        names = [str(p) for p in paths]
        for arrays, indexes in photo_batches(names, batch_size, workers, problems=problems):
            if indexes:
                yield indexes, self.predict_arrays(arrays.numpy(), batch_size)

    def predict_decoded(self, arrays: list[np.ndarray | None]) -> list[ImagePrediction | None]:
        readable = [i for i, a in enumerate(arrays) if a is not None]
        results: list[ImagePrediction | None] = [None] * len(arrays)
        if readable:
            stacked = np.stack([arrays[i] for i in readable])
            for i, prediction in zip(readable, self.predict_arrays(stacked), strict=True):
                results[i] = prediction
        return results
