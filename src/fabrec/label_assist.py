"""Suggested points for a label project's next photo, before it has a model of its own.

The bundled 68-point model finds the 300-W points on any face; a new scheme's points are, to a
first approximation, fixed combinations of them. From the project's labelled photos,
:func:`fit_mapping` learns each new point as a weighted sum of the 68 in a frame normalised by
the face (centred on the 68 points' mean, scaled by their spread, rolled level by the eyes),
pulled towards the nearest of the 68 points when there are few photos (ridge towards that
start). :func:`map_points` applies it to the 68 points found on a new photo.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fabrec.errors import FabrecError

RIDGE = 1.0  # pull towards the nearest-point start, in units of one labelled photo's weight


def _frame(p68: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Centre ``(2,)``, scale and roll (radians) of a face's 68 points ``(68, 2)``."""
    c = p68.mean(0)
    s = float(np.sqrt(((p68 - c) ** 2).sum(1).mean())) or 1.0
    d = p68[42:48].mean(0) - p68[36:42].mean(0)  # image-left eye -> image-right eye
    return c, s, math.atan2(d[1], d[0])


def _to_face(p: np.ndarray, frame: tuple[np.ndarray, float, float]) -> np.ndarray:
    c, s, a = frame
    r = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    return (np.asarray(p, np.float64) - c) @ r.T / s


def _to_photo(q: np.ndarray, frame: tuple[np.ndarray, float, float]) -> np.ndarray:
    c, s, a = frame
    r = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    return q * s @ r + c


def fit_mapping(found68: Sequence[np.ndarray], labels: Sequence[np.ndarray], ridge: float = RIDGE) -> np.ndarray:
    """Weights ``(K, 68)``: each of a scheme's K points as a combination of the 68 points, from
    photos' 68 found points ``(68, 2)`` and their labels ``(K, 2)`` (NaN rows: that point not
    labelled on that photo); a point no photo has labelled: :class:`FabrecError`."""
    if not found68:
        raise FabrecError("no labelled photo to learn the suggestions from")
    frames = [_frame(np.asarray(p, np.float64)) for p in found68]
    src = np.stack([_to_face(p, f) for p, f in zip(found68, frames)])  # (N, 68, 2)
    dst = np.stack([_to_face(q, f) for q, f in zip(labels, frames)])  # (N, K, 2)
    k = dst.shape[1]
    weights = np.zeros((k, 68))
    for j in range(k):
        ok = np.isfinite(dst[:, j]).all(1)
        if not ok.any():
            raise FabrecError("a point no photo has labelled cannot be suggested yet")
        w0 = np.zeros(68)  # the start: the nearest of the 68 points on average
        w0[int(np.argmin(np.linalg.norm(src.mean(0) - dst[ok, j].mean(0), axis=1)))] = 1.0
        a = src[ok].transpose(0, 2, 1).reshape(-1, 68)  # x rows then y rows per photo: (2n, 68)
        b = dst[ok, j].reshape(-1)
        weights[j] = w0 + np.linalg.solve(a.T @ a + ridge * np.eye(68), a.T @ (b - a @ w0))
    return weights


def map_points(weights: np.ndarray, found68: np.ndarray) -> np.ndarray:
    """A scheme's points ``(K, 2)`` on a photo from its 68 found points ``(68, 2)``."""
    f = _frame(np.asarray(found68, np.float64))
    return _to_photo(weights @ _to_face(found68, f), f)
