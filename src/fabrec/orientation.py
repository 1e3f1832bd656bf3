"""Which orientation of a face is the right one, when the detector searches several
(``--rotations all``): YuNet finds a face upright, sideways and upside down with nearly the same
score, so the landmark model decides.

Without more knowledge (:func:`plain_score`): the model's mean point confidence (an upside-down
or sideways crop gives flat heatmaps) + 0.1 x the detector's score. Weight chosen on 300-W
HELEN-train photos turned by 0-270 degrees (1,526 faces, 3.7 candidates each): the right
orientation in 99.6% (mean confidence alone: 99.5%, detector score alone: 96.9%). It fails on
profiles: a turned-away face is as unclear to the model upright as sideways.

A model file may hold an :class:`OrientationChooser` fitted for it (``benchmarks/orientation.py
--install``): a logistic score of "this crop is upright" on the encoder's codes (the face
filter's features, :func:`fabrec.face_filter.face_features`), added to the plain score with a
weight, and a margin by which another orientation must beat the photo's own upright one -- a
photo is more often upright than not, and a profile must never be turned the wrong way.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fabrec.errors import FabrecError
from fabrec.face_filter import FaceFilter

FORMAT = "fabrec-orientation/1"


def plain_score(confidence: np.ndarray, detector_score: float) -> float:
    """Mean point confidence + 0.1 x the detector's score (NaN: 0)."""
    return float(np.mean(confidence)) + 0.1 * (0.0 if math.isnan(detector_score) else detector_score)


def plain_scores(confidence: np.ndarray, detector_scores: Sequence[float]) -> np.ndarray:
    """:func:`plain_score` of N crops at once: confidences ``(N, K)`` -> ``(N,)`` float64."""
    return np.array([plain_score(c, s) for c, s in zip(confidence, detector_scores)], np.float64).reshape(-1)


def is_upright(crop_angle: float) -> bool:
    """Whether a crop (its roll in radians) is the photo's own orientation (within 45 degrees)."""
    return abs(math.remainder(crop_angle, 2 * math.pi)) <= math.pi / 4


@dataclass(frozen=True)
class OrientationChooser:
    """The orientation rule fitted for one model file (see the module docstring).

    Attributes:
        upright: the logistic "is this crop upright" on the face filter's features (its
            ``threshold`` is unused).
        weight: how much its probability adds to :func:`plain_score`.
        margin: how much more another orientation must score than the photo's upright one.
        measured: how it was fitted and what it measured (for people; not used).
    """

    upright: FaceFilter
    weight: float
    margin: float
    measured: dict[str, Any]

    def scores(self, confidence: np.ndarray, detector_scores: Sequence[float], codes: np.ndarray) -> np.ndarray:
        """``(N,)`` scores of N candidate crops: confidences ``(N, K)``, codes ``(N, L)``."""
        return plain_scores(confidence, detector_scores) + self.weight * self.upright.score(codes, confidence)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "upright": self.upright.to_dict(), "weight": self.weight, "margin": self.margin,
                "measured": self.measured}

    @staticmethod
    def from_dict(d: dict[str, Any], where: str = "orientation") -> OrientationChooser:
        try:
            if d.get("format") != FORMAT:
                raise ValueError(f"format is not {FORMAT}")
            return OrientationChooser(FaceFilter.from_dict(d["upright"], where), float(d["weight"]),
                                      float(d["margin"]), dict(d.get("measured", {})))
        except (KeyError, TypeError, ValueError) as e:
            raise FabrecError(f"{where}: not an orientation rule ({e})") from None


def choose(scores: Sequence[float], upright: Sequence[bool], margin: float = 0.0) -> int:
    """The index of the chosen candidate orientation: the best score, unless an upright
    candidate comes within ``margin`` of it (then the best upright one)."""
    best = int(np.argmax(scores))
    ups = [i for i, u in enumerate(upright) if u]
    if margin > 0 and ups:
        u = max(ups, key=lambda i: scores[i])
        if scores[best] <= scores[u] + margin:
            return u
    return best


def orientation_scores(chooser: OrientationChooser | None, confidence: np.ndarray, detector_scores: Sequence[float],
                       codes: np.ndarray) -> np.ndarray:
    """``(N,)`` orientation scores of N crops (confidences ``(N, K)``, codes ``(N, L)``): the
    model file's rule where it has one (``chooser``), else :func:`plain_score`."""
    if chooser is not None:
        return chooser.scores(confidence, detector_scores, codes)
    return plain_scores(confidence, detector_scores)


def one_per_group(groups: Sequence[Hashable | None], scores: Sequence[float], upright: Sequence[bool],
                  margin: float = 0.0) -> list[int]:
    """The indices kept, in order: one candidate per group (the orientations of one detection,
    chosen by :func:`choose` on their ``scores``; ``upright`` says which are upright crops), and
    every candidate outside a group (``None``)."""
    members: dict[Hashable, list[int]] = {}
    for k, g in enumerate(groups):
        if g is not None:
            members.setdefault(g, []).append(k)
    keep = {ks[choose([scores[k] for k in ks], [upright[k] for k in ks], margin)] for ks in members.values()}
    return [k for k, g in enumerate(groups) if g is None or k in keep]
