"""bf16 autocast on the CPU: used where the CPU has native bf16 (a 1.55-1.8x faster step),
never where it would be emulated, and never with `amp=false`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from classifier.config import TrainConfig
from classifier.training import Trainer, bf16_pays
from db.records import LABELS
from tests.classifier.helpers import first_images

TINY = TrainConfig(width=8, embedding_dim=16, epochs=1, batch_size=32, train_limit=64,
                   eval_limit=32, device="cpu", tensorboard=False)  # fmt: skip


def stem_dtypes(config: TrainConfig, tmp_path) -> set[torch.dtype]:
    """The dtypes the stem's convolution computed in over a run."""
    train, val = first_images(64, 32)
    trainer = Trainer(config, train, val, tmp_path, LABELS)
    seen: set[torch.dtype] = set()
    trainer.model.stem[0].register_forward_hook(lambda m, args, out: seen.add(out.dtype))
    trainer.fit()
    return seen


def native_bf16() -> bool:
    flags = Path("/proc/cpuinfo").read_text().split()
    return "avx512_bf16" in flags or "amx_tile" in flags


def test_the_cpu_check_follows_the_processors_own_flags():
    assert bf16_pays(torch.device("cpu")) == native_bf16()


@pytest.mark.skipif(not native_bf16(), reason="needs a CPU with native bf16 (AVX-512 BF16, AMX)")
def test_training_steps_run_in_bf16_and_evaluation_in_fp32_where_the_cpu_has_bf16(tmp_path):
    # training steps in bf16; each epoch's validation as classify runs: fp32
    assert stem_dtypes(TINY, tmp_path) == {torch.bfloat16, torch.float32}


def test_without_native_bf16_or_with_amp_off_everything_runs_in_fp32(tmp_path, monkeypatch):
    assert stem_dtypes(TINY.replace(amp=False), tmp_path / "off") == {torch.float32}
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert stem_dtypes(TINY, tmp_path / "emulated") == {torch.float32}
