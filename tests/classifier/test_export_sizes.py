"""The ONNX export takes any input height and width, as the PyTorch model does (global average
pooling): ONNX Runtime's logits and embeddings match PyTorch's at 28x28 and at non-square
sizes, at batch 1 and 3."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from classifier.checkpoints import save_checkpoint
from classifier.config import TrainConfig
from classifier.export import PARITY_TOLERANCE, export_onnx, load_model, onnx_session
from classifier.model import build_model, model_kwargs
from db.records import LABELS

# the default model, and the patchify stem (4x4 at stride 2: odd sizes round there) voting
# with its mirror image (a flip along the width axis)
MODELS = {
    "shopnet": TrainConfig(width=8, embedding_dim=16, device="cpu", tensorboard=False),
    "shopnet-p-tta": TrainConfig(
        architecture="shopnet-p",
        width=8,
        embedding_dim=16,
        tta_flip=True,
        device="cpu",
        tensorboard=False,
    ),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def exported(request, tmp_path_factory):
    """(PyTorch model, ONNX Runtime session, parity report) of an untrained model."""
    config = MODELS[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    torch.manual_seed(0)
    model = build_model(config.architecture, **model_kwargs(config, len(LABELS)))
    state = {"model": model.state_dict(), "config": config.to_dict(), "classes": list(LABELS)}
    save_checkpoint(folder / "best.pt", state)
    parity = export_onnx(folder / "best.pt", folder / "model.onnx")
    model, _ = load_model(folder / "best.pt")
    return model, onnx_session(folder / "model.onnx"), parity


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("size", [(28, 28), (36, 44), (44, 36), (33, 45)])
def test_onnx_runtime_gives_pytorchs_outputs_at_any_size(exported, size, batch):
    model, session, _ = exported
    inputs = np.random.default_rng(batch).standard_normal((batch, 1, *size), dtype=np.float32)
    with torch.no_grad():
        expected = [t.numpy() for t in model(torch.from_numpy(inputs))]
    got = session.run(["logits", "embedding"], {"images": inputs})
    for name, e, g in zip(("logits", "embedding"), expected, got, strict=True):
        assert g.shape == e.shape == (batch, e.shape[1]), name
        assert float(np.abs(e - g).max()) <= PARITY_TOLERANCE, name


def test_the_parity_check_covers_a_second_non_square_size(exported):
    _, _, parity = exported
    assert parity["max_abs_diff"] <= PARITY_TOLERANCE
    assert parity["samples"] == 64 + 8  # the 28x28 samples and the 36x44 ones
