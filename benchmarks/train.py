"""Fashion-MNIST training: the default CPU recipe against a plain reference CNN, same process.

Targets (classifier issue, 2-core CPU): test accuracy of the default recipe >= 94.0% (mean of 3
seeds), each run within 10 minutes; time to 93% test accuracy <= 90 s. The reference is a plain
4-conv CNN with Adam at batch 128, trained in the same invocation for --reference-seconds.

Test accuracy is measured after every epoch the recipe evaluates (eval_every) and, for
time-to-93%, every --probe-every steps; the seconds quoted are training seconds, the probes
excluded, with wall seconds beside. A run's `run_s` is its time as `pricelens train` would take
it: the recipe's own evaluations counted, the benchmark's probes not.

    .venv/bin/python benchmarks/train.py [--recipe default|10min] [--seeds 0,1,2] [--epochs N]
                                         [--reference-seconds 240] [--quick] [--out FILE]
                                         [KEY=VALUE ...]

Writes benchmarks/results/train.json; on a GPU train-cpu-recipe-on-gpu.json (the GPU recipes and
train-gpu.json are benchmarks/train_gpu.py's).
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

# as `classifier` does before torch loads: measure what pricelens runs
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from classifier.config import TrainConfig
from classifier.data import TensorSet, fashion_mnist
from classifier.evaluation import predict_logits
from classifier.training import Trainer, bf16_pays
from classifier.transforms import normalise
from db.records import LABELS

RESULTS = Path(__file__).resolve().parent / "results"
TARGET = 0.93
# --recipe: "default" is TrainConfig's (shop looks, made for photos); "10min" is made for
# Fashion-MNIST's 94% within 10 minutes on 2 cores: flips and shifts, batch 256 (about 1.2x the
# photos/s of batch 128 on a CPU; 512 was faster still but ended lower), one held-out
# evaluation, after the last epoch
RECIPES = {
    "default": "",
    "10min": "architecture=shopnet-p augment=true shop_augment=0 weight_decay=0.05 "
    "label_smoothing=0.1 warmup=0.2 tta_flip=true batch_size=256 lr=4e-3 epochs=28 eval_every=28",
}


def accuracy(model: nn.Module, test: TensorSet) -> float:
    predicted = predict_logits(model, test.images).argmax(1)
    return float((predicted == test.labels).float().mean())


class Clock:
    """Training seconds: wall time with the measurement pauses taken out."""

    def __init__(self) -> None:
        self.started, self.paused = time.perf_counter(), 0.0

    def training_s(self) -> float:
        return time.perf_counter() - self.started - self.paused

    def measure(self, fn):
        if torch.cuda.is_available():  # queued training work is training time, not measurement
            torch.cuda.synchronize()
        t = time.perf_counter()
        value = fn()
        self.paused += time.perf_counter() - t
        return value


def run_recipe(
    config: TrainConfig,
    train: TensorSet,
    test: TensorSet,
    probe_every: int,
    targets: tuple[float, ...] = (TARGET,),
) -> dict:
    """Train a recipe, probing test accuracy every *probe_every* steps until the highest of
    *targets* is reached (and after every epoch)."""
    clock, probes = Clock(), []

    def on_step(step: int, total: int, loss: float, acc: float) -> None:
        # on_step comes every 20 steps: probe at the first call past each multiple
        due = step // probe_every > (probes[-1]["step"] // probe_every if probes else 0)
        if due and not any(p["accuracy"] >= max(targets) for p in probes):
            value = clock.measure(lambda: accuracy(trainer.model, test))
            trainer.model.train()
            probes.append(
                {"step": step, "seconds": round(clock.training_s(), 2), "accuracy": value}
            )

    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, train, test, Path(tmp), LABELS, on_step=on_step)
        cpu = time.process_time()
        result = trainer.fit()
        cpu = time.process_time() - cpu
    evaluated = [h for h in result.history if "val_accuracy" in h]  # eval_every > 1 skips some
    epochs = [
        {"epoch": h["epoch"], "test_accuracy": round(h["val_accuracy"], 4), "wall_s": h["seconds"]}
        for h in evaluated
    ]
    seen = probes + _epoch_probes(evaluated)
    seconds_to = {
        f"seconds_to_{round(t * 100)}": min(
            (p["seconds"] for p in seen if p["accuracy"] >= t), default=None
        )
        for t in targets
    }
    return {
        "seed": config.seed,
        "test_accuracy": round(evaluated[-1]["val_accuracy"], 4),
        "best_test_accuracy": round(max(h["val_accuracy"] for h in evaluated), 4),
        **seconds_to,
        # the run as `pricelens train` runs it: the benchmark's own probes taken out
        "run_s": round(result.seconds - clock.paused, 1),
        "wall_s": round(result.seconds, 1),
        "cpu_s": round(cpu, 1),
        "epochs": epochs,
        "probes": probes,
    }


def _epoch_probes(history: list[dict]) -> list[dict]:
    return [{"seconds": h["seconds"], "accuracy": h["val_accuracy"]} for h in history]


class PlainCNN(nn.Module):
    """The reference: four 3x3 convolutions, two max-pools, two dense layers; no tricks."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, 128),
            nn.ReLU(),
            nn.Linear(128, 10),
        )

    def forward(self, x):
        return self.net(x), None


