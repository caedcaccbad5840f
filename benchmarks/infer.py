"""End-to-end inference throughput on scraped-like photos: read + decode + preprocess + model.

Target (classifier issue): >= 3,000 images/s on 2 CPU cores. The photos are Fashion-MNIST test
products rendered in the four demo shops' styles (PNG 112 px, JPEG 128 px, WebP 96 px, JPEG
160 px), written to disk first. The model has the default architecture; its weights do not
change the cost, so it is freshly initialised. Measured in one process: our path
(`Classifier.predict_paths`: decoding processes feeding the batched model, PyTorch and ONNX
Runtime) against two references: the previous loop (a 2-thread decode pool, then the model) and
the naive path (one photo at a time: decode, convert, model).

    .venv/bin/python benchmarks/infer.py [--images 6000] [--repeats 3] [--quick]

Writes benchmarks/results/infer.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# as `classifier` does before torch loads: measure what pricelens runs
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from classifier.checkpoints import save_checkpoint
from classifier.config import TrainConfig
from classifier.data import photo_batches
from classifier.export import export_onnx
from classifier.fashion_mnist import load_split
from classifier.inference import Classifier, read_photo
from classifier.model import build_model, model_kwargs
from db.records import LABELS
from demo.classic import ClassicShop
from demo.menu import MenuShop
from demo.photos import render_photo
from demo.scroll import ScrollShop
from demo.spa import SpaShop
from pipeline.classifying import DECODE_WORKERS

RESULTS = Path(__file__).resolve().parent / "results" / "infer.json"
STYLES = [shop.photo_style for shop in (ClassicShop, SpaShop, ScrollShop, MenuShop)]


def write_photos(folder: Path, count: int) -> list[Path]:
    test = load_split("test")
    paths = []
    for i in range(count):
        style = STYLES[i % len(STYLES)]
        data = render_photo(test.images[i % len(test.images)], style)
        path = folder / f"{hashlib.sha256(data).hexdigest()}.{style.extension}"
        path.write_bytes(data)
        paths.append(path)
    return paths


def write_checkpoint(folder: Path) -> Path:
    config = TrainConfig()
    model = build_model(config.architecture, **model_kwargs(config, len(LABELS)))
    path = folder / "best.pt"
    save_checkpoint(path, {"model": model.state_dict(), "config": config.to_dict(),
                           "classes": list(LABELS)})  # fmt: skip
    return path


def ours(classifier: Classifier, paths: list[Path], batch: int = 512) -> int:
    """The classify stage's loop: decoding processes feeding batches to the model."""
    return sum(
        len(indexes) for indexes, _ in classifier.predict_paths(paths, batch, DECODE_WORKERS)
    )


def thread_pool(classifier: Classifier, paths: list[Path], batch: int = 512) -> int:
    """The previous loop: a 2-thread decode pool, then the model, batch after batch."""
    done = 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        for start in range(0, len(paths), batch):
            arrays = list(pool.map(read_photo, paths[start : start + batch]))
            done += sum(p is not None for p in classifier.predict_decoded(arrays))
    return done


def naive(classifier: Classifier, paths: list[Path]) -> int:
    """One photo at a time through the model: what a first implementation does."""
    done = 0
    for path in paths:
        done += classifier.predict_files([path])[0] is not None
    return done


def decode_only(paths: list[Path]) -> int:
    return sum(len(indexes) for _, indexes in photo_batches(paths, 512, DECODE_WORKERS))


def timed(fn, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        count = fn()
        runs.append(count / (time.perf_counter() - started))
    return {"images_per_s": round(float(np.median(runs)), 1), "runs": [round(r, 1) for r in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=6000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1,000 images, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.images, args.repeats = 1000, 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_photos(folder, args.images)
        checkpoint = write_checkpoint(folder)
        export_onnx(checkpoint, folder / "model.onnx")
        by_torch = Classifier(checkpoint, "cpu", "torch")
        by_onnx = Classifier(checkpoint, backend="onnx")
        ours(by_torch, paths[:600])  # warm the page cache and the kernels
        figures = {
            "ours_torch": timed(lambda: ours(by_torch, paths), args.repeats),
            "ours_onnx": timed(lambda: ours(by_onnx, paths), args.repeats),
            "thread_pool_onnx": timed(lambda: thread_pool(by_onnx, paths), args.repeats),
            "naive_torch": timed(lambda: naive(by_torch, paths[:1000]), 1),
            "decode_only": timed(lambda: decode_only(paths), args.repeats),
        }
    best = max(figures["ours_torch"]["images_per_s"], figures["ours_onnx"]["images_per_s"])
    result = {
        "benchmark": "infer",
        "measured": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            # machines differ between sessions: AVX2 only, or AVX-512 (about 1.8x here)
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "images": args.images,
        "formats": sorted({s.format for s in STYLES}),
        "target_images_per_s": 3000,
        "images_per_s": best,
        "met": best >= 3000,
        "ratio_vs_naive": round(best / figures["naive_torch"]["images_per_s"], 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        **figures,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
