"""Real (small) training on Fashion-MNIST on the CPU, checkpoints and inference."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from classifier.checkpoints import load_checkpoint
from classifier.config import TrainConfig
from classifier.data import TensorSet, photo_batches
from classifier.errors import CheckpointError, DatasetMissing
from classifier.fashion_mnist import load_split
from classifier.inference import Classifier
from classifier.model import ShopNet, build_model
from classifier.training import train_model
from db.records import LABELS
from demo.photos import PhotoStyle, render_photo

# Small enough for a 2-core CI machine, big enough to learn: SGD one-cycle as the CPU recipe.
TINY = TrainConfig(
    width=8,
    embedding_dim=32,
    epochs=2,
    batch_size=64,
    train_limit=4000,
    eval_limit=500,
    device="cpu",
)


@pytest.fixture(scope="module")
def data():
    return load_split("train"), load_split("test")


def as_set(split) -> TensorSet:
    return TensorSet(torch.from_numpy(split.images.copy()), torch.from_numpy(split.labels))


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    train, test = data
    steps = []
    result = train_model(
        TINY,
        as_set(train),
        as_set(test),
        tmp_path_factory.mktemp("model"),
        LABELS,
        on_step=lambda step, total, loss, acc: steps.append((step, total, loss, acc)),
    )
    result.steps = steps
    return result


def test_fashion_mnist_is_read_from_its_idx_files(data):
    train, test = data
    assert train.images.shape == (60_000, 28, 28) and test.images.shape == (10_000, 28, 28)
    assert train.images.dtype == np.uint8 and set(np.unique(test.labels)) == set(range(10))


def test_sgd_with_a_cosine_schedule_and_clipped_gradients_learns(data, tmp_path, monkeypatch):
    """The other optimizer and schedule, gradients clipped (each step's norm is clipped)."""
    clipped = []
    clip = torch.nn.utils.clip_grad_norm_

    def counting_clip(parameters, max_norm, *args, **kwargs):
        clipped.append(max_norm)
        return clip(parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", counting_clip)
    config = TINY.replace(
        optimizer="sgd", lr=0.05, schedule="cosine", grad_clip=1.0, tensorboard=False
    )
    result = train_model(config, as_set(data[0]), as_set(data[1]), tmp_path, LABELS)
    first, last = result.history
    assert last["train_loss"] < first["train_loss"] and result.metrics["accuracy"] > 0.5
    assert clipped == [1.0] * (2 * 63)  # every step of 2 epochs of 4,000 / 64
    state = load_checkpoint(result.checkpoint)
    assert state["config"]["optimizer"] == "sgd" and state["config"]["schedule"] == "cosine"


def test_a_corrupt_idx_file_is_refused(tmp_path):
    for stem in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (tmp_path / stem).write_bytes(b"\x00\x00\x08\x03" + b"\x00\x00\x00\x05" * 3 + b"xx")
    with pytest.raises(DatasetMissing, match="expected"):
        load_split("test", tmp_path)


def test_training_learns_far_above_chance_and_the_loss_falls(trained):
    assert trained.metrics["accuracy"] > 0.6  # chance is 0.1
    assert set(trained.metrics["per_class"]) == set(LABELS)
    first, last = trained.history
    assert last["train_loss"] < first["train_loss"]
    assert trained.steps[-1][0] == trained.steps[-1][1] == 2 * 63  # 4,000 / 64 per epoch
    assert trained.steps[-1][2] < trained.steps[0][2]  # running loss at the end vs start


def test_a_run_writes_its_config_metrics_and_tensorboard_logs(trained):
    folder = trained.checkpoint.parent
    assert json.loads((folder / "config.json").read_text()) == TINY.to_dict()
    assert json.loads((folder / "metrics.json").read_text())["accuracy"] == pytest.approx(
        trained.metrics["accuracy"]
    )
    assert list((folder / "tensorboard").glob("events.out.tfevents.*"))


def test_checkpoint_holds_the_full_state_and_loads_weights_only(trained):
    state = load_checkpoint(trained.checkpoint)
    assert {
        "model",
        "optimizer",
        "scheduler",
        "scaler",
        "epoch",
        "step",
        "rng",
        "best_metric",
        "bad_epochs",
        "config",
        "classes",
    } <= set(state)
    assert state["epoch"] in (1, 2) and state["classes"] == list(LABELS)
    assert set(state["rng"]) == {"torch", "cuda", "data"}


def test_a_checkpoint_carrying_a_pickle_payload_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"model": Payload(), "config": {}}, path)
    with pytest.raises(CheckpointError, match=r"evil\.pt"):
        load_checkpoint(path)
    assert not marker.exists()


