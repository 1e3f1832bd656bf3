"""Face-alignment metrics (pure NumPy): NME, failure rate, AUC and the CED curve."""

from __future__ import annotations

import numpy as np


def nme(pred: np.ndarray, gt: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """Per-image normalised mean error in percent.

    Args:
        pred, gt: ``(N, K, 2)`` points (same pixel frame). Non-finite gt points are ignored.
        norm: ``(N,)`` normalising distances (inter-ocular distance or box side).
    Returns: ``(N,)`` mean point-to-point error / norm * 100.
    """
    d = np.linalg.norm(pred - gt, axis=-1)  # (N, K)
    valid = np.isfinite(gt).all(-1)
    d = np.where(valid, d, 0.0)
    per = d.sum(-1) / np.maximum(valid.sum(-1), 1)
    return per / norm * 100.0


def failure_rate(errors: np.ndarray, threshold: float = 10.0) -> float:
    """Percent of images whose NME is strictly above ``threshold`` percent."""
    return float((np.asarray(errors) > threshold).mean() * 100.0) if len(errors) else float("nan")


def auc(errors: np.ndarray, threshold: float = 10.0) -> float:
    """Area under the CED curve from 0 to ``threshold`` (percent), normalised to [0, 1].

    Exact integration of the step-function CED: each image with error e < T contributes
    (T - e) / (T * N).
    """
    e = np.asarray(errors, np.float64)
    if len(e) == 0:
        return float("nan")
    return float(np.clip(threshold - e, 0, None).sum() / (threshold * len(e)))


def ced(errors: np.ndarray, threshold: float = 10.0, steps: int = 1001) -> tuple[np.ndarray, np.ndarray]:
    """CED curve: thresholds ``(steps,)`` in percent and the fraction of images at or below each."""
    t = np.linspace(0, threshold, steps)
    e = np.sort(np.asarray(errors, np.float64))
    return t, np.searchsorted(e, t, side="right") / max(len(e), 1)


def summarize(errors: np.ndarray) -> dict[str, float]:
    """``{"nme", "fr_10", "auc_10", "count"}`` for per-image errors in percent."""
    e = np.asarray(errors, np.float64)
    return {
        "nme": float(e.mean()) if len(e) else float("nan"),
        "fr_10": failure_rate(e),
        "auc_10": auc(e),
        "count": len(e),
    }
