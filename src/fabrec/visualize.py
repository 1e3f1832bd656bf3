"""Pictures: image grids (reconstructions, samples, interpolations), overlays, CED plots, and
photos annotated with their faces (:func:`annotate`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from fabrec.results import FaceResult


def grid(rows: list[np.ndarray], pad: int = 2) -> np.ndarray:
    """Tile rows of images (each ``(n, H, W, 3) uint8``) into one RGB picture, white padding."""
    n = max(len(r) for r in rows)
    h, w = rows[0].shape[1:3]
    out = np.full((len(rows) * (h + pad) + pad, n * (w + pad) + pad, 3), 255, np.uint8)
    for i, r in enumerate(rows):
        for j, im in enumerate(r):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            out[y : y + h, x : x + w] = im
    return out


def draw_points(
    rgb: np.ndarray, points: np.ndarray, conf: np.ndarray | None = None, radius: int = 2,
    color: tuple[int, int, int] = (0, 255, 0),
) -> np.ndarray:
    """Copy of ``rgb (H, W, 3)`` with ``points (K, 2)`` drawn; coloured red->green by
    ``conf (K,)`` in [0, 1] when given."""
    import cv2

    out = np.ascontiguousarray(rgb.copy())
    for k, (x, y) in enumerate(points):
        if not np.isfinite([x, y]).all():
            continue
        c = color
        if conf is not None:
            t = float(np.clip(conf[k], 0, 1))
            c = (int(255 * (1 - t)), int(255 * t), 0)
        cv2.circle(out, (int(round(x * 4)), int(round(y * 4))), radius * 4, c, -1, cv2.LINE_AA, shift=2)
    return out


def heatmap_overlay(rgb: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """``rgb (S, S, 3)`` blended with the max over ``heatmaps (K, H, H)`` as a colour map."""
    import cv2

    m = np.clip(heatmaps.max(0), 0, 1)
    m = cv2.resize(m.astype(np.float32), rgb.shape[:2][::-1], interpolation=cv2.INTER_LINEAR)
    cm = cv2.applyColorMap((m * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    return (0.5 * rgb + 0.5 * cm).astype(np.uint8)


def plot_ced(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str, title: str = "") -> None:
    """Write a CED plot (fraction of images vs NME %) with one line per entry."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fabrec.io import atomic_write

    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    for name, (t, f) in curves.items():
        ax.plot(t, f, label=name)
    ax.set_xlabel("NME (%)")
    ax.set_ylabel("fraction of images")
    ax.set_xlim(0, float(max(t[-1] for t, _ in curves.values())))
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=str(path).rsplit(".", 1)[-1]))
    plt.close(fig)


def draw_head_axes(rgb: np.ndarray, origin: np.ndarray, yaw: float, pitch: float, roll: float,
                   length: float, thickness: int = 2) -> np.ndarray:
    """``rgb (H, W, 3)`` with the head's axes drawn from ``origin (2,)`` (the nose tip), each
    ``length`` pixels long when it lies in the picture's plane: x (the head's left-to-right) red,
    y (down) green, z (out of the face, towards where it looks) blue."""
    import cv2

    from fabrec.head_pose import rotation

    r = rotation(yaw, pitch, roll)
    out = rgb.copy()
    o = np.asarray(origin, np.float64)
    for axis, colour in ((0, (230, 40, 40)), (1, (40, 200, 40)), (2, (40, 90, 255))):
        d = r[:2, axis] * (-1.0 if axis == 2 else 1.0)  # z forward is into the scene: draw the face's own out
        end = o + length * d
        cv2.line(out, tuple(int(round(v)) for v in o), tuple(int(round(v)) for v in end), colour, thickness,
                 cv2.LINE_AA)
    return out


def annotate(rgb: np.ndarray, faces: list[FaceResult]) -> np.ndarray:
    """Image with each face's box and points (red = low, green = high confidence) and its head
    pose as three axes from the nose tip (x red, y green, z blue: where the face looks)."""
    import cv2

    out = rgb.copy()
    for f in faces:
        side = f.crop.side if f.crop is not None else float(max(np.ptp(f.points[:, 0]), np.ptp(f.points[:, 1])))
        r = max(2, round(side / 50))  # markers scale with the face, not the picture
        if f.crop is not None:
            x, y, w, h = f.crop.to_xywh()
            cv2.rectangle(out, (int(x), int(y)), (int(x + w), int(y + h)), (255, 200, 0), max(1, r // 2))
        out = draw_points(out, f.points, f.confidence, radius=r)
        if f.head_pose is not None:
            out = draw_head_axes(out, f.points[30], *f.head_pose, length=0.5 * side, thickness=max(1, r // 2))
    return out
