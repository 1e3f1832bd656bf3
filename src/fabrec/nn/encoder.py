"""ResNet-18 encoder: face image -> 99-D latent code."""

from __future__ import annotations

import torch
from torch import nn

from fabrec.nn.common import check_image_size, init_weights, scaled


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with BN, identity or 1x1 projection shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def _stage(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1))


class Encoder(nn.Module):
    """ResNet-18 encoder (BasicBlocks, 2 per stage) ending in a linear map to the latent code.

    At 128 px the stages 64/128/256/512 run at 32/16/8/4 px. At 256 px an extra 64-channel
    stage (stride 1, at 64 px) sits after the max-pool and the next stage becomes stride 2, so
    the last feature map is 4x4 at both sizes. At 64 px (tiny models) it is 2x2.

    Args:
        image_size: input side in pixels (64, 128 or 256).
        latent_dim: size of z (99 in the paper).
        width: channel multiplier (1.0 = the paper's ResNet-18).

    Shapes: ``(N, 3, S, S)`` -> ``(N, latent_dim)``.
    """

    def __init__(self, image_size: int = 128, latent_dim: int = 99, width: float = 1.0) -> None:
        super().__init__()
        check_image_size(image_size)
        c1, c2, c3, c4 = (scaled(c, width) for c in (64, 128, 256, 512))
        self.image_size = image_size
        self.stem = nn.Sequential(
            nn.Conv2d(3, c1, 7, 2, 3, bias=False),
            nn.BatchNorm2d(c1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        # The 256-px growth stage; named apart so that 128 -> 256 growth finds every old tensor.
        self.layer0 = _stage(c1, c1, 1) if image_size == 256 else None
        self.layer1 = _stage(c1, c1, 2 if image_size == 256 else 1)
        self.layer2 = _stage(c1, c2, 2)
        self.layer3 = _stage(c2, c3, 2)
        self.layer4 = _stage(c3, c4, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c4, latent_dim)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (N, c1, S/4, S/4)
        if self.layer0 is not None:
            x = self.layer0(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (N, c4, 4, 4) at 128/256
        return self.fc(torch.flatten(self.pool(x), 1))  # (N, latent_dim)
