"""WFLW as published: list_98pt_rect_attr_{train,test}.txt and the attribute subsets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fabrec.datasets.samples import LandmarkSample, ReadResult
from fabrec.errors import FabrecError
from fabrec.schemes import Scheme
from fabrec.transforms import Box

WFLW_ATTRS = ("pose", "expression", "illumination", "makeup", "occlusion", "blur")


def read_wflw(root: str | Path, split: str, scheme: Scheme) -> ReadResult:
    """WFLW: ``list_98pt_rect_attr_{train,test}.txt`` (196 coordinates, 4 box values
    x_min y_min x_max y_max, 6 attribute flags, image path) found anywhere under ``root``;
    images under ``WFLW_images/`` (or ``root``). Split ``train``, ``test`` or a test subset
    (``pose``, ``expression``, ...). Boxes get +10% at the bottom."""
    r = Path(root)
    if scheme.num_points != 98:
        raise FabrecError("WFLW has 98 points: use --scheme 98")
    which = "train" if split == "train" else "test"
    if split not in ("train", "test") + WFLW_ATTRS:
        raise FabrecError(f"WFLW split must be train, test or one of {', '.join(WFLW_ATTRS)}")
    lists = sorted(r.rglob(f"list_98pt_rect_attr_{which}.txt"))
    if not lists:
        raise FabrecError(f"{r}: list_98pt_rect_attr_{which}.txt not found")
    img_root = r / "WFLW_images" if (r / "WFLW_images").is_dir() else r
    res = ReadResult()
    for i, line in enumerate(lists[0].read_text(encoding="utf-8").splitlines()):
        parts = line.split()
        if not parts:
            continue
        where = f"{lists[0]}:{i + 1}"
        if len(parts) != 196 + 4 + 6 + 1:
            res.problems.append(f"{where}: expected 207 fields, got {len(parts)}")
            continue
        try:
            vals = np.array([float(v) for v in parts[:206]])
        except ValueError:
            res.problems.append(f"{where}: non-numeric field")
            continue
        pts = vals[:196].reshape(98, 2)
        x0, y0, x1, y1 = vals[196:200]
        attrs = tuple(a for a, flag in zip(WFLW_ATTRS, vals[200:206]) if flag > 0)
        if not np.isfinite(vals).all() or x1 <= x0 or y1 <= y0:
            res.problems.append(f"{where}: non-finite values or empty box")
            continue
        if split in WFLW_ATTRS and split not in attrs:
            continue
        h = y1 - y0
        box = Box.from_xywh(x0, y0, x1 - x0, h * 1.10)
        res.samples.append(LandmarkSample(img_root / parts[206], pts, box, f"{parts[206]}#{i}", attrs))
    return res
