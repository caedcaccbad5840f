"""Training data as in-memory uint8 tensors: Fashion-MNIST, scraped photos, or both.

Scraped photos are decoded once, from disk, by a DataLoader with workers (and pinned memory on
CUDA); the decoded 28x28 set is small enough to stay in memory, or on the GPU, for training.
Which photo is held out for evaluation, and which of the others validates training (picks
the best epoch, stops early), depends only on its sha256, so splits never drift as new photos
arrive. The held-out photos (and the Fashion-MNIST test set) judge promotion only: choosing
epochs on them as well would favour the candidate on the very data that compares it.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage
from torch.utils.data import DataLoader, Dataset

from classifier.fashion_mnist import load_split
from classifier.transforms import INPUT_SIZE, photo_to_array

log = logging.getLogger(__name__)

HELD_OUT_PERCENT = 20
VALIDATION_PERCENT = 15  # of the photos not held out
FASHION_MNIST_VALIDATION = 5000  # the last images of the Fashion-MNIST training split


@dataclass(frozen=True)
class LabelledImage:
    sha256: str
    path: str
    label: str


@dataclass(frozen=True)
class TensorSet:
    images: torch.Tensor  # uint8 (N, 28, 28)
    labels: torch.Tensor  # int64 (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def limit(self, n: int | None) -> TensorSet:
        return self if not n else TensorSet(self.images[:n], self.labels[:n])

    def __add__(self, other: TensorSet) -> TensorSet:
        return TensorSet(
            torch.cat([self.images, other.images]), torch.cat([self.labels, other.labels])
        )


def empty_set() -> TensorSet:
    return TensorSet(
        torch.empty(0, INPUT_SIZE, INPUT_SIZE, dtype=torch.uint8), torch.empty(0, dtype=torch.long)
    )


def is_held_out(sha256: str) -> bool:
    """The same photo is always on the same side of the split."""
    return int(sha256[:8], 16) % 100 < HELD_OUT_PERCENT


def is_validation(sha256: str) -> bool:
    """Of the photos not held out, those that validate training (other hex digits, so the
    two splits are independent)."""
    return not is_held_out(sha256) and int(sha256[8:16], 16) % 100 < VALIDATION_PERCENT


def split_of(sha256: str) -> str:
    """ "train", "validation" or "held_out": the photo's side of the split."""
    if is_held_out(sha256):
        return "held_out"
    return "validation" if is_validation(sha256) else "train"


@dataclass(frozen=True)
class Splits:
    train: TensorSet
    validation: TensorSet  # picks the best epoch and stops early
    held_out: TensorSet  # judges promotion
    # scraped photos: (sha256, label, split) of each photo in the sets, for the registry
    photos: tuple[tuple[str, str, str], ...] = ()


def fashion_mnist_splits(download_dir: Path | None = None) -> Splits:
    """Training minus its last FASHION_MNIST_VALIDATION images, those images, the test set."""
    train = fashion_mnist("train", download_dir)
    cut = len(train) - FASHION_MNIST_VALIDATION
    return Splits(
        TensorSet(train.images[:cut], train.labels[:cut]),
        TensorSet(train.images[cut:], train.labels[cut:]),
        fashion_mnist("test", download_dir),
    )


def fashion_mnist(split: str, download_dir: Path | None = None) -> TensorSet:
    data = load_split(split, download_dir=download_dir)
    return TensorSet(torch.from_numpy(data.images.copy()), torch.from_numpy(data.labels))


def read_photo(path: str | Path) -> np.ndarray | None:
    """The photo in training form, or None (and a warning) when it cannot be read."""
    return decode_photo(path)[0]


def decode_photo(path: str | Path) -> tuple[np.ndarray | None, str | None]:
    """(the photo in training form, None), or (None, why it cannot be read) with a warning."""
    from classifier.fast_decode import decode_plain  # OpenCV: needed by photos alone

    try:
        data = Path(path).read_bytes()
        plain = decode_plain(data)  # most shop photos: OpenCV, decoding about 1.5x as fast
        if plain is not None:
            return plain, None
        with PILImage.open(io.BytesIO(data)) as image:
            return photo_to_array(image), None
    except (OSError, ValueError) as exc:
        log.warning("%s: cannot read image, skipped: %s", path, exc)
        return None, str(exc) or type(exc).__name__


