"""Face-box files: the generic ``path,x,y,w,h`` CSV (one reader for training lists and for
``fabrec predict --boxes``) and boxes made from landmark files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from fabrec.datasets.pts import read_pts
from fabrec.errors import FabrecError
from fabrec.io import find_image, write_text_atomic
from fabrec.transforms import Box

BoxRow = tuple[str, tuple[float, float, float, float]]


def read_box_rows(path: str | Path) -> tuple[list[BoxRow], list[int]]:
    """Rows ``path,x,y,w,h`` (an optional ``path,...`` header, ``#`` comments) -> (good rows,
    1-based line numbers of malformed rows: not four finite numbers, or w / h not positive)."""
    p = Path(path)
    try:
        with open(p, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise FabrecError(f"{p}: cannot read box file ({e})") from None
    good: list[BoxRow] = []
    bad: list[int] = []
    for i, r in enumerate(rows, start=1):
        if not r or r[0].startswith("#") or (not good and not bad and r[0].strip().lower() == "path"):
            continue
        try:
            x, y, w, h = (float(v) for v in r[1:5])
        except (ValueError, IndexError):
            bad.append(i)
            continue
        if len(r) < 5 or w <= 0 or h <= 0 or not np.isfinite([x, y, w, h]).all():
            bad.append(i)
            continue
        good.append((r[0], (x, y, w, h)))
    return good, bad


def boxes_from_landmarks(folder: str | Path, top: float, bottom: float) -> tuple[list[BoxRow], list[str]]:
    """One box per ``.pts`` file under ``folder`` whose image has the same stem: the landmark
    extent grown ``top`` above and ``bottom`` below, squared. Returns (rows with absolute image
    paths, problems)."""
    root = Path(folder)
    if not root.is_dir():
        raise FabrecError(f"{root}: no such folder")
    rows: list[BoxRow] = []
    problems: list[str] = []
    for pts in sorted(root.rglob("*.pts")):
        img = find_image(pts)
        if img is None:
            problems.append(f"{pts}: no image with the same name")
            continue
        try:
            rows.append((str(img.resolve()), Box.from_landmarks(read_pts(pts), top, bottom).to_xywh()))
        except FabrecError as e:
            problems.append(str(e))
    if not rows:
        raise FabrecError(f"{root}: no .pts files with a same-stem image")
    return rows, problems


def write_box_csv(path: str | Path, rows: list[BoxRow]) -> None:
    """Write rows as a generic box CSV (atomic)."""
    body = "".join(f"{p},{x:.2f},{y:.2f},{w:.2f},{h:.2f}\n" for p, (x, y, w, h) in rows)
    write_text_atomic(path, "path,x,y,w,h\n" + body)
