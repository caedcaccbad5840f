"""`pricelens train` under torchrun: two CPU processes (gloo) train one model together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TORCHRUN = Path(sys.executable).parent / "torchrun"


def test_two_processes_train_one_model_and_only_the_first_registers_it(tmp_path):
    """2,049 images in batches of 128: an even split would give the first process 9 steps
    and the second 8, and the first would wait for the second's gradients forever."""
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            str(TORCHRUN),
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "pipeline",
            "--home",
            str(tmp_path),
            "--no-progress",
            "train",
            "--epochs",
            "2",
            "--device",
            "cpu",
            "width=8",
            "embedding_dim=16",
            "train_limit=2049",
            "eval_limit=500",
            "batch_size=128",
            "tensorboard=false",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("promoted to current") == 1  # printed by the first process only
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "--home",
            str(tmp_path),
            "models",
            "list",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    (model,) = json.loads(listed.stdout)
    assert model["train_images"] == 2049 and model["current"] == "*"
    state = (tmp_path / "models" / model["version"] / "last.pt").stat()
    assert state.st_size > 0
