"""Per-offer F1 of `pricelens match` on the default and the `hard` demo mall, beside the
title-only and image-only baselines (the same grouping with one signal's weight at 1), and the
image trust per pair of shops that the combined grouping used.

    .venv/bin/python benchmarks/match_quality.py [--products 300] [--epochs 2]

One model is trained on Fashion-MNIST and reused for both malls. Writes
benchmarks/results/match_quality.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

from classifier.training import TrainConfig
from db.store import Store
from demo.mall import MallSettings
from pipeline.classifying import train_fashion_mnist
from pipeline.demo import run_demo
from pipeline.evaluation import evaluate_groups, load_answer_key
from pipeline.matching import MatchSettings, group_offers, shop_pair_trust
from pipeline.settings import Home

RESULTS = Path(__file__).resolve().parent / "results" / "match_quality.json"


def score(store: Store, key: dict, settings: MatchSettings) -> dict:
    model = store.current_model()
    groups = group_offers(store.offers_for_matching(model.id), settings)
    store.replace_groups(groups)
    return {
        k: round(v, 4) if isinstance(v, float) else v
        for k, v in evaluate_groups(store, key).items()
    }


def measure(mall: MallSettings, checkpoint_home: Home, root: Path) -> dict:
    home = Home(root / ("hard" if mall.hard else "default")).create()
    with Store(home.database) as store, Store(checkpoint_home.database) as source:
        model = source.current_model()
        store.register_model(model.version, model.architecture, model.path, model.metrics, {})
    started = time.perf_counter()
    result = run_demo(home, mall)
    seconds = time.perf_counter() - started
    key = load_answer_key(home.answer_key)
    default = MatchSettings()
    with Store(home.database) as store:
        figures = {
            "combined": score(store, key, default),
            "title_only": score(store, key, replace(default, image_weight=0.0, title_weight=1.0)),
            "image_only": score(store, key, replace(default, image_weight=1.0, title_weight=0.0)),
        }
        score(store, key, default)  # leave the real grouping stored
        trust = shop_pair_trust(store.offers_for_matching(store.current_model().id), default)
    return {
        "hard": mall.hard,
        "offers": sum(c.offers for c in result.crawls),
        "crawl_and_match_s": round(seconds, 1),
        **figures,
        "image_trust": {"/".join(sorted(pair)): round(v, 2) for pair, v in trust.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pricelens-match-") as tmp:
        root = Path(tmp)
        trainer = Home(root / "trainer").create()
        with Store(trainer.database) as store:
            model = train_fashion_mnist(store, trainer, TrainConfig(epochs=args.epochs))
        malls = [
            MallSettings(products=args.products),
            MallSettings(products=args.products, hard=True),
        ]
        runs = [measure(mall, trainer, root) for mall in malls]
    result = {
        "benchmark": "match_quality",
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "products": args.products,
        "model": {"version": model.version, "fashion_mnist_accuracy": model.metrics["accuracy"]},
        "match_settings": asdict(MatchSettings()),
        "targets": {"default_f1": 0.97, "hard_f1": 0.90},
        "malls": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
