"""The registry records which scraped photos each model saw, with the label and split."""

from __future__ import annotations

from click.testing import CliRunner

from classifier.data import split_of
from db.store import Store
from pipeline.cli import cli
from tests.pipeline.scraped import add_scraped_photos

TINY = ["--epochs", "1", "--device", "cpu", "width=8", "embedding_dim=16", "batch_size=16"]


def train(home, *args) -> None:
    result = CliRunner().invoke(cli, ["--home", str(home), "train", *TINY, *args])
    assert result.exit_code == 0, result.output


def seen(store: Store, version: str) -> list[tuple[str, str, str]]:
    return sorted(
        store.db.execute(
            "SELECT p.image_sha256, p.label, p.split FROM model_photos p "
            "JOIN models m ON m.id = p.model_id WHERE m.version = ?",
            [version],
        ).fetchall()
    )


def test_each_model_records_the_photos_it_saw_and_train_limit_is_honoured(tmp_path):
    shas = add_scraped_photos(tmp_path, 80)
    train(tmp_path, "--dataset", "scraped")
    train(tmp_path, "--dataset", "scraped", "train_limit=10")
    with Store(tmp_path / "pricelens.db") as store:
        labels = {r["sha256"]: r["label"] for r in store.labelled_images()}
        everything, limited = (seen(store, m.version) for m in store.models())
    assert everything == sorted((sha, labels[sha], split_of(sha)) for sha in shas)
    assert {split for _, _, split in everything} == {"train", "validation", "held_out"}
    trained = [photo for photo in limited if photo[2] == "train"]
    assert len(trained) == 10 and set(limited) - set(trained) == {
        photo for photo in everything if photo[2] != "train"
    }
