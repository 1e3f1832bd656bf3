"""Inverted ResNet generator: latent code -> face image, with its blocks exposed."""

from __future__ import annotations

import torch
from torch import nn

from fabrec.nn.common import init_weights, num_generator_blocks, scaled


class InvertedBlock(nn.Module):
    """Upsampling residual block: 4x4/2 transposed conv -> BN -> ReLU -> 3x3 conv -> BN, plus a
    4x4/2 transposed-conv + BN shortcut; sum, ReLU. Doubles the spatial size.

    Shapes: ``(N, cin, H, W)`` -> ``(N, cout, 2H, 2W)``.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout)
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


def block_channels(image_size: int, width: float) -> list[tuple[int, int]]:
    """(cin, cout) of every generator block for this size and width.

    Width 1.0: 512->256 (8 px), 256->128 (16), 128->64 (32), 64->64 (64), [64->64 (128) at 256].
    """
    plan = [(512, 256), (256, 128), (128, 64), (64, 64), (64, 64)]
    n = num_generator_blocks(image_size)
    return [(scaled(a, width), scaled(b, width)) for a, b in plan[:n]]


class Generator(nn.Module):
    """Inverted ResNet generator (one inverted block per stage).

    ``z (N, latent_dim)`` -> linear -> ``(N, C, 1, 1)`` -> 4x4 transposed conv -> ``(N, C, 4, 4)``
    -> blocks (each doubling the side) -> 4x4/2 transposed conv to RGB -> tanh ->
    ``(N, 3, S, S)``. ``blocks`` is an ``nn.ModuleList`` so transfer layers can be interleaved
    between them (see :class:`fabrec.nn.TransferLayers`), which receive this generator
    explicitly.
    """

    def __init__(self, image_size: int = 128, latent_dim: int = 99, width: float = 1.0) -> None:
        super().__init__()
        chans = block_channels(image_size, width)
        c0 = chans[0][0]
        self.image_size = image_size
        self.channels = chans  # (cin, cout) per block: what transfer layers interleave with
        self.fc = nn.Linear(latent_dim, c0)
        self.stem = nn.Sequential(
            nn.ConvTranspose2d(c0, c0, 4, 1, 0, bias=False), nn.BatchNorm2d(c0), nn.ReLU(inplace=True)
        )
        self.blocks = nn.ModuleList(InvertedBlock(a, b) for a, b in chans)
        self.to_rgb = nn.ConvTranspose2d(chans[-1][1], 3, 4, 2, 1, bias=False)
        init_weights(self)

    def start(self, z: torch.Tensor) -> torch.Tensor:
        """Latent code ``(N, latent_dim)`` -> first feature map ``(N, C, 4, 4)``."""
        return self.stem(self.fc(z)[:, :, None, None])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.start(z)
        for block in self.blocks:
            x = block(x)
        return torch.tanh(self.to_rgb(x))  # (N, 3, S, S)
