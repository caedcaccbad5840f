"""Resume, early stopping, configuration and ONNX export of the training toolkit (CPU, tiny)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from classifier.checkpoints import CheckpointWriter, load_checkpoint
from classifier.config import TrainConfig, load_config
from classifier.data import fashion_mnist, fashion_mnist_splits, is_held_out, is_validation
from classifier.errors import CheckpointError, ClassifierError, ConfigError, ExportError
from classifier.evaluation import evaluate, write_confusion_png
from classifier.export import export_onnx, load_model
from classifier.inference import Classifier
from classifier.training import Trainer, fits_on, train_model
from classifier.transforms import normalise, random_erase
from db.records import LABELS
from tests.classifier.helpers import first_images, recording_losses

SMALL = TrainConfig(
    width=8,
    embedding_dim=16,
    epochs=2,
    batch_size=64,
    train_limit=640,
    eval_limit=200,
    device="cpu",
    tensorboard=False,
)


@pytest.fixture(scope="module")
def sets():
    return first_images(2000, 500)


def test_a_resumed_run_takes_the_same_steps_as_an_uninterrupted_one(sets, tmp_path):
    train, val = sets
    straight_losses, resumed_losses = [], []
    straight = Trainer(
        SMALL, train, val, tmp_path / "straight", LABELS, None, recording_losses(straight_losses)
    )
    straight.fit()
    first = Trainer(SMALL, train, val, tmp_path / "cut", LABELS)
    first.fit(stop_after_epoch=1)  # as if killed after the first epoch
    second = Trainer(
        SMALL, train, val, tmp_path / "cut", LABELS, None, recording_losses(resumed_losses)
    )
    second.resume(tmp_path / "cut" / "last.pt")
    assert second.epoch == 1
    result = second.fit()
    assert result.epochs_run == 2
    assert resumed_losses == straight_losses[len(straight_losses) // 2 :]
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_a_resumed_run_counts_the_seconds_of_its_earlier_epochs(sets, tmp_path):
    train, val = sets
    Trainer(SMALL, train, val, tmp_path, LABELS).fit(stop_after_epoch=1)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    state["history"][0]["seconds"] = 1000.0  # as if the first epoch had taken that long
    torch.save(state, tmp_path / "last.pt")
    resumed = Trainer(SMALL, train, val, tmp_path, LABELS)
    resumed.resume(tmp_path / "last.pt")
    result = resumed.fit()
    assert result.history[1]["seconds"] > 1000 and result.seconds > 1000


def test_a_checkpoint_from_a_graphed_gpu_run_resumes_on_the_cpu(sets, tmp_path):
    train, val = sets
    Trainer(SMALL, train, val, tmp_path, LABELS).fit(stop_after_epoch=1)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    for group in state["optimizer"]["param_groups"]:  # as a CUDA-graph run saves them
        group.update(lr=torch.tensor(group["lr"]), fused=True, capturable=True)
    torch.save(state, tmp_path / "last.pt")
    resumed = Trainer(SMALL, train, val, tmp_path, LABELS)
    resumed.resume(tmp_path / "last.pt")
    group = resumed.optimizer.param_groups[0]
    assert isinstance(group["lr"], float) and not group["capturable"] and not group["fused"]
    assert resumed.fit().epochs_run == 2


def test_early_stopping_ends_a_run_that_stopped_improving(sets, tmp_path):
    train, val = sets
    config = SMALL.replace(epochs=6, lr=1e-9, patience=2, monitor="val_accuracy")
    result = train_model(config, train, val, tmp_path, LABELS)
    assert result.stopped_early and result.epochs_run == 3  # best at 1, then 2 without gain
    assert torch.load(tmp_path / "last.pt", weights_only=True)["bad_epochs"] == 2
    steps = []  # resumed (its registering was interrupted): it stays stopped
    again = train_model(config, train, val, tmp_path, LABELS, recording_losses(steps), resume=True)
    assert steps == [] and again.stopped_early and again.epochs_run == 3
    assert again.metrics["accuracy"] == result.metrics["accuracy"]


def test_eval_every_evaluates_every_nth_epoch_and_the_last_and_trains_the_same(sets, tmp_path):
    train, val = sets
    every, sparse = [], []
    config = SMALL.replace(epochs=5)
    dense = train_model(config, train, val, tmp_path / "dense", LABELS, recording_losses(every))
    result = train_model(
        config.replace(eval_every=2),
        train,
        val,
        tmp_path / "sparse",
        LABELS,
        recording_losses(sparse),
    )
    assert [("val_accuracy" in h) for h in result.history] == [False, True, False, True, True]
    assert sparse == every  # evaluation takes nothing from the training stream
    by_epoch = {h["epoch"]: h["val_accuracy"] for h in dense.history}
    assert [h["val_accuracy"] for h in result.history if "val_accuracy" in h] == [
        by_epoch[2],
        by_epoch[4],
        by_epoch[5],
    ]
    best = max((by_epoch[e], -e) for e in (2, 4, 5))  # the first of equals stays best
    assert result.metrics["accuracy"] == best[0]
    saved = torch.load(tmp_path / "sparse" / "best.pt", weights_only=True)
    assert saved["epoch"] == -best[1]
    assert json.loads((tmp_path / "sparse" / "config.json").read_text())["eval_every"] == 2


def test_patience_counts_evaluations_not_epochs(sets, tmp_path, monkeypatch):
    train, val = sets
    scores = iter([0.5, 0.4, 0.45, 0.9])  # best at the first evaluation, then two without gain
    calls = []

    def scripted(model, data, classes, loss_fn):
        calls.append(1)
        return {"accuracy": next(scores), "loss": 1.0, "per_class": {}, "confusion": []}

    monkeypatch.setattr("classifier.training.evaluate", scripted)
    config = SMALL.replace(epochs=12, patience=2, eval_every=3)
    result = train_model(config, train, val, tmp_path, LABELS)
    assert result.stopped_early and result.epochs_run == 9 and len(calls) == 3
    assert result.metrics["accuracy"] == 0.5


def test_a_run_stopped_before_its_first_evaluation_resumes_and_evaluates(sets, tmp_path):
    train, val = sets
    config = SMALL.replace(epochs=2, eval_every=5)
    first = Trainer(config, train, val, tmp_path, LABELS).fit(stop_after_epoch=1)
    assert first.metrics == {} and not (tmp_path / "best.pt").exists()
    resumed = Trainer(config, train, val, tmp_path, LABELS)
    resumed.resume(tmp_path / "last.pt")
    result = resumed.fit()
    assert [("val_accuracy" in h) for h in result.history] == [False, True]
    assert result.metrics["accuracy"] == result.history[-1]["val_accuracy"]
    assert (tmp_path / "best.pt").exists()


def test_resuming_a_run_that_finished_its_epochs_trains_no_more_steps(sets, tmp_path):
    train, val = sets
    config = SMALL.replace(epochs=1)
    result = train_model(config, train, val, tmp_path, LABELS)
    last = (tmp_path / "last.pt").read_bytes()
    steps = []
    again = train_model(config, train, val, tmp_path, LABELS, recording_losses(steps), resume=True)
    assert steps == [] and again.epochs_run == 1 and not again.stopped_early
    assert again.metrics == result.metrics and (tmp_path / "last.pt").read_bytes() == last


def test_config_file_flags_and_overrides_resolve_in_order(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text('[train]\nwidth = 24\nlr = 1\noptimizer = "adamw"\nepochs = 9\n')
    config = load_config(path, ["lr=0.01", "augment=false", "train_limit=none"], epochs=3)
    assert (config.width, config.lr, config.optimizer, config.epochs) == (24, 0.01, "adamw", 3)
    assert config.augment is False and config.train_limit is None
    assert load_config(None, ["dataset= scraped ", " width = 8"]).dataset == "scraped"
    # a pricelens.toml with its [train] table reads as a training config
    path.write_text('timezone = "UTC"\n[pipeline]\ncron = "0 6 * * *"\n[train]\nwidth = 24\n')
    assert load_config(path).width == 24


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("[train]\nwidht = 3\n", [], r"train\.toml: unknown key 'train\.widht'"),
        ("width = 'wide'\n", [], r"train\.toml: width wants int"),
        ("[train]\nwidth = 'wide'\n", [], r"train\.toml: train\.width wants int"),
        ("optimizer = 'lbfgs'\n", [], r"train\.toml: optimizer: 'lbfgs' is not one of"),
        ("", ["epochs=many"], r"override 'epochs=many': epochs wants int"),
        ("", ["lr"], r"override 'lr': expected key=value"),
        ("width = [", [], r"train\.toml: not valid TOML"),
        ("erase = 1.5\n", [], r"train\.toml: erase: must lie in \[0, 1\], got 1\.5"),
        # a [train] table is all that is read: a training key beside it was dropped silently
        ("width = 0\n[train]\nepochs = 1\n", [], r"train\.toml: key 'width' is outside"),
        ("train = 5\n", [], r"train\.toml: key 'train': must be a table"),
    ],
)
def test_a_bad_config_names_the_file_and_key(tmp_path, text, overrides, message):
    path = tmp_path / "train.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path, overrides)


def test_random_erasing_blanks_one_square_per_chosen_sample():
    batch = normalise(torch.full((64, 28, 28), 200, dtype=torch.uint8))
    background = normalise(torch.zeros(1, 1, 1, dtype=torch.uint8)).item()
    erased = random_erase(batch, 1.0, torch.Generator().manual_seed(0))
    blank = (erased != batch).squeeze(1)
    assert erased[erased != batch] == pytest.approx(background)
    for sample in blank:
        rows, cols = sample.any(1).nonzero(), sample.any(0).nonzero()
        side = len(rows)
        assert 4 <= side <= 16 and len(cols) == side  # one square, 4-16 px
        assert int(sample.sum()) == side * side
    assert torch.equal(random_erase(batch, 0.0), batch)


def test_checkpoints_written_in_the_background_hold_the_state_at_save(tmp_path):
    weights = {"w": torch.zeros(3)}
    writer = CheckpointWriter()
    writer.save(
        tmp_path / "last.pt",
        {"model": weights, "config": {}, "classes": []},
        (tmp_path / "best.pt",),
    )
    weights["w"] += 1  # training goes on while the file is written
    writer.close()
    for name in ("last.pt", "best.pt"):
        assert torch.equal(load_checkpoint(tmp_path / name)["model"]["w"], torch.zeros(3))
    state = {"model": {}, "config": {}, "classes": []}
    failing = CheckpointWriter()
    failing.save(tmp_path / "missing" / "last.pt", state)
    with pytest.raises(RuntimeError, match="missing"):  # the next epoch's save stops training
        failing.save(tmp_path / "last.pt", state)
    failing.save(tmp_path / "missing" / "last.pt", state)
    with pytest.raises(RuntimeError, match="missing"):  # and the end of the run does too
        failing.close()


def test_held_out_split_depends_only_on_the_photo_hash():
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(1000)]
    held = [is_held_out(h) for h in hashes]
    assert held == [is_held_out(h) for h in hashes] and 0.1 < sum(held) / len(held) < 0.3


def test_validation_photos_are_never_held_out_and_depend_only_on_the_hash():
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(2000)]
    validation = [is_validation(h) for h in hashes]
    assert validation == [is_validation(h) for h in hashes]
    assert not any(v and is_held_out(h) for v, h in zip(validation, hashes, strict=True))
    rest = [v for v, h in zip(validation, hashes, strict=True) if not is_held_out(h)]
    assert 0.1 < sum(rest) / len(rest) < 0.2


def test_fashion_mnist_validation_comes_out_of_the_training_split():
    splits = fashion_mnist_splits()
    whole = fashion_mnist("train")
    assert (len(splits.train), len(splits.validation), len(splits.held_out)) == (
        55000,
        5000,
        10000,
    )
    assert torch.equal(splits.validation.images, whole.images[55000:])
    assert torch.equal(splits.held_out.labels, fashion_mnist("test").labels)


@pytest.fixture(scope="module")
def small_model(sets, tmp_path_factory):
    train, val = sets
    return train_model(SMALL, train, val, tmp_path_factory.mktemp("small"), LABELS)


def test_onnx_export_matches_pytorch_within_1e_4(small_model, sets, tmp_path):
    _, val = sets
    samples = normalise(val.images[:64]).numpy()
    parity = export_onnx(small_model.checkpoint, tmp_path / "m.onnx", samples)
    assert parity["max_abs_diff"] <= 1e-4 and (tmp_path / "m.onnx").stat().st_size > 1000


def test_a_mirror_voting_model_exports_with_parity_and_predicts_alike_in_onnx(sets, tmp_path):
    train, val = sets
    config = SMALL.replace(architecture="shopnet-p", tta_flip=True, augment=True, epochs=1)
    result = train_model(config, train, val, tmp_path / "run", LABELS)
    model, _ = load_model(result.checkpoint)
    assert model.tta_flip  # the saved config rebuilds the vote
    samples = normalise(val.images[:64]).numpy()
    parity = export_onnx(result.checkpoint, result.checkpoint.with_name("model.onnx"), samples)
    assert parity["max_abs_diff"] <= 1e-4
    arrays = val.images[:100].numpy()
    by_torch = Classifier(result.checkpoint, "cpu").predict_arrays(arrays)
    by_onnx = Classifier(result.checkpoint, backend="onnx").predict_arrays(arrays)
    assert [p.label for p in by_torch] == [p.label for p in by_onnx]


def test_the_onnx_backend_without_an_export_names_the_command_with_the_version(sets, tmp_path):
    train, val = sets
    result = train_model(SMALL.replace(epochs=1), train, val, tmp_path / "m-7", LABELS)
    with pytest.raises(ClassifierError, match="run `pricelens models export m-7 --onnx`"):
        Classifier(result.checkpoint, backend="onnx")


def test_onnx_runtime_backend_gives_pytorchs_predictions(small_model, sets):
    _, val = sets
    export_onnx(small_model.checkpoint, small_model.checkpoint.with_name("model.onnx"))
    arrays = val.images[:100].numpy()
    by_torch = Classifier(small_model.checkpoint, "cpu").predict_arrays(arrays)
    by_onnx = Classifier(small_model.checkpoint, backend="onnx").predict_arrays(arrays)
    assert [p.label for p in by_torch] == [p.label for p in by_onnx]
    assert [p.second_label for p in by_torch] == [p.second_label for p in by_onnx]
    pairs = zip(by_torch, by_onnx, strict=True)
    diff = max(np.abs(a.embedding - b.embedding).max() for a, b in pairs)
    assert diff < 1e-4


def test_a_failed_parity_check_writes_nothing_and_keeps_an_earlier_export(
    small_model, tmp_path, monkeypatch
):
    earlier = tmp_path / "earlier.onnx"
    export_onnx(small_model.checkpoint, earlier)
    good = earlier.read_bytes()
    monkeypatch.setattr("classifier.export.PARITY_TOLERANCE", -1.0)
    for out in (tmp_path / "m.onnx", earlier):
        with pytest.raises(ExportError, match=r"differs from PyTorch.*nothing written to"):
            export_onnx(small_model.checkpoint, out)
    assert not (tmp_path / "m.onnx").exists() and earlier.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier.onnx"]  # no part files


def test_an_export_never_overwrites_a_checkpoint_or_writes_where_it_cannot(small_model, tmp_path):
    checkpoint = small_model.checkpoint
    before = checkpoint.read_bytes()
    with pytest.raises(ExportError, match=r"best\.pt: an ONNX export's file name must end in"):
        export_onnx(checkpoint, checkpoint)
    assert checkpoint.read_bytes() == before
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(ExportError, match=r"x\.onnx: cannot write there"):
        export_onnx(checkpoint, tmp_path / "a-file" / "x.onnx")  # a file where a folder must be


def test_evaluation_counts_a_confusion_matrix_and_draws_it(small_model, sets, tmp_path):
    _, val = sets
    model, classes = load_model(small_model.checkpoint)
    figures = evaluate(model, val, classes)
    confusion = np.array(figures["confusion"])
    assert confusion.sum() == len(val)
    assert figures["accuracy"] == pytest.approx(np.trace(confusion) / len(val))
    png = write_confusion_png(figures["confusion"], classes, tmp_path / "c.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resuming_on_a_training_set_that_changed_is_refused_before_training(sets, tmp_path):
    """Photos labelled since the run started make more steps an epoch: the saved schedule
    would run out of steps at the end (a ValueError after all the training, at every later
    --resume)."""
    train, val = sets
    Trainer(SMALL, train, val, tmp_path, LABELS).fit(stop_after_epoch=1)
    fewer, _ = first_images(300, 100)
    resumed = Trainer(SMALL, fewer, val, tmp_path, LABELS)
    with pytest.raises(CheckpointError, match="planned 20 training steps and its data now gives"):
        resumed.resume(tmp_path / "last.pt")


def test_images_too_large_for_the_device_train_from_host_memory_the_same(sets, tmp_path):
    """A set that does not fit in the device's free memory stays on the host and goes
    there batch by batch; on the CPU its steps are those of the set kept on the device."""
    train, val = sets
    on_device, from_host = [], []
    kept = Trainer(SMALL, train, val, tmp_path / "a", LABELS, None, recording_losses(on_device))
    assert kept.on_device and kept.images.device == kept.device and not kept.whole_epoch
    kept.fit()
    with pytest.MonkeyPatch.context() as patch:  # as a GPU with too little memory left says
        patch.setattr("classifier.training.fits_on", lambda device, nbytes: False)
        host = Trainer(SMALL, train, val, tmp_path / "b", LABELS, None, recording_losses(from_host))
    assert not host.on_device and host.images.device.type == "cpu"
    host.fit()
    assert from_host == on_device and len(on_device) > 0


def test_a_gpu_keeps_the_images_while_they_fit_in_its_free_memory(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1000, 8000))
    gpu = torch.device("cuda")
    assert fits_on(gpu, 250) and not fits_on(gpu, 251)  # IMAGES_SHARE of what is free
    assert fits_on(gpu, 500, share=0.5) and not fits_on(gpu, 501, share=0.5)
    assert fits_on(torch.device("cpu"), 10**15)  # host memory holds them already
