"""The bundled sample photo (NASA, public domain) and real face crops made from it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

SAMPLE_IMAGE = Path(__file__).resolve().parent / "assets" / "astronaut.jpg"
SAMPLE_BOX = (152.0, 35.0, 140.0, 140.0)  # x, y, w, h of the face in SAMPLE_IMAGE


def face_crops(size: int, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` model-space crops ``(n, 3, size, size)`` of the sample face, each with a random
    shift (up to 6% of the box), scale (0.95-1.05) and rotation (up to 10 degrees): real face
    content, so content-dependent costs (heatmap decoding) are timed as on photos."""
    import numpy as np  # imported here: the CLI reads this module and starts without torch
    import torch

    from fabrec.config import AugmentConfig
    from fabrec.io import read_image
    from fabrec.normalization import to_tensor
    from fabrec.transforms import Box, augment_matrix, crop_matrix, warp

    rgb = read_image(SAMPLE_IMAGE)
    m = crop_matrix(Box.from_xywh(*SAMPLE_BOX), size)
    jitter = AugmentConfig(flip=0.0, rotate=10.0, translate=0.06, scale_min=0.95, scale_max=1.05, shear=0.0)
    rng = np.random.default_rng(seed)
    return torch.stack([to_tensor(warp(rgb, augment_matrix(rng, size, jitter)[0] @ m, size)) for _ in range(n)])
