"""Shared fixtures: tiny synthetic face-like images written as real JPEG/PNG files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

torch.set_num_threads(1)


def blob_image(rng: np.random.Generator, size: int = 80) -> np.ndarray:
    """A smooth random 'face-ish' picture: an ellipse and two dark eyes on a gradient."""
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = rng.integers(40, 200, 3)
    c = size // 2
    cv2.ellipse(img, (c, c), (size // 3, int(size / 2.4)), 0, 0, 360, [int(v) for v in rng.integers(120, 255, 3)], -1)
    for dx in (-size // 7, size // 7):
        cv2.circle(img, (c + dx, c - size // 10), max(2, size // 16), (20, 20, 20), -1)
    return cv2.GaussianBlur(img, (5, 5), 1.5)


@pytest.fixture
def face_folder(tmp_path: Path) -> Path:
    """A folder (with a subfolder) of 24 small face-like JPEGs and PNGs."""
    rng = np.random.default_rng(0)
    root = tmp_path / "faces"
    (root / "sub").mkdir(parents=True)
    for i in range(24):
        ext = ".jpg" if i % 3 else ".png"
        folder = root / "sub" if i % 2 else root
        cv2.imwrite(str(folder / f"face_{i:02d}{ext}"), blob_image(rng))
    return root


@pytest.fixture
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/data not present")
    return SHARED
