"""A small ResNet-style CNN. Global average pooling makes it accept any input size; the
L2-normalised embedding it computes on the way to the logits is what matching compares."""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F


class StridedPointwise(nn.Conv2d):
    """A 1x1 convolution with a stride. Below 16 input channels it is computed as every
    stride-th pixel, then a 1x1 convolution with stride 1: the same result from the same
    weights, avoiding oneDNN's strided 1x1 kernel, whose backward pass corrupts the heap on
    AVX-512 CPUs in channels-last layout for 2-15 input channels and a batch that is not a
    multiple of 4 (torch 2.14.1, oneDNN 3.12: a segfault or "double free" mid-epoch at width 8).
    From 16 channels the kernel is sound and 5-10% faster per training step than the slice."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__(cin, cout, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_channels >= 16:
            return super().forward(x)
        step = self.stride
        return F.conv2d(x[:, :, :: step[0], :: step[1]], self.weight)


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(StridedPointwise(cin, cout, stride), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Layout(NamedTuple):
    """The stem's width (a multiple of ``width``) and stride, then (width, stride) of each
    residual block, widths as multiples of ``width``. A stride-2 stem is a 4x4 "patchify"
    convolution: the network never holds a full-resolution activation."""

    stem_scale: float
    stem_stride: int
    blocks: tuple[tuple[int, int], ...]


LAYOUTS: dict[str, Layout] = {
    "shopnet": Layout(1, 1, ((1, 1), (2, 2), (4, 2))),
    # every block at 14x14 or below, wider: at width 16, 10.0 M MACs per 28x28 photo (shopnet:
    # 9.3 M) and 314k parameters (82k), for about 27% less CPU per epoch in a bare training
    # loop (a 16-channel block at 28x28 is memory-bound); see the classifier issue's notes
    "shopnet-s": Layout(1.5, 1, ((2, 2), (4, 2), (8, 2))),
    # shopnet-s with a second block in each stage: the GPU recipe's capacity for >= 95%
    "shopnet-m": Layout(1.5, 1, ((2, 2), (2, 1), (4, 2), (4, 1), (8, 2), (8, 1))),
    # shopnet-s with a patchify stem straight to 14x14: the 28x28 stem, its batch norm and the
    # stride-2 block reading it took 37% of a CPU training step for 2% of the multiply-adds
    "shopnet-p": Layout(2, 2, ((2, 1), (4, 2), (8, 2))),
}


class ShopNet(nn.Module):
    """stem -> residual blocks (LAYOUTS) -> GAP -> embedding -> classes."""

    def __init__(
        self,
        num_classes: int = 10,
        width: int = 16,
        embedding_dim: int = 64,
        in_channels: int = 1,
        layout: str = "shopnet",
        tta_flip: bool = False,
    ):
        super().__init__()
        self.tta_flip = tta_flip
        stem_scale, stem_stride, blocks = LAYOUTS[layout]
        stem = int(width * stem_scale)
        kernel = 3 if stem_stride == 1 else 2 * stem_stride  # 4x4 at stride 2: even tiles
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem, kernel, stem_stride, (kernel - 1) // 2, bias=False),
            nn.BatchNorm2d(stem),
            nn.ReLU(inplace=True),
        )
        stages, cin = [], stem
        for scale, stride in blocks:
            stages.append(ResidualBlock(cin, scale * width, stride))
            cin = scale * width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.embed = nn.Linear(cin, embedding_dim)
        self.head = nn.Linear(embedding_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.pool(self.stages(self.stem(x))).flatten(1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, L2-normalised embedding). With ``tta_flip``, outside training, the logits
        are the mean of the photo's and its mirror image's; the embedding stays the photo's own,
        since matching must tell a product from its mirror image."""
        features = self.features(x)
        logits = self.head(F.relu(features))
        if self.tta_flip and not self.training:
            logits = (logits + self.head(F.relu(self.features(x.flip(3))))) / 2
        return logits, F.normalize(features, dim=1)


ARCHITECTURES = {name: partial(ShopNet, layout=name) for name in LAYOUTS}


def model_kwargs(config, num_classes: int) -> dict:
    """The constructor arguments a TrainConfig implies."""
    return {
        "num_classes": num_classes,
        "width": config.width,
        "embedding_dim": config.embedding_dim,
        "tta_flip": config.tta_flip,
    }


def build_model(architecture: str, **kwargs) -> nn.Module:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[architecture](**kwargs)
