"""The shared AFLW2000-3D half's parts and yaw bins, light (no PyTorch): the held-out 30 % by a
stable hash of ``aflw2000/<stem>`` (``fabrec.splits.is_validation``), the |yaw| bins every
pose table uses, and how a found face is matched to the annotated one."""

from __future__ import annotations

from typing import Any

import numpy as np

from fabrec.splits import is_validation

HELD_OUT_PERMILLE = 300
BINS = ((0, 30), (30, 60), (60, 90))


def aflw_held_out(stem: str) -> bool:
    """Whether an AFLW2000-3D photo is in the held-out part (about 30 %, stable by name)."""
    return is_validation(f"aflw2000/{stem}", HELD_OUT_PERMILLE)


def bin_of(yaw: float) -> str:
    """The |yaw| bin of a pose, ``"0-30"``, ``"30-60"`` or ``"60-90"`` (90 and past in the last)."""
    a = abs(yaw)
    return next(f"{lo}-{hi}" for lo, hi in BINS if a < hi or hi == 90)


def match(faces: list[Any], truth: np.ndarray, points: Any = lambda f: f["points"]) -> Any | None:
    """The found face (of ``faces``; ``points(face)`` gives its ``(68, 2)`` points) matching the
    annotated points ``truth (68, 2)``: its points' centre inside the annotation's extent grown
    by half its size each way, the nearest to the annotation's centre if several; or None."""
    (x0, y0), (x1, y1) = truth.min(0), truth.max(0)
    gx, gy = (x1 - x0) / 2, (y1 - y0) / 2
    centres = [np.mean(points(f), 0) for f in faces]
    inside = [(f, c) for f, c in zip(faces, centres) if x0 - gx <= c[0] <= x1 + gx and y0 - gy <= c[1] <= y1 + gy]
    c0 = truth.mean(0)
    return min(inside, key=lambda fc: float(np.linalg.norm(fc[1] - c0)))[0] if inside else None