def run_reference(
    train: TensorSet,
    test: TensorSet,
    seconds: float,
    device,
    targets: tuple[float, ...] = (TARGET,),
) -> dict:
    torch.manual_seed(0)
    model = PlainCNN().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    clock, probes, step = Clock(), [], 0
    images, labels = train.images.to(device), train.labels.to(device)
    while clock.training_s() < seconds:
        model.train()
        order = torch.randperm(len(images), device=device)
        for start in range(0, len(order), 128):
            index = order[start : start + 128]
            loss = loss_fn(model(normalise(images[index]))[0], labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step % 235 == 0 or clock.training_s() >= seconds:  # every half epoch
                value = clock.measure(lambda: accuracy(model, test))
                model.train()
                probes.append(
                    {"step": step, "seconds": round(clock.training_s(), 2), "accuracy": value}
                )
            if clock.training_s() >= seconds:
                break
    return {
        **{
            f"seconds_to_{round(t * 100)}": min(
                (p["seconds"] for p in probes if p["accuracy"] >= t), default=None
            )
            for t in targets
        },
        "accuracy_at_end": probes[-1]["accuracy"],
        "seconds": round(clock.training_s(), 1),
        "epochs": round(step * 128 / len(images), 2),
        "probes": probes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--reference-seconds", type=float, default=240.0)
    parser.add_argument("--probe-every", type=int, default=235, help="steps between probes")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="1 seed, 1 epoch, 20 s reference")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="default")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the recipe")
    args = parser.parse_args()
    from classifier.config import load_config

    overrides = RECIPES[args.recipe].split() + args.overrides
    config = load_config(None, overrides, tensorboard=False, device=args.device)
    if args.epochs:
        config = config.replace(epochs=args.epochs)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.quick:
        seeds, config, args.reference_seconds = seeds[:1], config.replace(epochs=1), 20.0
    train, test = fashion_mnist("train"), fashion_mnist("test")
    device = torch.device("cuda" if config.device != "cpu" and torch.cuda.is_available() else "cpu")
    runs = []
    for seed in seeds:
        runs.append(run_recipe(config.replace(seed=seed), train, test, args.probe_every))
        print(json.dumps(runs[-1]), flush=True)
    reference = run_reference(train, test, args.reference_seconds, device)
    print(json.dumps(reference), flush=True)
    reached = [r["seconds_to_93"] for r in runs if r["seconds_to_93"] is not None]
    mean_accuracy = sum(r["test_accuracy"] for r in runs) / len(runs)
    result = {
        "benchmark": "train",
        "measured": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "device": str(device),
            "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
            # machines differ between sessions: AVX2 only, or AVX-512 with bf16 (1.55-1.8x)
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "bf16_autocast": config.amp and bf16_pays(device),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "quick": args.quick,
        "recipe_name": args.recipe,
        "recipe": config.to_dict(),
        "targets": {"test_accuracy_min": 0.94, "seconds_to_93_max": 90, "run_seconds_max": 600},
        "test_accuracy": round(mean_accuracy, 4),
        "seconds_to_93": round(sum(reached) / len(reached), 1)
        if len(reached) == len(runs)
        else None,
        "reference_seconds_to_93": reference["seconds_to_93"],
        "reference_accuracy_at_end": round(reference["accuracy_at_end"], 4),
        "max_run_s": max(r["run_s"] for r in runs),
        "max_run_wall_s": max(r["wall_s"] for r in runs),
        "load_avg_1m": round(os.getloadavg()[0], 2),  # above the CPU count: something else ran
        "runs": runs,
        "reference": reference,
    }
    result["met"] = {
        "accuracy": result["test_accuracy"] >= 0.94,
        "seconds_to_93": result["seconds_to_93"] is not None and result["seconds_to_93"] <= 90,
        "run_within_10_min": result["max_run_s"] <= 600,
    }
    name = "train-cpu-recipe-on-gpu.json" if device.type == "cuda" else "train.json"
    out = args.out or RESULTS / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}: accuracy {result['test_accuracy']}, to 93% {result['seconds_to_93']} s")


if __name__ == "__main__":
    main()
