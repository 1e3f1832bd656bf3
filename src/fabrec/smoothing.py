"""Smoothing of tracked points over video frames."""

from __future__ import annotations

import math

import numpy as np


class OneEuro:
    """One-Euro filter (Casiez et al., CHI 2012) for point sets ``(K, 2)``: speed-adaptive low-pass.

    Args:
        fps: frame rate used to turn frame indices into seconds.
        min_cutoff: cutoff frequency (Hz) at rest; lower = smoother, more lag.
        beta: how fast the cutoff rises with speed; higher = less lag in fast motion.
        d_cutoff: cutoff for the speed estimate.
    """

    def __init__(self, fps: float = 30.0, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0) -> None:
        self.fps, self.min_cutoff, self.beta, self.d_cutoff = fps, min_cutoff, beta, d_cutoff
        self.reset()

    def reset(self) -> None:
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None

    def fresh(self, fps: float | None = None) -> OneEuro:
        """A new filter with these settings (and ``fps`` if given) and no state: each track
        smooths with its own, so one template serves many videos and threads."""
        return OneEuro(self.fps if fps is None else fps, self.min_cutoff, self.beta, self.d_cutoff)

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t: int) -> np.ndarray:
        dt = 1.0 / self.fps
        if self.x is None:
            self.x, self.dx = x.copy(), np.zeros_like(x)
            return x.copy()
        dx = (x - self.x) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        self.dx = a_d * dx + (1 - a_d) * self.dx
        cutoff = self.min_cutoff + self.beta * np.linalg.norm(self.dx, axis=-1, keepdims=True)
        a = self._alpha(cutoff, dt)
        self.x = a * x + (1 - a) * self.x
        return self.x.copy()
