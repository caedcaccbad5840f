"""train / eval / models / label / classify through the CLI, on a real database whose
"scraped" photos are Fashion-MNIST products restyled the way the hard demo shops do it."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from click.testing import CliRunner

from classifier.errors import ClassifierError
from classifier.inference import Classifier
from db.records import LABELS
from db.store import Store
from pipeline.cli import cli
from tests.pipeline.scraped import add_scraped_photos

# Tiny but learning: a few seconds per epoch on 2 CPU cores.
TINY = ["width=8", "embedding_dim=16", "batch_size=64", "eval_limit=1000"]


def invoke(home, *args):
    result = CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    add_scraped_photos(home, 1200)
    return home


def models(home) -> list[dict]:
    return json.loads(invoke(home, "models", "list", "--format", "json"))


def scraped_accuracy(home, version: str) -> float:
    out = invoke(home, "eval", "--model", version, "--dataset", "scraped", "--format", "json")
    figures = json.loads(out)
    assert set(figures["per_class"]) <= set(LABELS) and figures["images"] > 100
    return figures["accuracy"]


@pytest.fixture(scope="module")
def base(home):
    out = invoke(home, "train", "--epochs", "2", "--device", "cpu", "train_limit=4000",
                 "shop_augment=0", *TINY)  # fmt: skip
    assert "promoted to current: no current model" in out
    (model,) = models(home)
    assert model["current"] == "*" and model["dataset"] == "fashion-mnist"
    return model["version"]


def test_eval_prints_accuracy_per_class_and_draws_the_confusion_matrix(home, base, tmp_path):
    png = tmp_path / "confusion.png"
    figures = json.loads(
        invoke(home, "eval", "--format", "json", "--confusion", str(png), "--device", "cpu")
    )
    assert 0.5 < figures["accuracy"] <= 1 and set(figures["per_class"]) == set(LABELS)
    assert figures["images"] == 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    text = invoke(home, "eval")
    assert "accuracy" in text and "ankle_boot" in text and "by set" not in text
    both = json.loads(invoke(home, "eval", "--dataset", "both", "--format", "json"))
    fm, scraped = both["by_set"]["fashion_mnist"], both["by_set"]["scraped"]
    assert both["score"] == pytest.approx((fm + scraped) / 2)  # as promotion scores
    text = invoke(home, "eval", "--dataset", "both")
    assert f"by set: fashion_mnist {fm:.4f}, scraped {scraped:.4f}; score" in text


def test_retraining_on_scraped_photos_beats_the_fashion_mnist_model_and_is_promoted(home, base):
    before = scraped_accuracy(home, base)
    out = invoke(home, "train", "--dataset", "both", "--from", "current", "--epochs", "2",
                 "--device", "cpu", "train_limit=4000", "lr=1e-3", *TINY)  # fmt: skip
    assert "promoted to current" in out, out
    retrained = models(home)[-1]
    assert retrained["current"] == "*" and retrained["fine_tuned_from"] == base
    after = scraped_accuracy(home, retrained["version"])
    assert after > before + 0.05, (before, after)


def test_a_fashion_mnist_run_is_also_judged_on_the_photos_the_current_model_learned(home, base):
    """Scored on Fashion-MNIST alone, a plain model could replace the retrained one and
    forget the shops' photos."""
    assert next(m for m in models(home) if m["current"])["dataset"] == "both"  # retrained
    out = invoke(home, "train", "--epochs", "2", "--device", "cpu", "train_limit=4000",
                 "shop_augment=0", *TINY)  # fmt: skip
    found = re.search(r"(promoted\s+to\s+current|not\s+promoted):\s+held-out\s+score\s+([\d.]+)"
                      r"\s+vs\s+current\s+\S+\s+([\d.]+)\s+on\s+fashion_mnist\s+and\s+scraped",
                      out)  # fmt: skip
    assert found, out
    assert found[1].startswith("promoted") == (float(found[2]) > float(found[3]))


def test_a_worse_model_is_registered_but_not_promoted(home, base):
    current = next(m for m in models(home) if m["current"])
    out = invoke(home, "train", "--epochs", "1", "--device", "cpu", "train_limit=256", "lr=1e-6",
                 *TINY)  # fmt: skip
    assert "not promoted" in out
    assert next(m for m in models(home) if m["current"])["version"] == current["version"]
    invoke(home, "models", "promote", base)
    assert next(m for m in models(home) if m["current"])["version"] == base


