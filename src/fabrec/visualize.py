"""Pictures: image grids (reconstructions, samples, interpolations), overlays, CED plots."""

from __future__ import annotations

import numpy as np
import torch

from fabrec.model import denormalize


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Model-space ``(N, 3, H, W)`` -> RGB ``uint8 (N, H, W, 3)``."""
    x = denormalize(images.detach().float().cpu())
    return (x.permute(0, 2, 3, 1).numpy() * 255.0 + 0.5).astype(np.uint8)


def grid(rows: list[np.ndarray], pad: int = 2) -> np.ndarray:
    """Tile rows of images (each ``(n, H, W, 3) uint8``) into one RGB picture, white padding."""
    n = max(len(r) for r in rows)
    h, w = rows[0].shape[1:3]
    out = np.full((len(rows) * (h + pad) + pad, n * (w + pad) + pad, 3), 255, np.uint8)
    for i, r in enumerate(rows):
        for j, im in enumerate(r):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            out[y : y + h, x : x + w] = im
    return out
