"""A small ResNet-style CNN. Global average pooling makes it accept any input size; the
L2-normalised embedding it computes on the way to the logits is what matching compares."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ShopNet(nn.Module):
    """stem -> 3 stages (width, 2x, 4x; stride 1, 2, 2) -> GAP -> embedding -> classes."""

    def __init__(
        self, num_classes: int = 10, width: int = 16, embedding_dim: int = 64, in_channels: int = 1
    ):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        self.stages = nn.Sequential(
            ResidualBlock(width, width),
            ResidualBlock(width, 2 * width, stride=2),
            ResidualBlock(2 * width, 4 * width, stride=2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.embed = nn.Linear(4 * width, embedding_dim)
        self.head = nn.Linear(embedding_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.pool(self.stages(self.stem(x))).flatten(1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, L2-normalised embedding)."""
        features = self.features(x)
        return self.head(F.relu(features)), F.normalize(features, dim=1)


ARCHITECTURES = {"shopnet": ShopNet}


def model_kwargs(config, num_classes: int) -> dict:
    """The constructor arguments a TrainConfig implies."""
    return {
        "num_classes": num_classes,
        "width": config.width,
        "embedding_dim": config.embedding_dim,
    }


def build_model(architecture: str, **kwargs) -> nn.Module:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[architecture](**kwargs)