class PhotoBatches(Dataset):
    """Photo files decoded to the training form, a whole batch per item: a worker fills one
    array, so no per-photo tensors are made and stacked. Unreadable files are left out, and
    given with the reason by their index."""

    def __init__(self, paths: Sequence[str], batch_size: int):
        self.paths, self.batch_size = list(paths), batch_size

    def __len__(self) -> int:
        return -(-len(self.paths) // self.batch_size)

    def __getitem__(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, dict[int, str]]:
        start = batch * self.batch_size
        paths = self.paths[start : start + self.batch_size]
        pixels = np.empty((len(paths), INPUT_SIZE, INPUT_SIZE), dtype=np.uint8)
        kept: list[int] = []
        failed: dict[int, str] = {}
        for offset, path in enumerate(paths):
            photo, problem = decode_photo(path)
            if photo is not None:
                pixels[len(kept)] = photo
                kept.append(start + offset)
            else:
                failed[start + offset] = problem
        return torch.from_numpy(pixels[: len(kept)]), torch.tensor(kept, dtype=torch.int64), failed


def photo_batches(
    paths: Sequence[str],
    batch_size: int = 256,
    workers: int = 2,
    pin_memory: bool = False,
    problems: dict[int, str] | None = None,
) -> Iterator[tuple[torch.Tensor, list[int]]]:
    """Decoded photos in batches, in order: (uint8 arrays of the readable ones, their indexes
    into *paths*). Worker processes decode the next batches while the caller uses this one
    (Pillow in threads would share one interpreter's GIL for everything but the codec).
    *problems*, if given, receives why each unreadable one could not be read, by index."""
    several = len(paths) > 2 * batch_size  # else starting workers costs more than it saves
    loader = DataLoader(
        PhotoBatches(paths, batch_size),
        batch_size=None,  # each item is a batch already
        num_workers=workers if several else 0,
        pin_memory=pin_memory,
        prefetch_factor=4 if workers and several else None,
    )
    for batch, indexes, failed in loader:
        if problems is not None:
            problems.update(failed)
        yield batch, indexes.tolist()


def decode_photos(
    paths: Sequence[str], workers: int = 2, pin_memory: bool = False
) -> tuple[torch.Tensor, list[int]]:
    """(uint8 arrays of the readable photos, their indexes into *paths*)."""
    arrays, kept = [torch.empty(0, INPUT_SIZE, INPUT_SIZE, dtype=torch.uint8)], []
    for batch, indexes in photo_batches(paths, 256, workers, pin_memory):
        arrays.append(batch)
        kept.extend(indexes)
    return torch.cat(arrays), kept


def scraped_sets(
    images: Sequence[LabelledImage],
    classes: Sequence[str],
    workers: int = 2,
    pin_memory: bool = False,
) -> Splits:
    """Training, validation and held-out sets of labelled scraped photos; unknown labels are
    skipped."""
    index = {name: i for i, name in enumerate(classes)}
    usable = [image for image in images if image.label in index]
    if len(usable) < len(images):
        log.warning("%d scraped labels are not model classes; skipped", len(images) - len(usable))
    arrays, kept = decode_photos([i.path for i in usable], workers, pin_memory)
    if not kept:
        return Splits(empty_set(), empty_set(), empty_set())
    labels = torch.tensor([index[usable[k].label] for k in kept], dtype=torch.long)
    splits = [split_of(usable[k].sha256) for k in kept]
    held = torch.tensor([split == "held_out" for split in splits], dtype=torch.bool)
    val = torch.tensor([split == "validation" for split in splits], dtype=torch.bool)
    train = ~held & ~val
    photos = tuple(
        (usable[k].sha256, usable[k].label, split) for k, split in zip(kept, splits, strict=True)
    )
    return Splits(
        TensorSet(arrays[train], labels[train]),
        TensorSet(arrays[val], labels[val]),
        TensorSet(arrays[held], labels[held]),
        photos,
    )
