"""Labels, confidences and embeddings for photo files, from a saved checkpoint."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage

from classifier.model import build_model
from classifier.training import TrainConfig, load_checkpoint, model_kwargs, pick_device
from classifier.transforms import normalise, photo_to_array

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImagePrediction:
    label: str
    confidence: float
    embedding: np.ndarray  # float32, L2-normalised


class Classifier:
    """A trained model ready for inference on one device."""

    def __init__(self, checkpoint: Path, device: str = "auto"):
        state = load_checkpoint(checkpoint)
        config = TrainConfig(**state["config"])
        self.classes: list[str] = list(state["classes"])
        self.device = pick_device(device)
        self.model = build_model(config.architecture, **model_kwargs(config, len(self.classes)))
        self.model.load_state_dict(state["model"])
        self.model.to(self.device).eval()

    @torch.no_grad()
    def predict_arrays(self, arrays: np.ndarray, batch_size: int = 256) -> list[ImagePrediction]:
        """Predict for (N, 28, 28) uint8 arrays."""
        results = []
        for start in range(0, len(arrays), batch_size):
            batch = torch.from_numpy(np.array(arrays[start : start + batch_size]))
            logits, embeddings = self.model(normalise(batch.to(self.device)))
            probabilities = logits.softmax(1)
            confidence, index = probabilities.max(1)
            for conf, idx, emb in zip(
                confidence.tolist(), index.tolist(), embeddings.float().cpu().numpy(), strict=True
            ):
                results.append(ImagePrediction(self.classes[idx], conf, emb.astype(np.float32)))
        return results

    def predict_files(self, paths: list[str | Path]) -> list[ImagePrediction | None]:
        """One prediction per path, in order; None (and a warning) where a file is unreadable."""
        arrays, readable = [], []
        for i, path in enumerate(paths):
            try:
                with PILImage.open(path) as image:
                    arrays.append(photo_to_array(image))
                readable.append(i)
            except (OSError, ValueError) as exc:
                log.warning("%s: cannot read image, no prediction: %s", path, exc)
        results: list[ImagePrediction | None] = [None] * len(paths)
        if arrays:
            for i, prediction in zip(readable, self.predict_arrays(np.stack(arrays)), strict=True):
                results[i] = prediction
        return results
