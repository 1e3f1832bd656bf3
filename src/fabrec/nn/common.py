"""Helpers shared by the networks: channel widths and initialisation."""

from __future__ import annotations

import math

from torch import nn

SUPPORTED_SIZES = (64, 128, 256)


def check_image_size(image_size: int) -> None:
    """Raise ``ValueError`` unless ``image_size`` is one the networks are built for."""
    if image_size not in SUPPORTED_SIZES:
        raise ValueError(f"image size must be one of {SUPPORTED_SIZES}, got {image_size}")


def scaled(channels: int, width: float) -> int:
    """Channel count ``channels`` scaled by the width multiplier (at least 8)."""
    return max(8, int(round(channels * width)))


def num_generator_blocks(image_size: int) -> int:
    """Inverted residual blocks in the generator: 3 at 64 px, 4 at 128 px, 5 at 256 px."""
    check_image_size(image_size)
    return int(math.log2(image_size)) - 3


def init_weights(module: nn.Module) -> None:
    """He-normal init for (transposed) convolutions, BN gamma=1 beta=0 (the notes' scheme)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
