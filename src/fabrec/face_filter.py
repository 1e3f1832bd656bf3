"""The face filter: is a detected crop a face? A logistic score on what the landmark model already
computes for it -- the encoder's codes (the autoencoder's face knowledge) and the mean point
confidence -- fitted for one model file on real face and non-face crops
(``benchmarks/face_filter.py``) and kept inside it (:func:`fabrec.model_file.with_face_filter`), so the file
behaves the same whatever name or path loads it.

Detectors fire on face-like things: prints on clothes, patterns, hands. The mean confidence
alone lets many through (a print can hold a clear "face"); the codes say whether the crop looks
like the faces the autoencoder learned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fabrec.errors import FabrecError

FORMAT = "fabrec-face-filter/1"


def face_features(codes: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Codes ``(N, L)`` and point confidences ``(N, K)`` -> the filter's inputs ``(N, 2L + 2)``:
    the codes, their squares (how far from the faces' typical codes, per dimension), the mean
    and the spread of the confidences."""
    c, z = np.asarray(confidence, np.float64), np.asarray(codes, np.float64)
    return np.concatenate([z, z * z, c.mean(1, keepdims=True), c.std(1, keepdims=True)], 1)


@dataclass(frozen=True)
class FaceFilter:
    """A fitted face filter for one model file.

    Attributes:
        weights: ``(D,)`` logistic weights on the standardised features (:func:`face_features`).
        bias: the logistic bias.
        mean, scale: ``(D,)`` feature standardisation.
        threshold: crops scoring under it are not faces.
        model_sha256: the SHA-256 of the weights it was fitted on (before it was put inside them).
        measured: how it was fitted and what it measured (for people; not used).
    """

    weights: np.ndarray
    bias: float
    mean: np.ndarray
    scale: np.ndarray
    threshold: float
    model_sha256: str
    measured: dict[str, Any]

    def score(self, codes: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        """``(N,)`` face scores in [0, 1] for crops' codes ``(N, L)`` and confidences ``(N, K)``."""
        return self.score_features(face_features(codes, confidence))

    def score_features(self, f: np.ndarray) -> np.ndarray:
        """``(N,)`` scores of features ``(N, D)`` made by :func:`face_features`."""
        if f.shape[1] != self.weights.shape[0]:
            raise FabrecError(f"face filter: made for {(self.weights.shape[0] - 2) // 2}-D codes, "
                              f"got {(f.shape[1] - 2) // 2}")
        f = (f - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(f @ self.weights + self.bias)))

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "model_sha256": self.model_sha256, "threshold": self.threshold,
                "bias": self.bias, "weights": self.weights.tolist(), "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "measured": self.measured}

    @staticmethod
    def from_dict(d: dict[str, Any], where: str = "face filter") -> FaceFilter:
        try:
            if d.get("format") != FORMAT:
                raise ValueError(f"format is not {FORMAT}")
            w, m, s = (np.asarray(d[k], np.float64) for k in ("weights", "mean", "scale"))
            if not (w.shape == m.shape == s.shape and w.ndim == 1 and (s > 0).all()):
                raise ValueError("weights, mean and scale must be equal-length lists, scale > 0")
            return FaceFilter(w, float(d["bias"]), m, s, float(d["threshold"]), str(d["model_sha256"]),
                              dict(d.get("measured", {})))
        except (KeyError, TypeError, ValueError) as e:
            raise FabrecError(f"{where}: not a face filter ({e})") from None


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, sample_weight: np.ndarray | None = None,
                 iters: int = 100) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """L2-regularised logistic regression on features ``x (N, D)``, labels ``y (N,)`` in {0, 1},
    per-sample weights ``(N,)`` (Newton's method on standardised features). Returns (weights,
    bias, mean, scale)."""
    mean, scale = x.mean(0), x.std(0) + 1e-6
    z = np.c_[(x - mean) / scale, np.ones(len(x))]
    sw = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    w = np.zeros(z.shape[1])
    reg = np.full(z.shape[1], l2)
    reg[-1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-z @ w))
        g = z.T @ (sw * (p - y)) + reg * w
        hess = (z * (sw * p * (1 - p))[:, None]).T @ z + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, g)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1]), mean, scale
