"""A fine-tuning run (`train --from`) that is interrupted and finished with `train --resume`
is registered as the uninterrupted run would be: fine-tuned from the same base model, and
promoted only if it beats the current model on the same held-out data. Tiny CPU training."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from classifier.checkpoints import load_checkpoint
from classifier.config import TrainConfig, resolve_config
from db.store import Store
from pipeline.cli import cli
from pipeline.model_training import RUN_FILE, fine_tuning_config, train_and_register
from pipeline.settings import Home

TINY = ["width=8", "embedding_dim=16", "batch_size=64", "eval_limit=256", "tensorboard=false"]
OVERRIDES = ["train_limit=512", *TINY]
FINE_TUNE = ["--epochs", "2", "--device", "cpu", *OVERRIDES]
VERDICT = re.compile(  # \s+: the console wraps long lines
    r"(promoted to current|not promoted):\s+held-out\s+score\s+([\d.]+)\s+vs\s+current\s+"
    r"(\S+)\s+([\d.]+)"
)


class Interrupted(Exception):
    """Stands in for a kill: training ends in the middle of the run."""


def invoke(home, *args) -> str:
    result = CliRunner().invoke(cli, ["--home", str(home), *args])
    assert result.exit_code == 0, result.output
    return result.output


def models(home) -> dict[str, dict]:
    rows = json.loads(invoke(home, "models", "list", "--format", "json"))
    return {row["version"]: row for row in rows}


def verdict(output: str) -> tuple[bool, float, str, float]:
    """(promoted, candidate score, current version, current score) from train's last line."""
    found = VERDICT.search(output)
    assert found, output
    return found[1] == "promoted to current", float(found[2]), found[3], float(found[4])


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A home whose current model was trained on Fashion-MNIST for one epoch."""
    root = tmp_path_factory.mktemp("lineage")
    invoke(root, "train", "--epochs", "1", "--device", "cpu", "train_limit=512", *TINY)
    return Home.resolve(root)


def interrupted_run(home: Home, base_version: str | None = None):
    """`train` (with `--from BASE`) and FINE_TUNE's settings, through the same call, stopped
    in its second epoch: the first epoch is in last.pt, nothing is registered."""
    config, given = resolve_config(None, OVERRIDES, epochs=2, device="cpu")

    def stop_in_epoch_2(step: int, total: int, loss: float, accuracy: float) -> None:
        if step > total // 2:
            raise Interrupted

    with Store(home.create().database) as store, pytest.raises(Interrupted):
        base = store.model(base_version) if base_version else None
        train_and_register(store, home, config, base, on_step=stop_in_epoch_2, given=given)
    registered = models(home.root)
    (run,) = [p.parent for p in home.models.glob("*/last.pt") if p.parent.name not in registered]
    return run


def test_a_resumed_fine_tune_keeps_its_base_model_and_promotion_rule(home):
    (base,) = models(home.root).values()
    # the uninterrupted run, for reference; then the base is current again, as it was for it
    straight = verdict(invoke(home.root, "train", "--from", base["version"], *FINE_TUNE))
    invoke(home.root, "models", "promote", base["version"])

    run = interrupted_run(home, base["version"])
    assert load_checkpoint(run / "last.pt")["epoch"] == 1
    assert json.loads((run / RUN_FILE).read_text()) == {"fine_tuned_from": base["version"]}

    output = invoke(home.root, "train", "--resume")
    assert f"{run.name}: resuming after epoch 1 of 2 (fine-tuning {base['version']})" in output
    assert f"model {run.name}: 2 epochs" in output
    promoted, candidate, current, current_score = verdict(output)
    # judged against the same model on the same held-out data as the uninterrupted run
    assert current == straight[2] == base["version"] and current_score == straight[3]
    assert promoted == (candidate > current_score)

    row = models(home.root)[run.name]
    assert row["fine_tuned_from"] == base["version"] and (row["current"] == "*") == promoted
    with Store(home.database) as store:
        registered = store.model(run.name)
        assert registered.data["fine_tuned_from"] == base["version"]
        assert registered.metrics["held_out"]["score"] == pytest.approx(candidate, abs=1e-4)
        assert store.current_model().version == (run.name if promoted else base["version"])


def test_a_resumed_run_from_scratch_has_no_base_model(tmp_path):
    run = interrupted_run(Home.resolve(tmp_path))
    assert json.loads((run / RUN_FILE).read_text()) == {"fine_tuned_from": None}
    output = invoke(tmp_path, "train", "--resume")
    assert f"{run.name}: resuming after epoch 1 of 2\n" in output and "fine-tuning" not in output
    (row,) = models(tmp_path).values()
    assert row["fine_tuned_from"] is None and row["current"] == "*"


def test_fine_tuning_keeps_the_base_models_mirror_vote_unless_told():
    base = SimpleNamespace(version="m1")
    saved = TrainConfig(architecture="shopnet-p", width=8, tta_flip=True).to_dict()
    kept = fine_tuning_config(TrainConfig(), base, saved, {})
    assert (kept.architecture, kept.width, kept.tta_flip) == ("shopnet-p", 8, True)
    told = fine_tuning_config(TrainConfig(tta_flip=False), base, saved, {"tta_flip": "override"})
    assert told.tta_flip is False
