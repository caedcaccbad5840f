"""The training toolkit on a CUDA GPU: bf16 autocast, channels_last, fused optimizers,
torch.compile, resume, and checkpoints that load on a CPU. Skipped where there is no GPU.

Imports only torch and the classifier, so it runs on a GPU machine without the crawler's
dependencies: ``pytest --noconftest tests/classifier/test_cuda.py``."""

from __future__ import annotations

import pytest
import torch

from classifier.checkpoints import load_checkpoint
from classifier.config import TrainConfig
from classifier.evaluation import predict_logits
from classifier.export import export_onnx, load_model
from classifier.inference import Classifier
from classifier.training import Trainer
from db.records import LABELS
from tests.classifier.helpers import first_images, recording_losses

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

GPU = TrainConfig(
    architecture="shopnet-s",
    width=16,
    embedding_dim=16,
    epochs=2,
    batch_size=128,
    train_limit=4000,
    eval_limit=1000,
    augment=True,
    shop_augment=0.5,
    device="cuda",
    tensorboard=False,
)


@pytest.fixture(scope="module")
def sets():
    return first_images(4000, 1000)


def test_training_on_the_gpu_uses_bf16_channels_last_and_a_fused_optimizer(sets, tmp_path):
    train, val = sets
    seen = []
    trainer = Trainer(GPU, train, val, tmp_path, LABELS, on_step=recording_losses(seen))
    assert trainer.device.type == "cuda" and trainer.amp
    assert trainer.images.is_cuda  # the data set lives on the GPU
    assert trainer.optimizer.defaults["fused"]
    weight = trainer.model.stem[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    result = trainer.fit()
    assert seen[-1] < seen[0]  # the loss fell
    assert result.metrics["accuracy"] > 0.6
    state = load_checkpoint(result.checkpoint)  # weights_only, onto the CPU
    assert all(t.device.type == "cpu" for t in state["model"].values())


def test_a_resumed_gpu_run_takes_the_same_steps(sets, tmp_path):
    train, val = sets
    straight, resumed = [], []
    Trainer(
        GPU, train, val, tmp_path / "straight", LABELS, on_step=recording_losses(straight)
    ).fit()
    Trainer(GPU, train, val, tmp_path / "cut", LABELS).fit(stop_after_epoch=1)
    second = Trainer(GPU, train, val, tmp_path / "cut", LABELS, on_step=recording_losses(resumed))
    second.resume(tmp_path / "cut" / "last.pt")
    second.fit()
    # cuDNN picks its kernels per run and their sums differ in the last bits, so "the same
    # steps" is within bf16 rounding here, where the CPU test asks for equality
    assert resumed == pytest.approx(straight[len(straight) // 2 :], rel=2e-2)


def test_a_compiled_model_trains_in_a_graph_and_saves_plain_weights(sets, tmp_path):
    train, val = sets
    config = GPU.replace(compile=True, epochs=1, train_limit=1024)
    trainer = Trainer(config, train, val, tmp_path, LABELS)
    result = trainer.fit()
    assert trainer.train_step.graph is not None  # compiled kernels, captured and replayed
    state = load_checkpoint(result.checkpoint)
    assert not any(key.startswith("_orig_mod") for key in state["model"])
    model, _ = load_model(result.checkpoint)  # loads into an uncompiled model on the CPU
    assert model(torch.zeros(1, 1, 28, 28))[0].shape == (1, len(LABELS))


def test_gpu_and_cpu_inference_agree_and_onnx_keeps_parity(sets, tmp_path):
    train, val = sets
    result = Trainer(GPU.replace(epochs=1), train, val, tmp_path, LABELS).fit()
    on_gpu = Classifier(result.checkpoint, device="cuda")
    on_cpu = Classifier(result.checkpoint, device="cpu")
    arrays = val.images[:256].numpy()
    gpu_labels = [p.label for p in on_gpu.predict_arrays(arrays)]
    cpu_labels = [p.label for p in on_cpu.predict_arrays(arrays)]
    agree = sum(a == b for a, b in zip(gpu_labels, cpu_labels, strict=True)) / len(arrays)
    assert agree >= 0.97  # TF32 convolutions on the GPU may flip a near tie
    model, _ = load_model(result.checkpoint)
    cpu_logits = predict_logits(model, val.images[:256])
    assert cpu_logits.shape == (256, len(LABELS))
    parity = export_onnx(result.checkpoint, tmp_path / "model.onnx")
    assert parity["max_abs_diff"] <= 1e-4


class Recording:
    """A train step that also keeps each step's loss."""

    def __init__(self, step):
        self.step, self.losses = step, []

    def __getattr__(self, name):
        return getattr(self.step, name)

    def __call__(self, batch, targets):
        logits, loss = self.step(batch, targets)
        self.losses.append(float(loss))
        return logits, loss


def test_a_graphed_step_follows_the_eager_one(sets, tmp_path):
    train, val = sets
    # cosine: one-cycle cycles momentum eagerly but not in a graph, so it would differ
    config = GPU.replace(epochs=1, train_limit=2000, schedule="cosine", shop_augment=0.0)
    runs = {}
    for graphs in (True, False):
        trainer = Trainer(config.replace(cuda_graphs=graphs), train, val, tmp_path, LABELS)
        step = trainer.train_step = Recording(trainer.train_step)
        trainer.fit()
        runs[graphs] = step.losses, step.step
    (graphed, graphed_step), (eager, _) = runs[True], runs[False]
    assert graphed_step.graph is not None  # captured, then replayed
    assert len(graphed) == len(eager) == 16  # 15 full batches of 128 and a last one of 80
    assert graphed[:3] == pytest.approx(eager[:3], rel=1e-3)  # the eager warm-up steps
    assert graphed == pytest.approx(eager, rel=3e-2)  # replays and the eager last batch


def test_sgd_trains_on_the_gpu_with_graphs(sets, tmp_path):
    train, val = sets
    config = GPU.replace(optimizer="sgd", lr=0.05, epochs=1)
    trainer = Trainer(config, train, val, tmp_path, LABELS)
    result = trainer.fit()
    assert trainer.train_step.graph is not None and result.metrics["accuracy"] > 0.3


def test_a_run_without_graphs_resumes_with_them(sets, tmp_path):
    train, val = sets
    plain = GPU.replace(cuda_graphs=False)
    Trainer(plain, train, val, tmp_path, LABELS).fit(stop_after_epoch=1)
    resumed = Trainer(GPU, train, val, tmp_path, LABELS)
    resumed.resume(tmp_path / "last.pt")
    group = resumed.optimizer.param_groups[0]
    assert group["capturable"] and isinstance(group["lr"], torch.Tensor)
    result = resumed.fit()  # captures, with the loaded optimizer state on the GPU
    assert resumed.train_step.graph is not None and result.epochs_run == 2
