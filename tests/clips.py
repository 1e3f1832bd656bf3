"""Synthetic video clips of real faces with known points, for the tracker's tests and
``benchmarks/video_cuts.py``.

A clip is a list of RGB frames and, per frame, the true points of the visible face (or None).
Faces are 300-W photos (HELEN-train, 68 points) scaled so their points' extent is ``face_px``,
pasted with a feathered elliptical mask on a heavily blurred photo, and moved by a schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fabrec.datasets.pts import read_pts
from fabrec.io import read_image


@dataclass
class Face:
    """A face patch ``(P, P, 3)`` uint8, its soft mask ``(P, P)`` in [0, 1] and its points
    ``(68, 2)`` in patch pixels."""

    patch: np.ndarray
    mask: np.ndarray
    points: np.ndarray


def load_face(jpg: Path, face_px: float = 145.0, margin: float = 1.6) -> Face:
    """A 300-W photo's face scaled to a points extent of ``face_px``, cut to a square of
    ``margin`` x that extent around the points' centre."""
    img = read_image(jpg)
    pts = read_pts(jpg.with_suffix(".pts"))
    ext = float(max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1])))
    s = face_px / ext
    c = (pts.min(0) + pts.max(0)) / 2
    side = int(round(margin * face_px))
    m = np.array([[s, 0, side / 2 - s * c[0]], [0, s, side / 2 - s * c[1]]], np.float64)
    patch = cv2.warpAffine(img, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float64)
    r = np.hypot((xx - side / 2) / (0.46 * side), (yy - side / 2) / (0.5 * side))
    mask = np.clip((1.0 - r) / 0.12, 0.0, 1.0)
    return Face(patch, mask, pts * s + m[:, 2])


def background(jpg: Path, size: tuple[int, int] = (480, 360), blur: float = 15.0) -> np.ndarray:
    """A photo resized to ``size`` (w, h) and blurred (Gaussian sigma ``blur``)."""
    img = cv2.resize(read_image(jpg), size, interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(img, (0, 0), blur)


def paste(canvas: np.ndarray, face: Face, x: float, y: float) -> np.ndarray:
    """``face`` with its patch's top-left at integer ``(x, y)``; returns the points in frame pixels."""
    x, y = int(round(x)), int(round(y))
    h, w = canvas.shape[:2]
    p = face.patch.shape[0]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + p), min(h, y + p)
    if x1 > x0 and y1 > y0:
        a = face.mask[y0 - y:y1 - y, x0 - x:x1 - x, None]
        src = face.patch[y0 - y:y1 - y, x0 - x:x1 - x].astype(np.float64)
        canvas[y0:y1, x0:x1] = (a * src + (1 - a) * canvas[y0:y1, x0:x1]).round().astype(np.uint8)
    return face.points + np.array([x, y], np.float64)


def helen_files(shared: Path) -> list[Path]:
    return sorted((shared / "300w" / "helen" / "trainset").glob("*.jpg"))


Placement = tuple[int, float, float]  # (face index, x, y of its patch's top-left), or None: no face


def compose(shared: Path, schedule: list[Placement | None], faces: tuple[int, ...] = (0, 1), bg: int = 2,
            size: tuple[int, int] = (480, 360)) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """Frames of HELEN-train faces ``faces`` (indices into the sorted file list) on a blurred
    photo (index ``bg``), one frame per ``schedule`` entry. Returns the frames and each frame's
    true points ``(68, 2)``, None where no face is shown or under half its points are inside."""
    files = helen_files(shared)
    loaded = [load_face(files[i]) for i in faces]
    base = background(files[bg], size)
    frames, truth = [], []
    for place in schedule:
        canvas = base.copy()
        pts = None
        if place is not None:
            k, x, y = place
            pts = paste(canvas, loaded[k], x, y)
            inside = (pts[:, 0] >= 0) & (pts[:, 0] < size[0]) & (pts[:, 1] >= 0) & (pts[:, 1] < size[1])
            pts = pts if inside.mean() >= 0.5 else None
        frames.append(canvas)
        truth.append(pts)
    return frames, truth


def sweep(t: int, speed: float = 6.0, lo: float = 20.0, hi: float = 228.0) -> float:
    """A patch's x at frame ``t``, moving ``speed`` px a frame back and forth between lo and hi."""
    span = hi - lo
    u = (speed * t) % (2 * span)
    return lo + (u if u <= span else 2 * span - u)


def cut_clip(shared: Path, drop: float = 0.5, frames: int = 60, cut_at: int = 30, speed: float = 6.0,
             faces: tuple[int, int] = (0, 1), bg: int = 2) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """The clip a user's video crashed on: a face (points extent 145 px) sweeping ``speed`` px a
    frame across a blurred photo (480x360), then at ``cut_at`` a hard cut to another face
    ``drop`` face heights lower (0: the same place), sweeping on. Returns the frames and each
    frame's true points ``(68, 2)``."""
    sched: list[Placement | None] = [(0 if t < cut_at else 1, sweep(t, speed), 20 + (0 if t < cut_at else drop * 145))
                                     for t in range(frames)]
    return compose(shared, sched, faces, bg)


def frame_nme(points: np.ndarray | None, truth: np.ndarray | None) -> float:
    """Bounding-box NME of one frame's points (inf when a visible face got no points, or points
    were reported where there is no face; 0 when both are absent)."""
    if truth is None:
        return 0.0 if points is None else float("inf")
    if points is None:
        return float("inf")
    norm = float(np.sqrt(np.ptp(truth[:, 0]) * np.ptp(truth[:, 1])))
    return float(np.linalg.norm(points - truth, axis=1).mean() / norm)
