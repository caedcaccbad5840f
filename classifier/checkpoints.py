"""Checkpoints: written atomically, holding only tensors and plain values, loaded with
``weights_only=True`` so a file carrying a pickled object is refused, never executed."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch

from classifier.errors import CheckpointError

log = logging.getLogger(__name__)

REQUIRED_KEYS = ("model", "config", "classes")


def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically: a crash mid-save never leaves a truncated checkpoint behind."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def copy_checkpoint(source: Path, path: Path) -> None:
    """Copy a saved checkpoint, atomically like save_checkpoint."""
    tmp = path.with_suffix(".tmp")
    shutil.copyfile(source, tmp)
    tmp.replace(path)


class CheckpointWriter:
    """Writes checkpoints in a background thread while training goes on.

    ``save`` copies the state to the CPU first (training changes the originals next step),
    so what is written is the state at the call, and the thread makes no CUDA calls (which
    could disturb a graph capture). One write at a time: ``save`` waits for the one before,
    so a write error (a full disk) stops training at the next epoch, not at the end.
    ``wait`` returns when the last write is on disk, raising its error.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint")
        self._pending: Future | None = None

    def save(
        self,
        path: Path,
        state: dict,
        copies: tuple[Path, ...] = (),
        then: Callable[[], None] | None = None,
    ) -> None:
        """Write *state* to *path*, then copy the file to each of *copies*, then call *then*
        (files that describe the checkpoint come after it)."""
        self.wait()
        snapshot = _on_cpu(state)
        self._pending = self._pool.submit(self._write, path, snapshot, copies, then)

    @staticmethod
    def _write(path: Path, state: dict, copies: tuple[Path, ...], then) -> None:
        save_checkpoint(path, state)
        for copy in copies:  # a file copy: serialising the state again costs more
            copy_checkpoint(path, copy)
        if then is not None:
            then()

    def wait(self, raise_errors: bool = True) -> None:
        pending, self._pending = self._pending, None
        error = pending.exception() if pending is not None else None
        if error is not None and raise_errors:
            raise error
        if error is not None:
            log.error("checkpoint not written: %s", error)

    def close(self, raise_errors: bool = True) -> None:
        try:
            self.wait(raise_errors)
        finally:
            self._pool.shutdown()


def _on_cpu(value):
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _on_cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_on_cpu(v) for v in value)
    return value  # numbers, strings, None: immutable


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path}: checkpoint not found") from exc
    except Exception as exc:  # pickle payloads are refused here by weights_only
        raise CheckpointError(
            f"{path}: not a loadable pricelens checkpoint: {_reason(exc)}"
        ) from exc
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED_KEYS):
        raise CheckpointError(f"{path}: not a pricelens checkpoint (no model/config/classes)")
    return state


def _reason(exc: Exception) -> str:
    """torch's error without its advice to retry with ``weights_only=False``, which would run
    whatever the file carries: only the line that says what was refused."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines or not lines[0].startswith("Weights only load failed"):
        return str(exc)
    advice = ("Weights only load failed", "Please file an issue", "Check the documentation")
    kept = [line for line in lines if not line.startswith(advice)]
    return "refused by the weights-only loader: " + (" ".join(kept) or lines[0])


def rng_state(generator: torch.Generator) -> dict:
    """Every random stream the training loop draws from, so a resumed run repeats exactly."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "data": generator.get_state(),
    }


def restore_rng(state: dict, generator: torch.Generator) -> None:
    # RNG states are CPU byte tensors even for CUDA streams; a checkpoint loaded with
    # map_location="cuda" brings them back on the GPU
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    generator.set_state(state["data"].cpu())
