"""Latent discriminator D_z and image discriminator D_x (both return logits)."""

from __future__ import annotations

import torch
from torch import nn

from fabrec.nn.common import init_weights


class LatentDiscriminator(nn.Module):
    """MLP latent_dim -> 1000 -> 1000 -> 1 with ReLU and dropout 0.2 after each hidden layer.

    Returns logits (the sigmoid lives in the BCE-with-logits loss). Shapes: ``(N, D)`` -> ``(N,)``.
    """

    def __init__(self, latent_dim: int = 99, hidden: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(1)


class ImageDiscriminator(nn.Module):
    """DCGAN-like image discriminator with base width 32 and no biases.

    4x4/2 convs 3->32 (LeakyReLU 0.2, no BN), 32->64->128->256->256 (BN + LeakyReLU 0.2), then a
    4x4/1 conv to one channel (padding 1, so 64-px inputs work too) and a spatial mean.
    Returns logits. Shapes: ``(N, 3, S, S)`` -> ``(N,)``.
    """

    def __init__(self, base: int = 32) -> None:
        super().__init__()
        chans = [3, base, base * 2, base * 4, base * 8, base * 8]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(chans[:-1], chans[1:])):
            layers.append(nn.Conv2d(a, b, 4, 2, 1, bias=False))
            if i > 0:
                layers.append(nn.BatchNorm2d(b))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        layers.append(nn.Conv2d(chans[-1], 1, 4, 1, 1, bias=False))
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).mean(dim=(1, 2, 3))
