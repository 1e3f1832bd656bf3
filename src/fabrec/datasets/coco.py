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


def coco_doc(entries: list[tuple[str, int, int, list[list[float] | None]]], names: list[str] | tuple[str, ...],
             category: str = "face") -> dict[str, Any]:
    """A COCO keypoints document from ``(file_name, width, height, points)`` per image (points
    in the scheme's order, 0-based ``[x, y]`` or None: written as ``0, 0, 0``, unlabelled);
    one annotation per image with at least one point, its ``bbox`` the points' extent."""
    images, anns = [], []
    for i, (file_name, w, h, pts) in enumerate(entries, start=1):
        images.append({"id": i, "file_name": file_name, "width": int(w), "height": int(h)})
        placed = [q for q in pts if q is not None]
        if not placed:
            continue
        kp = [v for q in pts for v in ((round(q[0], 3), round(q[1], 3), 2) if q is not None else (0, 0, 0))]
        a = np.asarray(placed, np.float64)
        (x0, y0), (x1, y1) = a.min(0), a.max(0)
        anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1, "keypoints": kp,
                     "num_keypoints": len(placed), "iscrowd": 0,
                     "bbox": [round(float(x0), 3), round(float(y0), 3), round(float(x1 - x0), 3), round(float(y1 - y0), 3)],
                     "area": round(float((x1 - x0) * (y1 - y0)), 3)})
    return {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": category, "keypoints": list(names), "skeleton": []}]}
