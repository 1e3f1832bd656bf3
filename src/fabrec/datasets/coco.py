"""COCO keypoints annotation files: one JSON holding many images and annotations.

``{"images": [{"id", "file_name", ...}], "annotations": [{"image_id", "keypoints":
[x1, y1, v1, ...], ...}], "categories": [{"keypoints": [names], ...}]}``. COCO keypoints are
0-based pixel indices, read as fabrec's 0-based pixel centres unchanged. ``v = 0`` marks an
unlabelled point: such an annotation is skipped and reported (fabrec trains on complete
annotations). Images are looked up relative to the JSON file's folder, then in ``images/``
beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fabrec.errors import FabrecError
from fabrec.schemes import Scheme


def is_coco(data: Any) -> bool:
    """True for a parsed COCO keypoints document."""
    return isinstance(data, dict) and isinstance(data.get("images"), list) and isinstance(data.get("annotations"), list)


def coco_samples(data: dict[str, Any], path: Path, scheme: Scheme) -> tuple[list[tuple[Path, np.ndarray, str]], list[str]]:
    """``([(image, points (K, 2), key)], problems)`` for every complete annotation."""
    cats = data.get("categories") or []
    names = next((c.get("keypoints") for c in cats if isinstance(c, dict) and c.get("keypoints")), None)
    order = list(range(scheme.num_points))
    if names is not None:
        if len(names) != scheme.num_points:
            raise FabrecError(f"{path}: categories list {len(names)} keypoints, scheme {scheme.name} has {scheme.num_points}")
        if set(names) == set(scheme.names):
            order = [list(names).index(n) for n in scheme.names]  # file order -> scheme order
    images = {}
    for im in data["images"]:
        try:
            images[im["id"]] = str(im["file_name"])
        except (KeyError, TypeError):
            raise FabrecError(f"{path}: an image entry without id / file_name") from None
    out: list[tuple[Path, np.ndarray, str]] = []
    problems: list[str] = []
    counts: dict[Any, int] = {}
    for n, ann in enumerate(data["annotations"]):
        where = f"{path}: annotation {n}"
        try:
            kp = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
            file_name = images[ann["image_id"]]
        except (KeyError, TypeError, ValueError):
            problems.append(f"{where}: no keypoints / unknown image_id")
            continue
        if len(kp) != scheme.num_points:
            problems.append(f"{where}: {len(kp)} keypoints, scheme {scheme.name} needs {scheme.num_points}")
            continue
        if (kp[:, 2] <= 0).any() or not np.isfinite(kp).all():
            problems.append(f"{where}: {int((kp[:, 2] <= 0).sum())} unlabelled keypoint(s), skipped")
            continue
        img = path.parent / file_name
        if not img.exists():
            img = path.parent / "images" / file_name
        if not img.exists():
            problems.append(f"{where}: image {file_name} not found")
            continue
        k = counts[file_name] = counts.get(file_name, 0) + 1
        out.append((img, kp[order, :2], f"{file_name}#{k}"))
    return out, problems
