"""Fit the 3-D mean face that head pose is solved against (``fabrec/assets/mean_face_68.json``).

From the training part of the shared AFLW2000-3D half (``face_crops.aflw_held_out`` false): its
68 points and fitted head poses. Each face's points are modelled as a scaled orthographic view
of one 3-D shape S (68 x 3) turned by the face's known rotation R = Rx(-pitch) Ry(yaw) Rz(roll)
(OpenCV's camera frame: x right, y down, z forward; the data set's convention, see
``../shared/data/README.md``): p = s Pi R S + t. Alternating least squares: per face the scale
and shift given S, then S given them (a linear system per point); S centred, eye-corner
distance 1. Prints the fit's residual (in eye-corner units) and writes the asset.

    python benchmarks/fit_head_shape.py [--out src/fabrec/assets/mean_face_68.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from face_crops import aflw_held_out  # noqa: E402

from fabrec.datasets.pts import read_pts  # noqa: E402
from fabrec.head_pose import rotation  # noqa: E402
from fabrec.io import write_json_atomic  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def fit(points: np.ndarray, rots: np.ndarray, iters: int = 50) -> tuple[np.ndarray, float]:
    """Points ``(N, 68, 2)``, rotations ``(N, 3, 3)`` -> the shape ``(68, 3)`` and the RMS residual
    in units of the shape's outer-eye-corner distance."""
    n = len(points)
    proj = rots[:, :2, :]  # (N, 2, 3): Pi R
    shape = np.c_[points[0] - points[0].mean(0), np.zeros(68)]
    for _ in range(iters):
        # per face: p ~ s * (Pi R S) + t, linear in (s, t)
        v = np.einsum("nij,kj->nki", proj, shape)  # (N, 68, 2)
        vc, pc = v - v.mean(1, keepdims=True), points - points.mean(1, keepdims=True)
        s = (vc * pc).sum((1, 2)) / (vc * vc).sum((1, 2))
        t = points.mean(1) - s[:, None] * v.mean(1)
        # the shape: for every point k, sum_n ||s_n Pi R_n S_k - (p_nk - t_n)||^2
        a = (s[:, None, None] * proj).reshape(2 * n, 3)
        rhs = (points - t[:, None, :]).transpose(0, 2, 1).reshape(2 * n, 68)
        shape = np.linalg.lstsq(a, rhs, rcond=None)[0].T
        shape -= shape.mean(0)
        shape /= np.linalg.norm(shape[36] - shape[45])
    v = np.einsum("nij,kj->nki", proj, shape)
    res = points - (s[:, None, None] * v + t[:, None, :])
    eye = s * 1.0  # the shape's eye distance is 1: s is the face's eye distance in pixels
    return shape, float(np.sqrt(((res / eye[:, None, None]) ** 2).sum(-1).mean()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "src/fabrec/assets/mean_face_68.json"))
    a = ap.parse_args()
    poses = json.loads((SHARED / "aflw2000" / "poses.json").read_text())
    pts, rots = [], []
    for jpg in sorted((SHARED / "aflw2000").glob("*.jpg")):
        p = poses[jpg.stem]
        if aflw_held_out(jpg.stem) or max(abs(p["yaw"]), abs(p["pitch"]), abs(p["roll"])) > 99:
            continue
        pts.append(read_pts(jpg.with_suffix(".pts")))
        rots.append(rotation(p["yaw"], p["pitch"], p["roll"]))
    shape, rms = fit(np.asarray(pts), np.asarray(rots))
    write_json_atomic(Path(a.out), {
        "what": "3-D mean face, 68 points (iBUG order), x right, y down, z away from the camera, "
                "outer-eye-corner distance 1, centred",
        "fitted_by": "benchmarks/fit_head_shape.py on the AFLW2000-3D training part",
        "faces": len(pts), "rms_residual_eye_units": round(rms, 4),
        "points": np.round(shape, 5).tolist()})
    print(json.dumps({"faces": len(pts), "rms_residual_eye_units": round(rms, 4), "out": a.out}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
