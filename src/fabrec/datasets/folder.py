"""Plain folders of labelled images: same-stem .pts / labelme / point-JSON files, COCO keypoints files, or one CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from fabrec.datasets.coco import coco_samples, is_coco
from fabrec.datasets.labelme import is_labelme, labelme_points
from fabrec.datasets.pts import points_from_json, read_pts
from fabrec.datasets.samples import LandmarkSample, ReadResult, check_points
from fabrec.errors import FabrecError
from fabrec.io import find_image
from fabrec.schemes import Scheme


def read_folder(root: str | Path, scheme: Scheme) -> ReadResult:
    """Any folder (recursive) of images with same-stem annotation files -- iBUG ``.pts``,
    labelme ``.json`` (one point shape per landmark) or ``{"points": [[x, y], ...]}`` JSON --
    or holding COCO keypoints ``.json`` files (many images each), or one CSV
    ``path,x0,y0,x1,y1,...`` (0-based pixels, header optional)."""
    r = Path(root)
    if not r.is_dir():
        raise FabrecError(f"{r}: no such folder")
    res = ReadResult()
    csvs = sorted(r.glob("*.csv"))
    anns = sorted(p for p in r.rglob("*") if p.suffix.lower() in (".pts", ".json"))
    if not anns and len(csvs) == 1:
        return _read_points_csv(csvs[0], scheme)
    for a in anns:
        data = _load_json(a, res) if a.suffix.lower() == ".json" else None
        if a.suffix.lower() == ".json" and data is None:
            continue
        if is_coco(data):
            try:
                found, problems = coco_samples(data, a, scheme)
            except FabrecError as e:
                res.problems.append(str(e))
                continue
            res.problems += problems
            for img, pts, key in found:
                res.samples.append(LandmarkSample(img, pts, None, f"{a.relative_to(r)}/{key}"))
            continue
        img = find_image(a)
        if img is None:
            res.problems.append(f"{a}: no image with the same name")
            continue
        try:
            if a.suffix.lower() == ".pts":
                pts = read_pts(a)
            elif is_labelme(data):
                pts = labelme_points(data, scheme, str(a))
            else:
                pts = points_from_json(data, str(a))
            check_points(pts, scheme, str(a))
        except FabrecError as e:
            res.problems.append(str(e))
            continue
        res.samples.append(LandmarkSample(img, pts, None, str(img.relative_to(r))))
    if not res.samples:
        raise FabrecError(f"{r}: no annotated images found (.pts, labelme/COCO/points .json beside images, or one CSV)"
                          + (f"; first problem: {res.problems[0]}" if res.problems else ""))
    return res


def _load_json(path: Path, res: ReadResult) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        res.problems.append(f"{path}: cannot read JSON ({str(e)[:80]})")
        return None


def _read_points_csv(path: Path, scheme: Scheme) -> ReadResult:
    res = ReadResult()
    with open(path, newline="", encoding="utf-8") as f:
        rows = [row for row in csv.reader(f) if row]
    for i, row in enumerate(rows):
        try:
            vals = np.array([float(v) for v in row[1:]], np.float64)
        except ValueError:
            if i == 0:
                continue  # header
            res.problems.append(f"{path}:{i + 1}: non-numeric coordinates")
            continue
        if len(vals) != 2 * scheme.num_points or not np.isfinite(vals).all():
            res.problems.append(f"{path}:{i + 1}: expected {2 * scheme.num_points} finite numbers, got {len(vals)}")
            continue
        res.samples.append(LandmarkSample(path.parent / row[0], vals.reshape(-1, 2), None, row[0]))
    if not res.samples:
        raise FabrecError(f"{path}: no valid rows")
    return res


def read_folder_split(root: str | Path, split: str, scheme: Scheme) -> ReadResult:
    """The ``folder`` dataset: ``root/split`` when that sub-folder exists (and is not the
    default ``train``), else ``root`` itself."""
    sub = Path(root) / split if split not in ("", "train", ".") and (Path(root) / split).is_dir() else Path(root)
    return read_folder(sub, scheme)
