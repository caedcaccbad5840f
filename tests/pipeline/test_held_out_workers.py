"""The held-out photos that judge a candidate are decoded by as many processes as its config's
`workers` says, like its training photos: a machine set to `workers=0` (no room for more
processes) never gets decoding workers behind its back."""

from __future__ import annotations

from click.testing import CliRunner

import classifier.data
from pipeline.cli import cli
from tests.pipeline.scraped import add_scraped_photos

TINY = ["--epochs", "1", "--device", "cpu", "width=8", "embedding_dim=16", "batch_size=16"]


def invoke(home, *args) -> str:
    result = CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_judging_decodes_the_current_models_held_out_photos_with_the_configured_workers(
    tmp_path, monkeypatch
):
    add_scraped_photos(tmp_path, 60)
    invoke(tmp_path, "train", "--dataset", "scraped", *TINY)  # the current model saw photos

    used = []
    real = classifier.data.photo_batches

    def recording(paths, batch_size=256, workers=2, *args, **kwargs):
        used.append((len(paths), workers))
        return real(paths, batch_size, workers, *args, **kwargs)

    monkeypatch.setattr(classifier.data, "photo_batches", recording)
    # Fashion-MNIST alone decodes no photo to train on: only judging against the current
    # model's held-out photos does
    invoke(tmp_path, "train", "--dataset", "fashion-mnist", "train_limit=64", "workers=0", *TINY)
    assert used, "the current model's held-out photos were not decoded"
    assert all(workers == 0 for _, workers in used), used
