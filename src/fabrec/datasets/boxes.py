"""Face-box files made from landmark files, written as the generic ``path,x,y,w,h`` CSV (read
by :func:`fabrec.inputs.read_box_rows`, for training lists and ``fabrec predict --boxes``)."""

from __future__ import annotations

from pathlib import Path

from fabrec.datasets.pts import read_pts
from fabrec.errors import FabrecError
from fabrec.inputs import BoxRow
from fabrec.io import find_image, write_text_atomic
from fabrec.transforms import Box

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
