"""ONNX export of a checkpoint, with a parity check against PyTorch (on the inputs given,
else random normalised ones)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from classifier.checkpoints import load_checkpoint
from classifier.config import config_from_checkpoint
from classifier.errors import ExportError
from classifier.model import build_model, model_kwargs
from classifier.transforms import INPUT_SIZE

log = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-4
OUTPUTS = ("logits", "embedding")
# the parity check's second input size: non-square, so swapped height and width axes show
SECOND_SIZE = (36, 44)


def load_model(checkpoint: Path) -> tuple[torch.nn.Module, list[str]]:
    """The model of *checkpoint* on the CPU in eval mode, and its class names."""
    state = load_checkpoint(checkpoint)
    config = config_from_checkpoint(state["config"])
    model = build_model(config.architecture, **model_kwargs(config, len(state["classes"])))
    model.load_state_dict(state["model"])
    return model.eval(), list(state["classes"])


def onnx_session(path: Path, threads: int | None = None):
    try:
        import onnxruntime
    except ImportError as exc:
        raise ExportError("onnxruntime is not installed: pip install onnxruntime") from exc
    options = onnxruntime.SessionOptions()
    # like torch's threads (classifier/__init__.py): idle threads sleep rather than spin, so
    # the photo-decoding processes get the cores (2,424-2,571 -> 2,718-2,958 photos/s here)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ExportError(f"{path}: onnxruntime cannot load it: {exc}") from exc


def export_onnx(checkpoint: Path, out: Path, samples: np.ndarray | None = None) -> dict:
    """Write *out* (a name ending in .onnx, so that no checkpoint is overwritten) and return
    the parity check: max |PyTorch - ONNX Runtime| over *samples* (normalised (N, 1, H, W)
    float32; random 28x28 ones if None) and over random inputs of a second, non-square size
    (SECOND_SIZE), since the export, like the model (global average pooling), takes any
    height and width. The export is written beside *out* and takes its name only once it
    passed: differences above PARITY_TOLERANCE raise ExportError and leave an earlier export
    there as it was."""
    if out.suffix.lower() != ".onnx":
        raise ExportError(f"{out}: an ONNX export's file name must end in .onnx")
    model, _ = load_model(checkpoint)
    dummy = torch.zeros(2, 1, INPUT_SIZE, INPUT_SIZE)
    part = out.with_name(f".{out.name}.part-{os.getpid()}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        part.touch()
    except OSError as exc:
        raise ExportError(f"{out}: cannot write there: {exc.strerror or exc}") from exc
    try:
        try:
            torch.onnx.export(
                model,
                (dummy,),
                str(part),
                input_names=["images"],
                output_names=list(OUTPUTS),
                dynamic_axes={
                    "images": {0: "batch", 2: "height", 3: "width"},
                    "logits": {0: "batch"},
                    "embedding": {0: "batch"},
                },
                opset_version=17,
                dynamo=False,  # the TorchScript exporter needs no extra packages
            )
        except Exception as exc:
            raise ExportError(f"{checkpoint}: ONNX export failed: {exc}") from exc
        if samples is None:
            samples = np.random.default_rng(0).standard_normal((64, 1, INPUT_SIZE, INPUT_SIZE))
        samples = samples.astype(np.float32)
        other = np.random.default_rng(1).standard_normal((8, 1, *SECOND_SIZE), dtype=np.float32)
        session = onnx_session(part)
        try:
            diff = max(_max_difference(model, session, inputs) for inputs in (samples, other))
        except Exception as exc:  # onnxruntime's own untyped errors, e.g. a shape it refuses
            raise ExportError(f"{checkpoint}: ONNX Runtime cannot run the export: {exc}") from exc
        if diff > PARITY_TOLERANCE:
            raise ExportError(
                f"{checkpoint}: ONNX output differs from PyTorch by {diff:.2e} "
                f"(tolerance {PARITY_TOLERANCE:.0e}); nothing written to {out}"
            )
        part.replace(out)
    finally:
        part.unlink(missing_ok=True)
    log.info("exported %s -> %s (max difference %.2e)", checkpoint, out, diff)
    return {"path": str(out), "max_abs_diff": diff, "samples": len(samples) + len(other)}


def _max_difference(model: torch.nn.Module, session, inputs: np.ndarray) -> float:
    """max |PyTorch - ONNX Runtime| over both outputs for *inputs*."""
    with torch.no_grad():
        expected = [t.numpy() for t in model(torch.from_numpy(inputs))]
    got = session.run(list(OUTPUTS), {"images": inputs})
    return max(float(np.abs(e - g).max()) for e, g in zip(expected, got, strict=True))
