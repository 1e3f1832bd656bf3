"""Shared fixtures: tiny synthetic face-like images written as real JPEG/PNG files, the shared
data when present, and a tiny trained landmark model."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

from factories import blob_image, lm_cfg, make_300w, tiny_cfg

from fabrec.train_autoencoder import train_autoencoder
from fabrec.train_landmarks import train_landmarks

torch.set_num_threads(1)


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


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory, ) -> Path:
    tmp = tmp_path_factory.mktemp("lm")
    faces = tmp / "faces"
    faces.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        cv2.imwrite(str(faces / f"f{i}.jpg"), blob_image(rng))
    train_autoencoder(tiny_cfg(faces, max_steps=1), tmp / "ae", device="cpu", progress=False)
    data = tmp / "300w"
    make_300w(data)
    train_landmarks(lm_cfg(data, max_steps=2), tmp / "ae" / "last.pt", tmp / "lm", device="cpu", progress=False)
    return tmp / "lm" / "last.pt"
