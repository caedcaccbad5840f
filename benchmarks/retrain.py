"""Does retraining on scraped photos pay? A model trained only on plain Fashion-MNIST is scored
on the held-out scraped photos of the `hard` demo mall, then fine-tuned on Fashion-MNIST plus
the scraped photos (`pricelens train --dataset both --from current`) and scored again on the
same held-out photos (split by photo hash, never trained on).

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

from classifier.config import TrainConfig
from db.store import Store
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
        demo = run_demo(home, MallSettings(products=args.products, hard=True), train=plain)
        crawl_and_train_s = time.perf_counter() - started
        with Store(home.database) as store:
            base = store.current_model()
            before = figures(store, home, base)
            retrain = PLAIN.replace(dataset="both", epochs=args.retrain_epochs, lr=0.02, warmup=0.1)
            started = time.perf_counter()
            outcome = train_and_register(store, home, retrain, base)
            retrain_s = time.perf_counter() - started
            after = figures(store, home, outcome.model)
            data = outcome.model.data
    offers = sum(c.offers for c in demo.crawls)
    gain = after["scraped_held_out_accuracy"] - before["scraped_held_out_accuracy"]
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
