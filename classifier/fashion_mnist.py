"""Fashion-MNIST from its idx files (numpy only, so the demo mall can use it without torch).

Looked for in $PRICELENS_FASHION_MNIST, then Debian's dataset-fashion-mnist folder; elsewhere
torchvision downloads it into a cache folder.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from classifier.errors import DatasetMissing

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # uint8, (N, 28, 28), white product on black
    labels: np.ndarray  # int64, (N,)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _candidate_dirs(extra: Path | None) -> list[Path]:
    dirs = []
    if extra:
        dirs.append(Path(extra))
    if os.environ.get("PRICELENS_FASHION_MNIST"):
        dirs.append(Path(os.environ["PRICELENS_FASHION_MNIST"]))
    dirs.append(DEBIAN_DIR)
    return dirs


def locate(root: Path | None = None, download_dir: Path | None = None) -> Path:
    """Return the folder holding the four idx files, downloading them if needed and allowed."""
    for folder in _candidate_dirs(root):
        if all(_find(folder, stem) for pair in _FILES.values() for stem in pair):
            return folder
    if download_dir is None:
        raise DatasetMissing(
            "Fashion-MNIST not found in "
            + ", ".join(str(d) for d in _candidate_dirs(root))
            + " (install Debian's dataset-fashion-mnist or set PRICELENS_FASHION_MNIST)"
        )
    return _download(download_dir)


def _download(target: Path) -> Path:
    try:
        from torchvision.datasets import FashionMNIST

        FashionMNIST(str(target), train=True, download=True)
        FashionMNIST(str(target), train=False, download=True)
    except Exception as exc:  # network errors come in many types
        raise DatasetMissing(
            f"Fashion-MNIST is not installed and could not be downloaded into {target}: {exc} "
            "(offline: install Debian's dataset-fashion-mnist, or put its four idx files in a "
            "folder and set PRICELENS_FASHION_MNIST to it)"
        ) from exc
    return target / "FashionMNIST" / "raw"


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetMissing(f"{path}: not an unsigned-byte idx file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DatasetMissing(f"{path}: expected {dims} values, found {body.size}")
    return body.reshape(dims)


def load_split(split: str, root: Path | None = None, download_dir: Path | None = None) -> Split:
    """Load ``train`` (60,000 images) or ``test`` (10,000 images)."""
    folder = locate(root, download_dir)
    images_stem, labels_stem = _FILES[split]
    images = _read_idx(_find(folder, images_stem))
    labels = _read_idx(_find(folder, labels_stem)).astype(np.int64)
    if len(images) != len(labels):
        raise DatasetMissing(f"{folder}: {split} has {len(images)} images, {len(labels)} labels")
    return Split(images, labels)
