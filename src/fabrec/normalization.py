"""Model space: pixels in [0, 1] minus the RGB mean (std 1), shared by data and model.

The generator's tanh output lives in the same space.
"""

from __future__ import annotations

import numpy as np
import torch

MEAN_RGB = (0.518, 0.418, 0.361)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """RGB ``uint8 (H, W, 3)`` -> model-space ``float32 (3, H, W)``."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)
    return x - torch.tensor(MEAN_RGB).view(3, 1, 1)


def batch_to_tensor(rgb: torch.Tensor) -> torch.Tensor:
    """RGB ``uint8 (N, H, W, 3)`` -> model-space ``float32 (N, 3, H, W)`` (as :func:`to_tensor`)."""
    x = rgb.permute(0, 3, 1, 2).float().div_(255.0)
    return x - torch.tensor(MEAN_RGB).view(1, 3, 1, 1)


def denormalize(images: torch.Tensor) -> torch.Tensor:
    """Model space ``(N, 3, H, W)`` -> RGB in [0, 1] (clamped)."""
    mean = torch.tensor(MEAN_RGB, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images + mean).clamp(0.0, 1.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Model-space ``(N, 3, H, W)`` -> RGB ``uint8 (N, H, W, 3)``."""
    x = denormalize(images.detach().float().cpu())
    return (x.permute(0, 2, 3, 1).numpy() * 255.0 + 0.5).astype(np.uint8)
