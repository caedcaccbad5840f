"""Checkpoints: written atomically, holding only tensors and plain values, loaded with
``weights_only=True`` so a file carrying a pickled object is refused, never executed."""

from __future__ import annotations

from pathlib import Path

import torch

from classifier.errors import CheckpointError

REQUIRED_KEYS = ("model", "config", "classes")


def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically: a crash mid-save never leaves a truncated checkpoint behind."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path}: checkpoint not found") from exc
    except Exception as exc:  # pickle payloads are refused here by weights_only
        raise CheckpointError(f"{path}: not a loadable pricelens checkpoint: {exc}") from exc
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED_KEYS):
        raise CheckpointError(f"{path}: not a pricelens checkpoint (no model/config/classes)")
    return state


def rng_state(generator: torch.Generator) -> dict:
    """Every random stream the training loop draws from, so a resumed run repeats exactly."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "data": generator.get_state(),
    }


def restore_rng(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    generator.set_state(state["data"])
