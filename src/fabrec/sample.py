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

    from fabrec.datasets.faces import to_tensor
    from fabrec.io import read_image
    from fabrec.transforms import Box, crop_matrix, warp

    rgb = read_image(SAMPLE_IMAGE)
    box = Box.from_xywh(*SAMPLE_BOX)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        dx, dy = rng.uniform(-0.06, 0.06, 2) * box.side
        m = crop_matrix(Box(box.cx + dx, box.cy + dy, box.side * rng.uniform(0.95, 1.05)), size)
        a = np.deg2rad(rng.uniform(-10, 10))
        c, s = np.cos(a), np.sin(a)
        half = (size - 1) / 2
        rot = np.array([[c, -s, half - c * half + s * half], [s, c, half - s * half - c * half], [0, 0, 1]])
        out.append(to_tensor(warp(rgb, rot @ m, size)))
    return torch.stack(out)
