"""Shared by the classifier tests: small real training data, and a loss recorder."""

from __future__ import annotations

import torch

from classifier.data import TensorSet
from classifier.fashion_mnist import load_split


def first_images(train: int, test: int) -> tuple[TensorSet, TensorSet]:
    def first(split, n: int) -> TensorSet:
        images, labels = split.images[:n].copy(), split.labels[:n]
        return TensorSet(torch.from_numpy(images), torch.from_numpy(labels))

    return first(load_split("train"), train), first(load_split("test"), test)


def recording_losses(into: list):
    """An on_step callback that appends each reported loss to *into*."""
    return lambda step, total, loss, accuracy: into.append(loss)
