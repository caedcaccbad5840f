"""The retraining job through run_pipeline (the code path of the scheduled `retrain` job)."""

from __future__ import annotations

import threading

import pytest
from click.testing import CliRunner

from db.store import Store
from pipeline.cli import cli
from pipeline.config import ConfigError, ServiceConfig, load_config
from pipeline.retraining import new_labels
from pipeline.runner import run_pipeline
from pipeline.service import wanted_jobs
from pipeline.settings import Home
from tests.pipeline.scraped import add_scraped_photos

RETRAIN = ("retrain",)
TINY = ["width=8", "embedding_dim=16", "batch_size=64", "eval_limit=1000"]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("home")
    add_scraped_photos(root, 800)
    result = CliRunner().invoke(
        cli,
        [
            "--home",
            str(root),
            "train",
            "--epochs",
            "2",
            "--device",
            "cpu",
            "train_limit=3000",
            "shop_augment=0",
            *TINY,
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return Home.resolve(root)


def config(home: Home, **changes) -> ServiceConfig:
    return ServiceConfig(home.config, train_limit=3000, **changes)


def test_too_few_new_labels_skip_retraining(home):
    outcome = run_pipeline(
        home, config(home, retrain_min_labels=5000), ("retrain",), kind="retrain"
    )
    assert outcome.status == "ok"
    assert outcome.counts["new_labels"] == 800
    assert outcome.counts["retrain"] == "skipped: 800 new labels, 5000 needed"


def test_a_stop_request_during_training_records_the_run_as_stopped(home):
    stop = threading.Event()
    stop.set()  # SIGTERM arrived: the first progress check ends training
    with Store(home.database) as store:
        before = len(store.models())
    outcome = run_pipeline(
        home, config(home, retrain_min_labels=100), RETRAIN, "retrain", stop=stop
    )
    assert outcome.status == "stopped"
    with Store(home.database) as store:
        assert len(store.models()) == before  # nothing half-trained was registered
        run = store.db.execute(
            "SELECT status, error FROM pipeline_runs WHERE id = ?", [outcome.run_id]
        ).fetchone()
    assert run[0] == "stopped" and "stopped on request" in run[1]


def test_enough_new_labels_fine_tune_promote_and_reclassify(home):
    with Store(home.database) as store:
        base = store.current_model()
        pending = new_labels(store)
    assert pending >= 200
    outcome = run_pipeline(home, config(home, retrain_min_labels=100), RETRAIN, "retrain")
    counts = outcome.counts
    assert outcome.status == "ok" and counts["new_labels"] == pending
    with Store(home.database) as store:
        model = next(m for m in store.models() if m.version == counts["model"])
        assert model.data["fine_tuned_from"] == base.version
        assert model.data["dataset"] == "both" and model.data["scraped_train"] > 0
        if counts["promoted"]:
            assert store.current_model().version == model.version
            assert counts["classified"] == 800  # every stored photo, with the new model
            assert new_labels(store) == 0  # the new model has seen every label
        else:
            assert store.current_model().version == base.version
    again = run_pipeline(home, config(home, retrain_min_labels=100), RETRAIN, "retrain")
    if counts["promoted"]:
        assert again.counts["retrain"].startswith("skipped: 0 new labels")


def test_retrain_settings_are_validated_and_scheduled(tmp_path):
    path = tmp_path / "pricelens.toml"
    path.write_text('[retrain]\ncron = "0 3 * * 0"\nmin_new_labels = 50\nepochs = 1\n')
    loaded = load_config(path)
    assert (loaded.retrain.cron, loaded.retrain_min_labels, loaded.retrain_epochs) == (
        "0 3 * * 0",
        50,
        1,
    )
    assert wanted_jobs(loaded)["retrain"][0] == "retrain"
    for text, key in [
        ('[retrain]\ndataset = "fmnist"\n', "retrain.dataset"),
        ("[retrain]\nmin_new_labels = 0\n", "retrain.min_new_labels"),
        ('[retrain]\ncron = "* *"\n', "retrain.cron"),
        ("[retrain]\nevery = 3\n", "retrain.every"),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=rf"pricelens\.toml: key '{key}'"):
            load_config(path)