def test_export_onnx_then_classify_with_onnx_runtime(home, base):
    out = invoke(home, "models", "export", base, "--onnx")
    assert "max difference from PyTorch" in out
    invoke(home, "models", "promote", base)
    done = json.loads(invoke(home, "classify", "--backend", "onnx", "--format", "json"))
    assert done == {
        "model": base,
        "classified": 1200,
        "unreadable": 0,
        "previously_unreadable": 0,
        "missing": 0,
        "backend": "onnx",
    }
    with sqlite3.connect(home / "pricelens.db") as db:
        rows = db.execute(
            "SELECT count(*), min(length(embedding)) FROM predictions p JOIN models m "
            "ON m.id = p.model_id WHERE m.version = ?",
            [base],
        ).fetchone()
    assert rows == (1200, 16 * 4)  # float32 embeddings
    assert json.loads(invoke(home, "classify", "--format", "json"))["classified"] == 0


def test_a_user_label_wins_over_the_shops(home):
    with sqlite3.connect(home / "pricelens.db") as db:
        sha = db.execute("SELECT image_sha256 FROM labels ORDER BY image_sha256").fetchone()[0]
    invoke(home, "label", sha[:10], "bag")
    with Store(home / "pricelens.db") as store:
        labelled = {row["sha256"]: row["label"] for row in store.labelled_images()}
    assert labelled[sha] == "bag"


def test_bad_model_commands_say_what_is_wrong(home):
    runner = CliRunner()
    for args, message in [
        (["label", "deadbeefdeadbeef", "bag"], "no stored photo"),
        (["models", "promote", "nope"], "nope: no such model"),
        (["train", "widht=3"], "unknown key 'widht'"),
        (["train", "--resume"], "no unfinished training run"),
    ]:
        result = runner.invoke(cli, ["--home", str(home), *args])
        assert result.exit_code == 1 and message in result.output, result.output


def test_resume_finishes_an_interrupted_run_and_registers_it(tmp_path):
    from classifier.config import load_config
    from classifier.data import fashion_mnist
    from classifier.training import Trainer

    config = load_config(None, ["train_limit=1000", "tensorboard=false", *TINY], epochs=2)
    run = tmp_path / "models" / "m-interrupted"
    train, test = fashion_mnist("train").limit(1000), fashion_mnist("test")
    Trainer(config, train, test, run, LABELS).fit(stop_after_epoch=1)  # as if killed
    out = invoke(tmp_path, "train", "--resume")
    assert "model m-interrupted: 2 epochs" in out
    (model,) = models(tmp_path)
    assert model["version"] == "m-interrupted" and model["current"] == "*"
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "train", "--resume"])
    assert result.exit_code == 1 and "no unfinished training run" in result.output


def test_eval_before_any_model_says_to_train_one(tmp_path):
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "eval"])
    assert result.exit_code == 1
    assert "no model yet; run `pricelens train`" in result.output, result.output


def test_commands_naming_the_current_model_before_there_is_one_say_so(tmp_path):
    runner = CliRunner()
    for args, message in [
        (["models", "promote", "current"], "no current model yet; run `pricelens train` first"),
        (["models", "export", "current", "--onnx"], "no current model yet"),
        (["train", "--from", "current"], "--from current: "),
    ]:
        result = runner.invoke(cli, ["--home", str(tmp_path), *args])
        assert result.exit_code == 1 and message in result.output, result.output
    assert "has no current model yet; train one without --from first" in result.output


def test_a_promoted_model_is_exported_and_classify_runs_it_in_onnx_runtime_by_itself(home, base):
    """Promotion writes the parity-checked export beside the checkpoint; `classify` (backend
    auto) runs ONNX Runtime on the CPU, exporting again an export gone or broken since, and
    PyTorch when told."""
    retrained = next(m for m in models(home) if m["fine_tuned_from"] == base)
    invoke(home, "models", "promote", retrained["version"])
    export = home / "models" / retrained["version"] / "model.onnx"
    assert export.is_file()

    def classify_all(*options) -> str:
        with sqlite3.connect(home / "pricelens.db") as db:
            db.execute("DELETE FROM predictions")
        return invoke(home, "classify", "--device", "cpu", *options)

    assert "1200 classified, 0 unreadable (ONNX Runtime)" in classify_all()
    export.unlink()  # a model made current before promotions exported
    assert "(ONNX Runtime)" in classify_all() and export.is_file()
    export.write_bytes(b"cut short")  # newer than the checkpoint, and not ONNX
    assert "(ONNX Runtime)" in classify_all() and export.stat().st_size > 1000
    assert "1200 classified, 0 unreadable (PyTorch)" in classify_all("--backend", "torch")


def test_auto_runs_pytorch_when_the_export_cannot_be_loaded(home, base, caplog):
    checkpoint = next(home.glob(f"models/{base}/best.pt"))
    broken = checkpoint.with_name("model.onnx")
    kept = broken.read_bytes()
    try:
        broken.write_bytes(b"not onnx")  # newer than the checkpoint: auto would take it
        assert Classifier(checkpoint, "cpu", "auto").backend == "torch"
        assert f"{broken}: cannot be loaded" in caplog.text
        with pytest.raises(ClassifierError):
            Classifier(checkpoint, "cpu", "onnx")  # asked for by name: an error
    finally:
        broken.write_bytes(kept)
