"""`pricelens train` and `pricelens eval` as a user meets them: what --resume, --from and
train_limit do with the settings given, the runs a resume finds, eval's errors, classify's
counts and the exit status of an interrupted run. Tiny real training runs on the CPU."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import torch
from click.testing import CliRunner

from classifier.config import load_config
from classifier.data import fashion_mnist
from classifier.training import Trainer
from db.records import LABELS
from pipeline.cli import cli
from tests.pipeline.scraped import add_scraped_photos

TINY = ["width=8", "embedding_dim=16", "batch_size=64", "eval_limit=256", "tensorboard=false"]


def run(home, *args):
    return CliRunner().invoke(cli, ["--home", str(home), *args])


def invoke(home, *args) -> str:
    result = run(home, *args)
    assert result.exit_code == 0, result.output
    return result.output


def models(home) -> list[dict]:
    return json.loads(invoke(home, "models", "list", "--format", "json"))


@pytest.fixture(scope="module")
def base_home(tmp_path_factory):
    """A home with one model trained on Fashion-MNIST, and no scraped photos."""
    home = tmp_path_factory.mktemp("base")
    invoke(home, "train", "--epochs", "1", "--device", "cpu", "train_limit=512", *TINY)
    return home


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--epochs", "5", "lr=0.5"], "drop --epochs 5, lr=0.5"),
        (["--dataset", "scraped"], "drop --dataset scraped"),
        (["--from", "current"], "drop --from current"),
        (["width=24"], "drop width=24"),
    ],
)
def test_resume_refuses_settings_it_would_silently_ignore(tmp_path, args, named):
    result = run(tmp_path, "train", "--resume", *args)
    assert result.exit_code == 2
    assert "--resume continues a run with its saved settings" in result.output
    assert named in result.output and "only --device may change" in result.output


def test_resume_refuses_a_config_file_too(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text("epochs = 3\n")
    result = run(tmp_path, "train", "--resume", "--config", str(path))
    assert result.exit_code == 2 and f"drop --config {path}" in result.output


def test_resume_registers_a_run_whose_training_finished_but_was_never_registered(tmp_path, caplog):
    # killed while its held-out data was scored: last.pt is final, the models table is empty
    config = load_config(None, ["train_limit=512", *TINY], epochs=1)
    finished = tmp_path / "models" / "m-finished"
    train, test = fashion_mnist("train").limit(512), fashion_mnist("test")
    Trainer(config, train, test, finished, LABELS).fit()
    last = (finished / "last.pt").read_bytes()
    broken = tmp_path / "models" / "m-broken" / "last.pt"  # newer, and not a checkpoint
    broken.parent.mkdir()
    broken.write_text("garbage\n")
    os.utime(broken, (time.time() + 60, time.time() + 60))

    result = run(tmp_path, "train", "--resume", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "m-finished: training finished (1 epochs), never registered" in result.output
    assert "model m-finished: 1 epochs" in result.output
    assert "promoted to current: no current model" in result.output
    assert f"{broken}: not a loadable pricelens checkpoint" in caplog.text
    (model,) = models(tmp_path)
    assert model["version"] == "m-finished" and model["current"] == "*"
    assert (finished / "last.pt").read_bytes() == last  # no step was trained
    assert json.loads((finished / "config.json").read_text())["device"] == "cpu"  # --device

    again = run(tmp_path, "train", "--resume")
    assert again.exit_code == 1 and "no unfinished training run" in again.output


def test_from_refuses_a_shape_the_base_model_cannot_take(base_home, tmp_path):
    result = run(base_home, "train", "--from", "current", "architecture=shopnet-s", "width=4")
    assert result.exit_code == 1
    assert "keeps that model's shape (architecture 'shopnet', width 8" in result.output
    assert "architecture 'shopnet-s' (override 'architecture=shopnet-s')" in result.output
    assert "width 4 (override 'width=4')" in result.output
    path = tmp_path / "train.toml"
    path.write_text("embedding_dim = 32\n")
    result = run(base_home, "train", "--from", "current", "--config", str(path))
    assert result.exit_code == 1 and f"embedding_dim 32 ({path})" in result.output


def test_from_takes_the_base_shape_asked_for_again_or_left_unset(base_home):
    (base,) = [m for m in models(base_home) if m["fine_tuned_from"] is None][:1]
    invoke(base_home, "train", "--from", base["version"], "--epochs", "1", "--device", "cpu",
           "train_limit=256", *TINY)  # fmt: skip
    tuned = models(base_home)[-1]
    assert tuned["fine_tuned_from"] == base["version"] and tuned["architecture"] == "shopnet"


def test_eval_without_scraped_photos_says_there_is_nothing_to_evaluate_on(base_home):
    for dataset in ("scraped", "both"):
        result = run(base_home, "eval", "--dataset", dataset, "--device", "cpu")
        assert result.exit_code == 1
        assert "no held-out scraped photos to evaluate on" in result.output
        assert "to train on" not in result.output


def test_eval_wants_a_png_name_before_it_evaluates(base_home, tmp_path):
    result = run(base_home, "eval", "--confusion", str(tmp_path / "confusion.txt"))
    assert result.exit_code == 2
    assert "Invalid value for '--confusion'" in result.output and ".png" in result.output
    assert not (tmp_path / "confusion.txt").exists()


@pytest.fixture(scope="module")
def scraped_home(tmp_path_factory):
    """60 labelled scraped photos, one of them unreadable, and a model trained on them with
    train_limit=10."""
    home = tmp_path_factory.mktemp("scraped")
    hashes = add_scraped_photos(home, 60)
    with sqlite3.connect(home / "pricelens.db") as db:
        (path,) = db.execute("SELECT path FROM images WHERE sha256 = ?", [hashes[5]]).fetchone()
    (home / path).write_bytes(b"not a photo")  # the database keeps paths relative to home
    invoke(home, "train", "--dataset", "scraped", "--epochs", "1", "--device", "cpu",
           "train_limit=10", *TINY)  # fmt: skip
    return home


def test_train_limit_cuts_the_scraped_training_set(scraped_home):
    (model,) = models(scraped_home)
    assert model["dataset"] == "scraped" and model["train_images"] == 10


def test_classify_counts_predictions_written_and_unreadable_photos_apart(scraped_home):
    (model,) = models(scraped_home)
    done = json.loads(invoke(scraped_home, "classify", "--device", "cpu", "--format", "json"))
    assert done == {
        "model": model["version"],
        "classified": 59,
        "unreadable": 1,
        "previously_unreadable": 0,
        "missing": 0,
        "backend": "onnx",  # the export its promotion wrote, on the CPU
    }
    with sqlite3.connect(scraped_home / "pricelens.db") as db:
        assert db.execute("SELECT count(*) FROM predictions").fetchone() == (59,)
    again = invoke(scraped_home, "classify", "--device", "cpu")
    assert (
        f"{model['version']}: 0 classified, 0 unreadable, "
        "1 found unreadable before (not decoded again)"
    ) in again


def test_sigterm_during_training_exits_130_not_as_an_error(tmp_path):
    home = tmp_path / "home"
    command = [sys.executable, "-m", "pipeline", "--home", str(home), "train", "--device", "cpu",
               "--epochs", "50", *TINY]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        # the database appears once the command runs, long after the SIGTERM handler is set
        while not (home / "pricelens.db").exists() and process.poll() is None:
            assert time.monotonic() < deadline, "train never started"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert "interrupted" in err and "Aborted!" not in err and "Traceback" not in err


def test_a_current_model_whose_file_is_gone_is_named_when_a_new_one_takes_its_place(tmp_path):
    args = ("train", "--epochs", "1", "--device", "cpu", "train_limit=256", *TINY)
    invoke(tmp_path, *args)
    (gone,) = models(tmp_path)
    (tmp_path / "models" / gone["version"] / "best.pt").unlink()
    out = invoke(tmp_path, *args)
    assert f"promoted to current: current model {gone['version']} has no checkpoint at" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_cuda_without_it_fails_before_loading_data_or_making_a_run_folder(tmp_path):
    result = run(tmp_path, "train", "--device", "cuda", "--epochs", "1", *TINY)
    assert result.exit_code == 1 and "CUDA is not available" in result.output, result.output
    assert not list((tmp_path / "models").glob("m-*"))
