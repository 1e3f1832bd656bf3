"""Landmark annotation files: iBUG ``.pts`` (1-based), JSON and CSV point lists."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fabrec.errors import FabrecError


def parse_pts(text: str, name: str = "<pts>") -> np.ndarray:
    """Parse iBUG ``.pts`` text (with or without the ``version/n_points/{ }`` header).

    Returns 0-based pixel-centre points ``(K, 2) float64`` (the file's 1-based values minus 1).
    Raises :class:`FabrecError` naming ``name`` for malformed content.
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    declared = None
    body = lines
    if lines and lines[0].lower().startswith("version"):
        try:
            npl = next(ln for ln in lines[:3] if ln.lower().startswith("n_points"))
            declared = int(npl.split(":", 1)[1])
        except (StopIteration, ValueError, IndexError):
            raise FabrecError(f"{name}: bad .pts header (no valid n_points line)") from None
        if "{" not in lines or "}" not in lines:
            raise FabrecError(f"{name}: bad .pts file (missing '{{' or '}}')")
        body = lines[lines.index("{") + 1 : lines.index("}")]
    pts = []
    for ln in body:
        parts = ln.replace(",", " ").split()
        if len(parts) != 2:
            raise FabrecError(f"{name}: bad .pts line '{ln[:40]}'")
        try:
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            raise FabrecError(f"{name}: bad .pts line '{ln[:40]}'") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise FabrecError(f"{name}: non-finite coordinate in '{ln[:40]}'")
        pts.append((x - 1.0, y - 1.0))
    if not pts:
        raise FabrecError(f"{name}: no points")
    if declared is not None and declared != len(pts):
        raise FabrecError(f"{name}: header says {declared} points, file has {len(pts)}")
    return np.asarray(pts, np.float64)


def read_pts(path: str | Path) -> np.ndarray:
    """Read a ``.pts`` file -> ``(K, 2)`` 0-based points (see :func:`parse_pts`)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise FabrecError(f"{p}: cannot read ({e})") from None
    return parse_pts(text, str(p))


def format_pts(points: np.ndarray) -> str:
    """0-based ``(K, 2)`` points as the text of a standard 1-based ``.pts`` file."""
    body = "".join(f"{x + 1:.3f} {y + 1:.3f}\n" for x, y in points)
    return f"version: 1\nn_points: {len(points)}\n{{\n{body}}}\n"


def write_pts(path: str | Path, points: np.ndarray) -> None:
    """Write 0-based ``(K, 2)`` points as a standard 1-based ``.pts`` file."""
    Path(path).write_text(format_pts(points))


def points_from_json(data: object, name: str) -> np.ndarray:
    """``{"points": [[x, y], ...]}`` or ``[[x, y], ...]`` (parsed JSON) -> ``(K, 2)``."""
    pts = data.get("points") if isinstance(data, dict) else data
    try:
        arr = np.asarray(pts, np.float64)
    except (TypeError, ValueError):
        raise FabrecError(f"{name}: points must be a list of [x, y]") from None
    if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) == 0:
        raise FabrecError(f"{name}: points must be a non-empty list of [x, y]")
    if not np.isfinite(arr).all():
        raise FabrecError(f"{name}: non-finite coordinates")
    return arr
