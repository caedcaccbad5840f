"""The retraining job through run_pipeline (the code path of the scheduled `retrain` job)."""

from __future__ import annotations

import re
import threading

import pytest
from click.testing import CliRunner

from db.store import Store
from pipeline.classifying import classify_pending, unclassified_photos
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
        # the base never saw the shops' looks: fine-tuned on them, it scores higher on
        # the held-out photos (the losing case: test_labels_a_losing_candidate_...)
        assert counts["promoted"], counts
        assert store.current_model().version == model.version
        assert counts["classified"] == 800  # every stored photo, with the new model
        assert new_labels(store) == 0  # the new model has seen every label
    again = run_pipeline(home, config(home, retrain_min_labels=100), RETRAIN, "retrain")
    # those labels have been tried: no second, identical candidate
    assert again.counts["retrain"].startswith("skipped: 0 new labels")


def test_labels_a_losing_candidate_was_trained_on_are_not_new_again(tmp_path):
    root = tmp_path / "home"
    root.mkdir()
    add_scraped_photos(root, 40)
    with Store(Home.resolve(root).database) as store:
        labelled = new_labels(store)
        assert labelled == 40  # no model yet: every label is new
        until = store.db.execute("SELECT MAX(created_at) FROM labels").fetchone()[0]
        store.register_model("m1", "shopnet", str(root / "m1.pt"), {}, {})
        assert new_labels(store) == 40  # m1 saw no scraped label
        other = {"fine_tuned_from": "m0", "scraped_labelled_until": until}  # not from m1
        store.register_model("m2", "shopnet", str(root / "m2.pt"), {}, other, make_current=False)
        assert new_labels(store) == 40
        lost = {"fine_tuned_from": "m1", "scraped_labelled_until": until}
        store.register_model("m3", "shopnet", str(root / "m3.pt"), {}, lost, make_current=False)
        assert new_labels(store) == 0  # the losing candidate of m1 was trained on them all


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


class StopOnceTrainingRuns(threading.Event):
    """Not set when the run checks before its step; set from then on, as a SIGTERM that
    arrives while the step trains."""

    def __init__(self):
        super().__init__()
        self.asked = 0

    def is_set(self) -> bool:
        self.asked += 1
        return self.asked > 1


def test_a_stop_request_while_the_first_model_trains_stops_the_run(tmp_path):
    """The classify step of a scheduled pipeline trains the first model: a SIGTERM then
    ends training at the next step, not minutes later when the service gets SIGKILLed."""
    fresh = Home.resolve(tmp_path)
    stop = StopOnceTrainingRuns()
    outcome = run_pipeline(
        fresh, ServiceConfig(fresh.config, train_limit=3000), ("classify",), "pipeline", stop=stop
    )
    assert outcome.status == "stopped"
    step, total = re.fullmatch(
        r"stopped on request: stopped at step (\d+) of (\d+)", outcome.error
    ).groups()
    assert int(step) < int(total)
    with Store(fresh.database) as store:
        assert store.models() == []  # nothing half-trained was registered


def test_a_stop_request_ends_classifying_between_batches(home):
    stop = threading.Event()
    with Store(home.database) as store:
        current = store.current_model()  # the same weights as a model that has seen nothing
        copy = store.register_model(
            "unseen-copy", current.architecture, current.path, {}, {}, make_current=False
        )
        model = next(m for m in store.models() if m.id == copy)
        pending, _ = unclassified_photos(store, model)
        assert pending > 64
        stop.set()
        done = classify_pending(store, model, batch=64, stop=stop)
        assert done.classified == 0
        assert unclassified_photos(store, model)[0] == pending
