"""Face and non-face crops from real photos, as ``fabrec predict`` makes them, for fitting and
measuring the face filter (``benchmarks/face_filter.py``).

Faces: the annotated face of each photo where YuNet (score >= 0.3, upright) finds it (a
detection whose centre lies inside the face's 68-point extent), cropped by the model's framing;
and UTKFace chips (the face fills the photo).

Non-faces, from the same photos: the strips left and right of the face (past its 68-point
extent by 30 % of its width) and below the chin (past the extent by 35 % of its height), where
at least 64 x 64 px; in each strip every YuNet detection down to score 0.3 (what would reach
the filter) and random squares (48 px up to the strip's short side), leaving out crops that
touch another person's face (a YuNet detection of the whole photo scoring 0.85 or more) or reach
past the photo's edge by more than 10 % (a person cut off by the edge). Strips can still hold
part of a face: ``face_filter.py`` shows the non-faces the filter accepts, to
look at.

Parts (stable by name): AFLW2000-3D's photos split by a hash of ``aflw2000/<stem>`` (30 %
held out, :func:`aflw_held_out`); HELEN-train for fitting, AFW for measuring; UTKFace chips by a
hash of their file name (30 % held out).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aflw_parts import HELD_OUT_PERMILLE, aflw_held_out  # noqa: F401  (re-exported for the other scripts)

from fabrec.splits import is_validation
from fabrec.datasets.pts import read_pts
from fabrec.io import read_image
from fabrec.predict import LandmarkPredictor, Region
from fabrec.transforms import Box


@dataclass
class Photo:
    """A photo with one annotated face: where it comes from, its pixels, points, |yaw| (or None)."""

    source: str
    name: str
    rgb: np.ndarray
    points: np.ndarray | None
    yaw: float | None = None


def photos(shared: Path, source: str, held_out: bool) -> Iterator[Photo]:
    """``helen`` (fitting only), ``afw`` (measuring only), ``aflw`` or ``utk`` photos of a part."""
    if source in ("helen", "afw"):
        if held_out != (source == "afw"):
            return
        folder = shared / "300w" / ("helen/trainset" if source == "helen" else "afw")
        for jpg in sorted(folder.glob("*.jpg")):
            yield Photo(source, jpg.stem, read_image(jpg), read_pts(jpg.with_suffix(".pts")))
    elif source == "aflw":
        import json

        poses = json.loads((shared / "aflw2000" / "poses.json").read_text())
        for jpg in sorted((shared / "aflw2000").glob("*.jpg")):
            if aflw_held_out(jpg.stem) == held_out:
                yield Photo(source, jpg.stem, read_image(jpg), read_pts(jpg.with_suffix(".pts")),
                            abs(float(poses[jpg.stem]["yaw"])))
    elif source == "utk":
        for jpg in sorted((shared / "utkface").rglob("*.jpg")):
            if is_validation(f"utkface/{jpg.name}", HELD_OUT_PERMILLE) == held_out:
                yield Photo(source, jpg.name, read_image(jpg), None)
    else:
        raise ValueError(source)


def face_region(pred: LandmarkPredictor, photo: Photo) -> Region | None:
    """The detection of the photo's annotated face (the best-scoring one whose centre lies in the
    points' extent; for a UTKFace chip, the best-scoring one), or None where YuNet misses it."""
    regions = pred.crops_for(photo.rgb, None)
    if photo.points is not None:
        (x0, y0), (x1, y1) = photo.points.min(0), photo.points.max(0)
        regions = [r for r in regions if x0 <= r.box[0] + r.box[2] / 2 <= x1 and y0 <= r.box[1] + r.box[3] / 2 <= y1]
    return max(regions, key=lambda r: r.score) if regions else None


def strips(photo: Photo) -> list[tuple[np.ndarray, tuple[int, int]]]:
    """The face-free strips of a photo (see the module docstring), each with its top-left corner
    ``(x, y)`` in the photo."""
    if photo.points is None:
        return []
    img = photo.rgb
    (x0, y0), (x1, y1) = photo.points.min(0), photo.points.max(0)
    gx, gy = 0.3 * (x1 - x0), 0.35 * (y1 - y0)
    h, w = img.shape[:2]
    a, b, c = max(0, int(x0 - gx)), min(w, int(np.ceil(x1 + gx))), min(h, int(np.ceil(y1 + gy)))
    out = [(img[:, :a], (0, 0)), (img[:, b:], (b, 0)), (img[c:, :], (0, c))]
    return [(np.ascontiguousarray(s), o) for s, o in out if s.shape[0] >= 64 and s.shape[1] >= 64]


def other_faces(pred: LandmarkPredictor, photo: Photo, min_score: float = 0.85) -> list[tuple[float, float, float, float]]:
    """Boxes ``(x, y, w, h)`` of the photo's other people: YuNet detections scoring at least
    ``min_score`` (real faces score 0.85-1.0 there; the prints and patterns it takes for faces,
    0.3-0.8) -- non-face crops touching one are left out."""
    return [r.box for r in pred.crops_for(photo.rgb, None) if r.score >= min_score]


def _touches(crop: Box, off: tuple[int, int], boxes: list[tuple[float, float, float, float]]) -> bool:
    cx, cy, r = crop.cx + off[0], crop.cy + off[1], crop.side / 2
    return any(cx - r < x + w and x < cx + r and cy - r < y + h and y < cy + r for x, y, w, h in boxes)


def _inside_photo(crop: Box, off: tuple[int, int], size: tuple[int, int]) -> float:
    """Share of a strip crop's square inside the photo (``size``: width, height)."""
    cx, cy, r = crop.cx + off[0], crop.cy + off[1], crop.side / 2
    ix = max(0.0, min(cx + r, size[0]) - max(cx - r, 0.0))
    iy = max(0.0, min(cy + r, size[1]) - max(cy - r, 0.0))
    return ix * iy / crop.side ** 2


def non_face_regions(pred: LandmarkPredictor, strip: np.ndarray, off: tuple[int, int],
                     others: list[tuple[float, float, float, float]], rng: np.random.Generator,
                     randoms: int = 1, photo_size: tuple[int, int] = (1 << 30, 1 << 30)) -> list[Region]:
    """Every detection in a face-free strip and ``randoms`` random squares there, leaving out
    those touching another person's face (:func:`other_faces`) and those reaching past the
    photo's edge by more than 10 % (where a person cut off by the edge shows an eye or an ear
    that no detector sees as a face)."""
    h, w = strip.shape[:2]
    regs = pred.crops_for(strip, None)
    for _ in range(randoms):
        s = int(rng.integers(48, min(h, w) + 1))
        x, y = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
        regs.append(Region((x, y, s, s), Box.from_xywh(x, y, s, s), "random"))
    return [r for r in regs if not _touches(r.crop, off, others) and _inside_photo(r.crop, off, photo_size) >= 0.9]
