"""Interleaved transfer layers (ITL): retask the frozen generator to draw landmark heatmaps."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fabrec.nn.generator import Generator, block_channels


class TransferLayers(nn.Module):
    """3x3 stride-1 convs (no bias, no norm, no activation) after generator blocks 1..4, and a
    4x4/2 transposed conv from the last of those blocks to ``num_landmarks`` heatmap channels.

    The generator is passed to :meth:`forward` explicitly; nothing is stored on it. At 256 px
    the generator's fifth block and RGB layer are skipped, so heatmaps are 128x128 (64x64 for
    64-px models, which have three blocks).

    Args:
        image_size: the autoencoder's image size.
        num_landmarks: L, heatmap channels.
        width: the autoencoder's width multiplier.
        active: which ITLs (1-based) are used, the others are identity (paper Table 7);
            None means all of them.
        channels: the generator's ``(cin, cout)`` per block (its ``channels``); None: those of
            :class:`fabrec.nn.Generator` at this size and width.
    """

    def __init__(
        self,
        image_size: int,
        num_landmarks: int,
        width: float = 1.0,
        active: Sequence[int] | None = None,
        channels: Sequence[tuple[int, int]] | None = None,
    ) -> None:
        super().__init__()
        chans = list(channels or block_channels(image_size, width))[:4]
        self.num_blocks = len(chans)
        if active is None:
            active = range(1, self.num_blocks + 1)
        bad = [i for i in active if not 1 <= i <= self.num_blocks]
        if bad:
            raise ValueError(f"ITL indices must be in 1..{self.num_blocks}, got {sorted(bad)}")
        self.active = tuple(sorted(set(active)))
        self.layers = nn.ModuleList(nn.Conv2d(c, c, 3, 1, 1, bias=False) for _, c in chans)
        for i, layer in enumerate(self.layers, start=1):
            nn.init.dirac_(layer.weight)  # start as identity: the generator's own features
            layer.weight.requires_grad_(i in self.active)
        self.heatmap = nn.ConvTranspose2d(chans[-1][1], num_landmarks, 4, 2, 1, bias=False)
        nn.init.kaiming_normal_(self.heatmap.weight, mode="fan_out", nonlinearity="relu")
        self.num_landmarks = num_landmarks

    def run_blocks(self, generator: Generator, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Generator blocks ``start..stop-1`` (0-based), each followed by its ITL when active:
        ``(N, C, h, h)`` -> ``(N, C', h * 2^(stop-start), ...)``."""
        for i in range(start, stop):
            x = generator.blocks[i](x)
            if i + 1 in self.active:
                x = self.layers[i](x)
        return x

    def features(self, generator: Generator, z: torch.Tensor) -> torch.Tensor:
        """Latent codes ``(N, D)`` -> what the heatmap layer reads: the last generator block's
        output after its ITL, ``(N, C, H/2, H/2)``."""
        return self.run_blocks(generator, generator.start(z), 0, self.num_blocks)

    def forward(self, generator: Generator, z: torch.Tensor) -> torch.Tensor:
        """Latent codes ``(N, D)`` -> heatmaps ``(N, L, H, H)`` (H = 128 at 128/256 px)."""
        return self.heatmap(self.features(generator, z))
