"""Head pose (yaw, pitch, roll in degrees) from a face's 68 points: a fitted 3-D mean face
(``assets/mean_face_68.json``, ``benchmarks/fit_head_shape.py``) turned until its view matches
the points (OpenCV's PnP).

Angles follow AFLW2000-3D (the data the mean face was fitted on): in OpenCV's camera frame (x
right, y down, z forward) the head's rotation is R = Rx(-pitch) Ry(yaw) Rz(roll). Seen on the
photo, positive yaw turns the face towards the image's left... as the data set defines it;
positive roll turns it clockwise. Only the inner points (brows, eyes, nose, mouth: 17-67) are
used: the jaw line is where schemes disagree at large yaw (300-W marks the visible outline).

A model file may hold a :class:`PoseCorrection` fitted for it (``benchmarks/head_pose_fit.py``):
a kernel ridge regression from the PnP angles and the points, both in the face's crop, to what
PnP gets wrong there on the training part of AFLW2000-3D (the mean face is rigid; the model's
points at large yaw are not quite the 3-D face's). :func:`face_pose` applies it in the crop's
frame and turns the answer back by the crop's roll, so a face found turned keeps its correction.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources
from dataclasses import dataclass
from typing import Any, NamedTuple

import cv2
import numpy as np

from fabrec.errors import FabrecError

CORRECTION_FORMAT = "fabrec-head-pose-correction/1"
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


def turned(pose: HeadPose, degrees: float) -> HeadPose:
    """A pose seen in a frame turned by ``degrees`` in the picture's plane: Rz(degrees) R."""
    c = math.radians(degrees)
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return angles(rz @ rotation(*pose))


def yaw_in_crop(pose: HeadPose, crop_roll: float) -> float:
    """The yaw (degrees) of a face's head ``pose`` (the photo's frame) seen in the frame of the
    crop it was found in, turned by ``crop_roll`` radians: how far the head turns from the
    camera, whatever the photo's orientation."""
    return float(pose[0]) if crop_roll == 0.0 else float(turned(pose, -math.degrees(crop_roll))[0])


def pose_features(poses: np.ndarray, crop_points: np.ndarray) -> np.ndarray:
    """PnP angles ``(N, 3)`` (degrees, in the crop) and the 68 points in the crop ``(N, 68, 2)``
    -> the correction's inputs ``(N, 15 + 136)``: low-order products of the angles (in units of
    90 degrees) and the points centred and scaled to unit RMS radius."""
    y, p, r = (np.asarray(poses, np.float64) / 90.0).T
    ay = np.abs(y)
    angle_terms = np.stack([y, p, r, ay, y * p, y * r, p * r, ay * p, ay * r, ay * y, p * p, r * r,
                            ay * ay * p, ay * ay * r, y ** 3], 1)
    d = np.asarray(crop_points, np.float64)
    d = d - d.mean(1, keepdims=True)
    d = d / np.sqrt((d ** 2).sum((1, 2)) / d.shape[1])[:, None, None]
    return np.concatenate([angle_terms, d.reshape(len(d), -1)], 1)


@dataclass(frozen=True)
class PoseCorrection:
    """What PnP gets wrong for one model's points, as a kernel ridge regression (RBF kernel).

    Attributes:
        support: ``(M, D)`` the fitting faces' standardised features (:func:`pose_features`).
        alpha: ``(M, 3)`` their dual weights (yaw, pitch, roll, degrees).
        offset: ``(3,)`` the mean correction (what a face unlike every fitting face gets).
        mean, scale: ``(D,)`` feature standardisation.
        gamma: kernel width: k(a, b) = exp(-gamma * |a - b|^2 / D).
        measured: how it was fitted and what it measured (for people; not used).
    """

    support: np.ndarray
    alpha: np.ndarray
    offset: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    gamma: float
    measured: dict[str, Any]

    def residual(self, features: np.ndarray) -> np.ndarray:
        """``(N, 3)`` corrections (degrees) for features ``(N, D)``."""
        z = (np.asarray(features, np.float64) - self.mean) / self.scale
        d2 = (z ** 2).sum(1)[:, None] + (self.support ** 2).sum(1)[None] - 2.0 * z @ self.support.T
        return np.exp(-self.gamma * np.maximum(d2, 0.0) / z.shape[1]) @ self.alpha + self.offset

    def to_dict(self) -> dict[str, Any]:
        return {"format": CORRECTION_FORMAT, "gamma": self.gamma, "offset": self.offset.tolist(),
                "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "support": np.round(self.support, 5).tolist(), "alpha": np.round(self.alpha, 5).tolist(),
                "measured": self.measured}

    @staticmethod
    def from_dict(d: dict[str, Any], where: str = "head-pose correction") -> PoseCorrection:
        try:
            if d.get("format") != CORRECTION_FORMAT:
                raise ValueError(f"format is not {CORRECTION_FORMAT}")
            sup, al, off, m, s = (np.asarray(d[k], np.float64) for k in ("support", "alpha", "offset", "mean", "scale"))
            if not (sup.ndim == 2 and al.shape == (len(sup), 3) and off.shape == (3,)
                    and m.shape == s.shape == (sup.shape[1],) and (s > 0).all()):
                raise ValueError("support (M, D), alpha (M, 3), offset (3,), mean and scale (D,) with scale > 0")
            return PoseCorrection(sup, al, off, m, s, float(d["gamma"]), dict(d.get("measured", {})))
        except (KeyError, TypeError, ValueError) as e:
            raise FabrecError(f"{where}: not a head-pose correction ({e})") from None


def fit_correction(features: np.ndarray, residuals: np.ndarray, lam: float, gamma: float,
                   measured: dict[str, Any] | None = None) -> PoseCorrection:
    """Kernel ridge regression of ``residuals (N, 3)`` (truth minus PnP, degrees) on
    ``features (N, D)`` (:func:`pose_features`), ridge ``lam``, kernel width ``gamma``."""
    f, t = np.asarray(features, np.float64), np.asarray(residuals, np.float64)
    mean, scale = f.mean(0), f.std(0) + 1e-6
    z = (f - mean) / scale
    offset = t.mean(0)
    d2 = (z ** 2).sum(1)[:, None] + (z ** 2).sum(1)[None] - 2.0 * z @ z.T
    k = np.exp(-gamma * np.maximum(d2, 0.0) / z.shape[1])
    alpha = np.linalg.solve(k + lam * np.eye(len(z)), t - offset)
    return PoseCorrection(z, alpha, offset, mean, scale, float(gamma), dict(measured or {}))


def face_pose(points: np.ndarray, size: tuple[int, int], crop_points: np.ndarray, crop_size: int,
              crop_roll: float, correction: PoseCorrection | None) -> HeadPose | None:
    """The head pose of a face: its 68 points ``(68, 2)`` in a ``size`` (w, h) photo, and the
    same points in its crop ``(68, 2)`` (``crop_size`` pixels, turned by ``crop_roll`` radians
    from the photo). Without a correction, :func:`head_pose` of the photo's points; with one,
    PnP in the crop, corrected there, turned back into the photo's frame."""
    if correction is None:
        return head_pose(points, size)
    pose = head_pose(crop_points, (crop_size, crop_size))
    if pose is None:
        return None
    fixed = np.asarray(pose) + correction.residual(pose_features(np.asarray([pose]), np.asarray([crop_points])))[0]
    out = turned(HeadPose(*map(float, fixed)), math.degrees(crop_roll))
    return out if all(math.isfinite(v) for v in out) else None
