"""Geometry: one 3x3 affine matrix moves an image and its landmarks together.

Coordinates are 0-based pixel centres (pixel ``(0, 0)`` is centred at ``(0.0, 0.0)``), the
convention of OpenCV's ``warpAffine``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from fabrec.config import AugmentConfig

_BORDERS = {
    "constant": cv2.BORDER_CONSTANT,
    "reflect": cv2.BORDER_REFLECT_101,
    "replicate": cv2.BORDER_REPLICATE,
}


@dataclass(frozen=True)
class Box:
    """A square face crop: centre ``(cx, cy)`` in pixel-centre coordinates, ``side`` and
    ``angle``, the face's roll in the image in radians (the crop's x axis points along
    ``(cos angle, sin angle)``; 0 = an axis-aligned crop). The crop is made upright: a face
    rolled by ``angle`` appears level in it."""

    cx: float
    cy: float
    side: float
    angle: float = 0.0

    @staticmethod
    def from_xywh(x: float, y: float, w: float, h: float) -> Box:
        """Square (side = max(w, h), same centre) around the rectangle at ``(x, y)``, ``w x h``.

        ``x, y`` is the first pixel column / row inside the box, as box files give it
        (so the centre is ``x + (w - 1) / 2``).
        """
        return Box(x + w / 2.0 - 0.5, y + h / 2.0 - 0.5, float(max(w, h)))

    @staticmethod
    def from_landmarks(points: np.ndarray, top: float = 0.25, bottom: float = 0.15) -> Box:
        """Square face box from landmarks ``(K, 2)``: extend the extent by ``top``*h above and
        ``bottom``*h below (the notes' rule for data without boxes), then square it."""
        pts = points[np.isfinite(points).all(1)]
        x0, y0 = pts.min(0)
        x1, y1 = pts.max(0)
        h = y1 - y0
        y0, y1 = y0 - top * h, y1 + bottom * h
        return Box((x0 + x1) / 2.0, (y0 + y1) / 2.0, float(max(x1 - x0, y1 - y0)))

    @staticmethod
    def from_extent(cx: float, cy: float, w: float, h: float, angle: float, top: float, bottom: float) -> Box:
        """The crop around a landmark extent ``w x h`` centred at ``(cx, cy)`` and rolled by
        ``angle`` (its own axes): grown ``top * h`` above and ``bottom * h`` below, squared."""
        shift = (top - bottom) * h / 2.0  # the grown box's centre moves up the face's own y axis
        c, s = math.cos(angle), math.sin(angle)
        return Box(cx + s * shift, cy - c * shift, float(max(w, h * (1.0 + top + bottom))), angle)

    def overlap(self, x0: float, y0: float, x1: float, y1: float) -> float:
        """Area of this box (as an axis-aligned square) inside the rectangle ``[x0, x1] x [y0, y1]``."""
        r = self.side / 2
        ix = max(0.0, min(self.cx + r, x1) - max(self.cx - r, x0))
        iy = max(0.0, min(self.cy + r, y1) - max(self.cy - r, y0))
        return ix * iy

    def inside(self, w: int, h: int) -> float:
        """Share of this box's area inside a ``w x h`` image."""
        return self.overlap(-0.5, -0.5, w - 0.5, h - 0.5) / (self.side * self.side)

    def iou(self, other: Box) -> float:
        """Intersection over union with another box (both as axis-aligned squares)."""
        r = other.side / 2
        inter = self.overlap(other.cx - r, other.cy - r, other.cx + r, other.cy + r)
        return inter / (self.side**2 + other.side**2 - inter) if inter > 0 else 0.0

    @staticmethod
    def from_landmarks_rolled(points: np.ndarray, angle: float, top: float, bottom: float) -> Box:
        """:meth:`from_landmarks` measured in a frame rolled by ``angle`` (the landmarks' extent
        along the face's own axes); identical to it for ``angle == 0``."""
        if angle == 0.0:
            return Box.from_landmarks(points, top, bottom)
        c, s = math.cos(angle), math.sin(angle)
        pts = points[np.isfinite(points).all(1)]
        u = pts @ np.array([[c, -s], [s, c]])  # coordinates along the rolled axes
        (u0, v0), (u1, v1) = u.min(0), u.max(0)
        mu, mv = (u0 + u1) / 2.0, (v0 + v1) / 2.0
        return Box.from_extent(c * mu - s * mv, s * mu + c * mv, u1 - u0, v1 - v0, angle, top, bottom)

    def to_xywh(self) -> tuple[float, float, float, float]:
        """Top-left edge and size, the inverse of :meth:`from_xywh` for a square."""
        return (self.cx + 0.5 - self.side / 2, self.cy + 0.5 - self.side / 2, self.side, self.side)


def crop_matrix(box: Box, size: int) -> np.ndarray:
    """3x3 matrix mapping source pixel coords to the ``size x size`` crop of ``box``."""
    k = size / box.side
    c = (size - 1) / 2.0
    if box.angle == 0.0:
        return np.array([[k, 0, c - k * box.cx], [0, k, c - k * box.cy], [0, 0, 1]], np.float64)
    co, si = k * math.cos(box.angle), k * math.sin(box.angle)  # rotate by -angle, then scale
    return np.array([[co, si, c - co * box.cx - si * box.cy], [-si, co, c + si * box.cx - co * box.cy], [0, 0, 1]],
                    np.float64)


def augment_matrix(rng: np.random.Generator, size: int, cfg: AugmentConfig) -> tuple[np.ndarray, bool]:
    """Random affine (about the crop centre) in crop coordinates, and whether it flips.

    Rotation uniform in ``±rotate`` degrees, scale in ``[scale_min, scale_max]``, translation
    ``±translate * size`` per axis, shear ``±shear`` degrees, horizontal flip with ``p = flip``.
    """
    c = (size - 1) / 2.0
    flip = bool(rng.random() < cfg.flip)
    ang = math.radians(rng.uniform(-cfg.rotate, cfg.rotate))
    s = rng.uniform(cfg.scale_min, cfg.scale_max)
    sh = math.tan(math.radians(rng.uniform(-cfg.shear, cfg.shear)))
    tx, ty = rng.uniform(-cfg.translate, cfg.translate, 2) * size
    to_c = np.array([[1, 0, -c], [0, 1, -c], [0, 0, 1]], np.float64)
    back = np.array([[1, 0, c + tx], [0, 1, c + ty], [0, 0, 1]], np.float64)
    rot = np.array([[math.cos(ang), -math.sin(ang), 0], [math.sin(ang), math.cos(ang), 0], [0, 0, 1]])
    shear = np.array([[1, sh, 0], [0, 1, 0], [0, 0, 1]], np.float64)
    scale = np.diag([s, s, 1.0])
    flip_m = np.array([[-1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float64) if flip else np.eye(3)
    return back @ rot @ shear @ scale @ flip_m @ to_c, flip


def warp(image: np.ndarray, matrix: np.ndarray, size: int, border: str = "constant") -> np.ndarray:
    """Apply source->crop ``matrix`` (3x3) to ``image (H, W, C)`` giving ``(size, size, C)``.

    Large reductions first shrink the source with area averaging, so crops do not alias.
    """
    m = matrix.astype(np.float64)
    scale = math.sqrt(abs(np.linalg.det(m[:2, :2])))
    if scale < 0.5:
        f = min(1.0, 2.0 * scale)
        h, w = image.shape[:2]
        nw, nh = max(1, round(w * f)), max(1, round(h * f))
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        fx, fy = nw / w, nh / h
        # pixel-centre mapping of the resize: q = (p + 0.5) * f - 0.5
        down = np.array([[fx, 0, 0.5 * fx - 0.5], [0, fy, 0.5 * fy - 0.5], [0, 0, 1]])
        m = m @ np.linalg.inv(down)
    return cv2.warpAffine(
        image, m[:2], (size, size), flags=cv2.INTER_LINEAR, borderMode=_BORDERS[border],
        borderValue=0,
    )


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 3x3 affine ``matrix`` to points ``(..., 2)``."""
    return points @ matrix[:2, :2].T + matrix[:2, 2]


def crop_to_image(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Crop-pixel points ``(..., K, 2)`` back to the original image through the inverse of the
    original -> crop affine ``matrix (..., 3, 3)``."""
    inv = np.linalg.inv(np.asarray(matrix, np.float64))
    return np.einsum("...ij,...kj->...ki", inv[..., :2, :2], points) + inv[..., None, :2, 2]


def occlude(rng: np.random.Generator, image: np.ndarray, max_frac: float = 0.4) -> np.ndarray:
    """Paint one random rectangle (10%..``max_frac`` of each side) with uniform noise."""
    h, w = image.shape[:2]
    rh = int(rng.uniform(0.1, max_frac) * h)
    rw = int(rng.uniform(0.1, max_frac) * w)
    y = int(rng.integers(0, h - rh + 1))
    x = int(rng.integers(0, w - rw + 1))
    out = image.copy()
    out[y : y + rh, x : x + rw] = rng.integers(0, 256, (rh, rw, image.shape[2]), dtype=np.uint8)
    return out
