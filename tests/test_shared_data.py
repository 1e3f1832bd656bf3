"""Readers on the real shared data (skipped where ../shared/data is absent)."""

from pathlib import Path

import numpy as np

from fabrec.datasets.faces import FaceDataset, collect_faces
from fabrec.datasets.landmarks import LandmarkDataset, read_dataset
from fabrec.schemes import BUILTIN


def test_300w_parts(shared_data: Path) -> None:
    afw = read_dataset("300w", shared_data / "300w", "afw", BUILTIN["68"])
    helen = read_dataset("300w", shared_data / "300w", "helen/trainset", BUILTIN["68"])
    assert len(afw.samples) == 337 and len(helen.samples) == 870
    assert not afw.problems and not helen.problems
    ds = LandmarkDataset(afw.samples[:4], BUILTIN["68"], 128, 128, (0.18, 0.01))
    item = ds[0]
    assert item["image"].shape == (3, 128, 128)
    # the crop frames the face: every landmark inside it
    assert ((item["points"] > 0) & (item["points"] < 128)).all()
    assert item["norm"] > 10


def test_utkface_listing_and_crop(shared_data: Path) -> None:
    items = collect_faces([str(shared_data / "utkface")])
    assert len(items) == 23_707
    x = FaceDataset(items[:2], 64)[0]
    assert x.shape == (3, 64, 64) and np.isfinite(x.numpy()).all()
