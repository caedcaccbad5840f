"""The residual shortcut's strided 1x1 convolution: the same numbers as PyTorch's own, and a
narrow model trains in channels-last layout with odd batches without crashing the process
(oneDNN's kernel for it corrupted the heap on AVX-512 CPUs below 16 input channels)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from classifier.model import StridedPointwise

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("cin", [8, 32])  # the sliced path and oneDNN's kernel
@pytest.mark.parametrize("side", [28, 7])  # even and odd sides
def test_it_computes_what_a_strided_1x1_convolution_computes(cin, side):
    torch.manual_seed(cin + side)
    ours = StridedPointwise(cin, 2 * cin, 2)
    reference = nn.Conv2d(cin, 2 * cin, 1, 2, bias=False)
    reference.weight.data.copy_(ours.weight.data)
    inputs = torch.randn(4, cin, side, side)  # contiguous: PyTorch's kernel, not oneDNN's
    for model in (ours, reference):
        x = inputs.clone().requires_grad_()
        out = model(x)
        (out * torch.arange(out.numel()).view_as(out)).sum().backward()
        model.result = (out.detach(), x.grad, model.weight.grad)
    for got, expected in zip(ours.result, reference.result, strict=True):
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected)


TRAIN_NARROW = """
import torch
from classifier.model import build_model
torch.manual_seed(0)
model = build_model("shopnet", width=8, embedding_dim=16).to(memory_format=torch.channels_last)
optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
for step in range(60):
    batch = (17, 63, 5)[step % 3]
    x = torch.randn(batch, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    optimizer.zero_grad()
    logits, _ = model(x)
    torch.nn.functional.cross_entropy(logits, torch.randint(0, 10, (batch,))).backward()
    optimizer.step()
print("trained")
"""


def test_a_narrow_model_trains_channels_last_with_odd_batches():
    # its own process: the bug this guards against kills the interpreter
    done = subprocess.run(
        [sys.executable, "-c", TRAIN_NARROW], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and "trained" in done.stdout, done.stderr[-2000:]
