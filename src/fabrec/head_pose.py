"""Head pose (yaw, pitch, roll in degrees) from a face's 68 points: a fitted 3-D mean face
(``assets/mean_face_68.json``, ``benchmarks/fit_head_shape.py``) turned until its view matches
the points (OpenCV's PnP).

Angles follow AFLW2000-3D (the data the mean face was fitted on): in OpenCV's camera frame (x
right, y down, z forward) the head's rotation is R = Rx(-pitch) Ry(yaw) Rz(roll). Seen on the
photo, positive yaw turns the face towards the image's left... as the data set defines it;
positive roll turns it clockwise. Only the inner points (brows, eyes, nose, mouth: 17-67) are
used: the jaw line is where schemes disagree at large yaw (300-W marks the visible outline).
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

import cv2
import numpy as np

INNER = np.arange(17, 68)


class HeadPose(NamedTuple):
    """Yaw, pitch and roll in degrees (see the module docstring for the signs)."""

    yaw: float
    pitch: float
    roll: float


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """``(3, 3)`` R = Rx(-pitch) Ry(yaw) Rz(roll) from angles in degrees."""
    a, b, c = (math.radians(v) for v in (-pitch, yaw, roll))
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rx @ ry @ rz


def angles(r: np.ndarray) -> HeadPose:
    """The inverse of :func:`rotation`: ``(3, 3)`` -> :class:`HeadPose` in degrees."""
    b = math.asin(float(np.clip(r[0, 2], -1.0, 1.0)))
    a = math.atan2(-r[1, 2], r[2, 2])
    c = math.atan2(-r[0, 1], r[0, 0])
    return HeadPose(math.degrees(b), -math.degrees(a), math.degrees(c))


@lru_cache(maxsize=1)
def mean_face() -> np.ndarray:
    """The fitted 3-D mean face ``(68, 3)`` (outer-eye-corner distance 1)."""
    doc = json.loads(resources.files("fabrec").joinpath("assets", "mean_face_68.json").read_text())
    return np.asarray(doc["points"], np.float64)


def head_pose(points: np.ndarray, size: tuple[int, int]) -> HeadPose | None:
    """The head pose of a face's 68 points ``(68, 2)`` (image pixels) in a ``size`` (w, h)
    photo, or None when the points do not fit a head (PnP fails or the answer is not finite)."""
    p = np.asarray(points, np.float64)
    if p.shape != (68, 2) or not np.isfinite(p).all():
        return None
    w, h = size
    f = 10.0 * max(w, h)  # nearly orthographic, as the mean face was fitted
    cam = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]], np.float64)
    obj, img = mean_face()[INNER], p[INNER]
    eye = float(np.linalg.norm(p[36] - p[45])) or 1.0
    # start: frontal, at the depth where the mean face's eye distance matches the points'
    start_t = np.array([*(np.linalg.solve(cam, [*img.mean(0), 1.0])[:2] * f / eye), f / eye])
    ok, rvec, tvec = cv2.solvePnP(obj, img, cam, None, np.zeros((3, 1)), start_t.reshape(3, 1), True,
                                  cv2.SOLVEPNP_ITERATIVE)
    if not ok or not (np.isfinite(rvec).all() and np.isfinite(tvec).all()) or tvec[2, 0] <= 0:
        return None
    pose = angles(cv2.Rodrigues(rvec)[0])
    return pose if all(math.isfinite(v) for v in pose) else None
