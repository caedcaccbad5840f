"""Under torchrun, processes whose own validation results disagree still stop together:
each evaluates its own copy of the model, and one that stopped early alone would leave the
other waiting for its gradients forever."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TORCHRUN = Path(sys.executable).parent / "torchrun"
ROOT = Path(__file__).resolve().parents[2]

# Each process makes its validation say something else: the first's accuracy rises every
# epoch, the second's falls. With patience 1 the second would stop after epoch 2 on its own.
SCRIPT = """
import datetime, hashlib, json, os, sys
from pathlib import Path
import torch
import classifier.training as training
from classifier.config import load_config
from db.records import LABELS
from tests.classifier.helpers import first_images

out = Path(sys.argv[1])
rank = int(os.environ["RANK"])
# a short timeout: a process left waiting fails the run instead of hanging it
torch.distributed.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
real, calls = training.evaluate, []

def evaluate(*args, **kwargs):
    calls.append(1)
    val = real(*args, **kwargs)
    step = 0.1 * len(calls)
    return dict(val, accuracy=0.5 + step if rank == 0 else 0.95 - step)

training.evaluate = evaluate
train, val = first_images(512, 200)
config = load_config(None, ["width=8", "embedding_dim=16", "batch_size=64", "epochs=3",
                            "patience=1", "tensorboard=false"], device="cpu")
trainer = training.Trainer(config, train, val, out / "run", LABELS)
result = trainer.fit()
weights = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
(out / f"rank{rank}.json").write_text(json.dumps({
    "epochs": result.epochs_run, "stopped_early": result.stopped_early,
    "val": [h["val_accuracy"] for h in result.history],
    "weights": hashlib.sha256(weights.numpy().tobytes()).hexdigest(),
}))
"""


def test_processes_follow_the_first_ones_validation_and_share_their_gradients(tmp_path):
    """Each process trains on its own share of the images: the same weights at the end show
    that their gradients were averaged."""
    script = tmp_path / "disagree.py"
    script.write_text(SCRIPT)
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert first == second  # the weights too
    assert first["epochs"] == 3 and not first["stopped_early"]
    assert first["val"] == pytest.approx([0.6, 0.7, 0.8])  # the first process's figures
