"""A retrained model with no held-out photo to be judged on is kept aside, saying why: it
and the current model would both score nothing, and better cannot be told."""

from __future__ import annotations

import json

from click.testing import CliRunner

from classifier.data import is_held_out
from pipeline.cli import cli
from tests.pipeline.scraped import add_scraped_photos

TINY = ["--epochs", "1", "--device", "cpu", "width=8", "embedding_dim=16", "batch_size=16"]


def invoke(home, *args) -> str:
    result = CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_model_with_nothing_held_out_to_judge_it_is_kept_aside(tmp_path):
    stored = add_scraped_photos(tmp_path, 60, keep=lambda sha: not is_held_out(sha))
    assert len(stored) > 30
    first = invoke(tmp_path, "train", "--dataset", "scraped", *TINY)
    assert "promoted to current: no current model" in first
    second = invoke(tmp_path, "train", "--dataset", "scraped", *TINY)
    assert "not promoted" in second and "nothing held out to compare it with" in second
    assert "pricelens models promote m-" in second
    models = json.loads(invoke(tmp_path, "models", "list", "--format", "json"))
    assert [m["current"] for m in sorted(models, key=lambda m: m["version"])] == ["*", ""]
