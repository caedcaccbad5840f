"""Does retraining on scraped photos pay? A model trained only on plain Fashion-MNIST is scored
on the held-out scraped photos of the `hard` demo mall, then fine-tuned on Fashion-MNIST plus
the scraped photos (`pricelens train --dataset both --from current`) and scored again on the
same held-out photos (split by photo hash: those photos are never trained on).

Two stricter figures, because the demo builds every product photo from a Fashion-MNIST *test*
image (its "garment") and sells one product in several shops, each photo restyled: a
held-out photo's garment may have been trained on through another shop's photo, and the
retrained model has seen (restyled) garments of the Fashion-MNIST test set. So each model is
also scored on the held-out photos whose garment no training or validation photo shows, and
on the Fashion-MNIST test images that are no product's garment.

    .venv/bin/python benchmarks/retrain.py [--products 600] [--epochs 3] [--retrain-epochs 2]

Writes benchmarks/results/retrain.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from classifier.config import TrainConfig
from classifier.data import decode_photos, fashion_mnist, is_held_out
from classifier.evaluation import predict_logits
from classifier.export import load_model
from db.records import LABELS
from db.store import Store
from demo.catalog import Catalog
from demo.mall import MallSettings
from pipeline.demo import run_demo
from pipeline.model_training import evaluate_model, train_and_register
from pipeline.settings import Home

RESULTS = Path(__file__).resolve().parent / "results" / "retrain.json"
# "plain": no shop-photo looks at all; SGD one-cycle with flips and shifts (as measured)
PLAIN = TrainConfig(
    optimizer="sgd",
    lr=0.2,
    batch_size=256,
    weight_decay=5e-4,
    warmup=0.25,
    label_smoothing=0.1,
    grad_clip=2.0,
    augment=True,
    shop_augment=0.0,
    tensorboard=False,
)


def figures(store: Store, home: Home, model) -> dict:
    scraped = evaluate_model(store, home, model, "scraped", "auto")
    fmnist = evaluate_model(store, home, model, "fashion-mnist", "auto")
    return {
        "model": model.version,
        "scraped_held_out_accuracy": round(scraped["accuracy"], 4),
        "scraped_held_out_images": scraped["images"],
        "scraped_per_class": {k: round(v, 3) for k, v in scraped["per_class"].items()},
        "fashion_mnist_test_accuracy": round(fmnist["accuracy"], 4),
    }


def garment_sets(store: Store, home: Home, mall: MallSettings) -> dict:
    """The stricter sets (module docstring): {name: (uint8 images, labels)}."""
    key = json.loads(home.answer_key.read_text())
    product_of = {o["url"]: o["product_id"] for s in key["shops"].values() for o in s["offers"]}
    garment_of = {p.id: p.image_index for p in Catalog(mall.seed, mall.products).products}
    garments: dict[str, set[int]] = {}  # photo sha256 -> the garments of the offers showing it
    for url, sha in store.db.execute("SELECT url, image_sha256 FROM offers"):
        if sha and url in product_of:
            garments.setdefault(sha, set()).add(garment_of[product_of[url]])
    rows = [r for r in store.labelled_images() if r["sha256"] in garments]
    trained_on = set().union(*(garments[r["sha256"]] for r in rows if not is_held_out(r["sha256"])))
    unseen = [
        r for r in rows if is_held_out(r["sha256"]) and not garments[r["sha256"]] & trained_on
    ]
    images, kept = decode_photos([r["path"] for r in unseen])
    labels = torch.tensor([LABELS.index(unseen[k]["label"]) for k in kept])
    test = fashion_mnist("test", home.datasets)
    outside = torch.ones(len(test), dtype=torch.bool)
    outside[sorted(set(garment_of.values()))] = False
    return {
        "scraped_held_out_unseen_garments": (images, labels),
        "fashion_mnist_test_outside_catalog": (test.images[outside], test.labels[outside]),
    }


def strict_figures(model, sets: dict) -> dict:
    net, _ = load_model(Path(model.path))
    figures = {}
    for name, (images, labels) in sets.items():
        correct = (predict_logits(net, images).argmax(1) == labels).float().mean()
        figures[f"{name}_accuracy"] = round(float(correct), 4)
        figures[f"{name}_images"] = len(labels)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=3, help="of the Fashion-MNIST model")
    parser.add_argument("--retrain-epochs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pricelens-retrain-") as tmp:
        home = Home(Path(tmp)).create()
        plain = PLAIN.replace(epochs=args.epochs)
        started = time.perf_counter()
        mall = MallSettings(products=args.products, hard=True)
        demo = run_demo(home, mall, train=plain)
        crawl_and_train_s = time.perf_counter() - started
        with Store(home.database) as store:
            base = store.current_model()
            strict = garment_sets(store, home, mall)
            before = figures(store, home, base) | strict_figures(base, strict)
            retrain = PLAIN.replace(dataset="both", epochs=args.retrain_epochs, lr=0.02, warmup=0.1)
            started = time.perf_counter()
            outcome = train_and_register(store, home, retrain, base)
            retrain_s = time.perf_counter() - started
            after = figures(store, home, outcome.model) | strict_figures(outcome.model, strict)
            data = outcome.model.data
    offers = sum(c.offers for c in demo.crawls)
    gain = after["scraped_held_out_accuracy"] - before["scraped_held_out_accuracy"]
    unseen = "scraped_held_out_unseen_garments_accuracy"
    unseen_gain = after[unseen] - before[unseen]
    result = {
        "benchmark": "retrain",
        "measured": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "mall": {
            "products": args.products,
            "hard": True,
            "offers": offers,
        },
        "plain_fashion_mnist_model": before | {"recipe": plain.to_dict()},
        "retrained_model": after | {"recipe": retrain.to_dict(), "data": data},
        "scraped_accuracy_gain": round(gain, 4),
        "unseen_garments_accuracy_gain": round(unseen_gain, 4),
        "promoted": outcome.promoted,
        "verdict": outcome.reason,
        "seconds": {
            "crawl_and_first_training": round(crawl_and_train_s, 1),
            "retraining": round(retrain_s, 1),
        },
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
