"""Builders of small real test data (JPEG faces, 300-W folders) and tiny training configs,
shared by the test modules (the fixtures built from them live in ``conftest.py``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from scipy.io import savemat

from fabrec.config import AEScheduleConfig, AETrainConfig, DataConfig, LMTrainConfig, ModelConfig
from fabrec.datasets.pts import write_pts


def blob_image(rng: np.random.Generator, size: int = 80) -> np.ndarray:
    """A smooth random 'face-ish' picture: an ellipse and two dark eyes on a gradient."""
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = rng.integers(40, 200, 3)
    c = size // 2
    cv2.ellipse(img, (c, c), (size // 3, int(size / 2.4)), 0, 0, 360, [int(v) for v in rng.integers(120, 255, 3)], -1)
    for dx in (-size // 7, size // 7):
        cv2.circle(img, (c + dx, c - size // 10), max(2, size // 16), (20, 20, 20), -1)
    return cv2.GaussianBlur(img, (5, 5), 1.5)


def face_points(k: int, rng: np.random.Generator, size: int = 80) -> np.ndarray:
    return rng.uniform(size * 0.25, size * 0.75, (k, 2))


def make_300w(root: Path, with_mat: bool = False) -> None:
    rng = np.random.default_rng(0)
    bbs = {}
    for folder in ["afw", "helen/trainset", "helen/testset", "lfpw/trainset", "lfpw/testset", "ibug"]:
        d = root / folder
        d.mkdir(parents=True)
        for i in range(2):
            name = f"{folder.replace('/', '_')}_{i}"
            cv2.imwrite(str(d / f"{name}.jpg"), blob_image(rng))
            pts = face_points(68, rng)
            write_pts(d / f"{name}.pts", pts)
            bbs.setdefault(folder, []).append((f"{name}.jpg", pts))
    if with_mat:
        bdir = root / "Bounding Boxes"
        bdir.mkdir()
        for folder, entries in bbs.items():
            arr = np.empty((1, len(entries)), dtype=object)
            for i, (name, pts) in enumerate(entries):
                gt = np.array([[*(pts.min(0) + 1), *(pts.max(0) + 1)]])
                st = np.empty((1, 1), dtype=[("imgName", "O"), ("bb_detector", "O"), ("bb_ground_truth", "O")])
                st[0, 0] = (np.array([name]), gt + 3, gt)
                arr[0, i] = st
            savemat(str(bdir / f"bounding_boxes_{folder.replace('/', '_')}.mat"), {"bounding_boxes": arr})


def tiny_cfg(folder: Path, **kw) -> AETrainConfig:
    base = AETrainConfig(
        model=ModelConfig(image_size=64, width=0.125),
        schedule=AEScheduleConfig(curriculum=False),
        data=DataConfig(paths=(str(folder),), val_permille=150, num_workers=0),
        batch_size=4, max_steps=4, checkpoint_every=0, log_every=1, grid_size=2,
        amp="none",  # fp32 whatever the CPU: the fixtures' numbers do not depend on the machine class
    )
    return replace(base, **kw)


def lm_cfg(root: Path, **kw) -> LMTrainConfig:
    base = LMTrainConfig(dataset="300w", root=str(root), split="train", batch_size=4, max_steps=4,
                         val_permille=300, val_every=2, checkpoint_every=2, log_every=1, num_workers=0,
                         framing="landmarks",  # synthetic faces: no detector finds them
                         amp="none")  # fp32 whatever the CPU
    return replace(base, **kw)