def test_inference_gives_labels_confidences_and_unit_embeddings(trained, data, tmp_path):
    _, test = data
    classifier = Classifier(trained.checkpoint, device="cpu")
    paths = []
    style = PhotoStyle(size=120, padding=10, background=(20, 20, 20), format="JPEG")
    for i in range(40):
        path = tmp_path / f"{i}.jpg"
        path.write_bytes(render_photo(test.images[i], style))
        paths.append(path)
    predictions = classifier.predict_files(paths)
    assert len(predictions) == 40
    for p in predictions:
        assert p.label in LABELS and 0 < p.confidence <= 1
        assert p.second_label in LABELS and p.second_label != p.label  # for top-2 blocking
        assert 0 <= p.second_confidence <= p.confidence and p.confidence + p.second_confidence <= 1
        assert p.embedding.dtype == np.float32
        assert abs(float(np.linalg.norm(p.embedding)) - 1.0) < 1e-4
    right = sum(p.label == LABELS[y] for p, y in zip(predictions, test.labels[:40], strict=True))
    assert right >= 20  # shop-styled photos are still mostly recognised (chance: 4)


def test_light_background_photos_are_inverted_to_the_training_form(data):
    from classifier.transforms import photo_to_array

    _, test = data
    dark = Image.fromarray(test.images[0]).convert("RGB")
    light = Image.fromarray(255 - test.images[0]).convert("RGB")
    assert np.abs(photo_to_array(dark).astype(int) - photo_to_array(light)).max() <= 1


@pytest.mark.parametrize("size", [28, 64, 112])
@pytest.mark.parametrize("architecture", ["shopnet", "shopnet-s", "shopnet-p"])
def test_the_model_accepts_any_input_size(size, architecture):
    model = build_model(architecture, width=8, embedding_dim=16).eval()
    logits, embedding = model(torch.zeros(2, 1, size, size))
    assert logits.shape == (2, 10) and embedding.shape == (2, 16)
    assert torch.allclose(embedding.norm(dim=1), torch.ones(2))


def test_shopnet_keeps_the_parameter_names_and_shapes_saved_models_have():
    shapes = {k: tuple(v.shape) for k, v in ShopNet(width=16).state_dict().items()}
    assert shapes["stem.0.weight"] == (16, 1, 3, 3)
    assert (
        shapes["stages.0.conv1.weight"] == (16, 16, 3, 3)
        and "stages.0.shortcut.0.weight" not in shapes
    )
    assert shapes["stages.2.shortcut.0.weight"] == (64, 32, 1, 1)
    assert shapes["embed.weight"] == (64, 64) and shapes["head.weight"] == (10, 64)
    wide = {k: tuple(v.shape) for k, v in build_model("shopnet-s", width=16).state_dict().items()}
    assert wide["stem.0.weight"] == (24, 1, 3, 3) and wide["embed.weight"] == (64, 128)


def test_the_patchify_stem_goes_straight_to_half_resolution():
    model = build_model("shopnet-p", width=16).eval()
    assert tuple(model.stem[0].weight.shape) == (32, 1, 4, 4)
    assert model.stem(torch.zeros(1, 1, 28, 28)).shape == (1, 32, 14, 14)
    assert isinstance(model.stages[0].shortcut, torch.nn.Identity)  # 14x14 in, 14x14 out


def test_tta_flip_averages_the_mirror_images_logits_and_keeps_the_own_embedding():
    torch.manual_seed(0)
    voting = build_model("shopnet-p", width=8, embedding_dim=16, tta_flip=True)
    plain = build_model("shopnet-p", width=8, embedding_dim=16)
    plain.load_state_dict(voting.state_dict())
    voting.eval(), plain.eval()
    photos = torch.randn(4, 1, 28, 28)
    logits, embedding = voting(photos)
    own, own_embedding = plain(photos)
    mirrored, _ = plain(photos.flip(3))
    assert torch.allclose(logits, (own + mirrored) / 2, atol=1e-6)
    assert torch.equal(embedding, own_embedding)
    assert not torch.allclose(own, mirrored)  # the vote is not a no-op on these weights
    voting.train(), plain.train()
    assert torch.allclose(voting(photos)[0], plain(photos)[0])  # training sees each photo once


def test_unknown_architecture_is_named():
    with pytest.raises(ValueError, match="resnet9000"):
        build_model("resnet9000")


def test_an_unreadable_photo_gets_no_prediction_and_the_others_do(trained, data, tmp_path, caplog):
    _, test = data
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    good.write_bytes(render_photo(test.images[0], PhotoStyle()))
    bad.write_bytes(b"not an image")
    predictions = Classifier(trained.checkpoint, device="cpu").predict_files([bad, good])
    assert predictions[0] is None and predictions[1].label in LABELS
    assert "bad.png" in caplog.text


def test_photo_batches_say_why_each_unreadable_file_was_left_out(tmp_path):
    paths = []
    for i in range(12):
        path = tmp_path / f"{i}.png"
        if i == 5:
            path.write_bytes(b"truncated")
        elif i != 9:  # 9 is missing
            Image.new("L", (28, 28), i * 20).save(path)
        paths.append(str(path))
    problems: dict[int, str] = {}
    # batches of 4 over 12 files: 2 decoding processes are started
    kept = [i for _, batch in photo_batches(paths, 4, workers=2, problems=problems) for i in batch]
    assert kept == [i for i in range(12) if i not in (5, 9)]
    assert sorted(problems) == [5, 9]
    assert "cannot identify image file" in problems[5] and "No such file" in problems[9]


def test_worker_processes_decode_in_order_and_skip_unreadable_files(trained, data, tmp_path):
    _, test = data
    paths = []
    for i in range(30):
        path = tmp_path / f"{i}.jpg"
        if i in (3, 17):
            path.write_bytes(b"truncated")
        else:
            path.write_bytes(render_photo(test.images[i], PhotoStyle(format="JPEG")))
        paths.append(path)
    classifier = Classifier(trained.checkpoint, device="cpu")
    # batches of 4 over 30 files: 2 decoding processes are started
    batches = list(classifier.predict_paths(paths, batch_size=4, workers=2))
    indexes = [i for batch, _ in batches for i in batch]
    assert indexes == [i for i in range(30) if i not in (3, 17)]
    by_workers = [p.label for _, predictions in batches for p in predictions]
    in_process = [p.label for p in classifier.predict_files(paths) if p is not None]
    assert by_workers == in_process


def test_a_run_too_short_to_warm_up_says_it_ran_cosine(data, tmp_path, caplog):
    """One-cycle needs 2 warm-up steps; 3 steps at warmup 0.3 have 0.9: cosine runs, and the
    saved config, the checkpoint and the result say so instead of claiming one-cycle."""
    config = TINY.replace(epochs=1, train_limit=192, schedule="onecycle", warmup=0.3)
    config = config.replace(tensorboard=False)
    result = train_model(config, as_set(data[0]), as_set(data[1]), tmp_path, LABELS)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["schedule"] == result.config["schedule"] == "cosine"
    assert load_checkpoint(result.checkpoint)["config"]["schedule"] == "cosine"
    assert "schedule=onecycle needs at least 2 warm-up steps" in caplog.text
