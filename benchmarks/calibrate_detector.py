"""Measure how each detector frames faces relative to the 68-point landmark extent (fabrec.faces.detectors,
fabrec.faces.framing), on 300-W HELEN-train.

    python benchmarks/calibrate_detector.py --root ../shared/data/300w/helen/trainset [--write]

For every detector: the medians that ``fabrec.faces.detectors.Calibration`` holds (the extent's centre
and size in units of the detector box side). For YuNet also the five-point frame: the template
(the mean of its five points in extent units, re-centred on the extent by similarity fits, then made
left-right symmetric) and the ridge map from the points' residual offsets and the box to the
extent; ``--write`` stores them in ``src/fabrec/assets/five_point_frame.json``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from fabrec.datasets.landmarks import read_folder
from fabrec.faces.detectors import get_detector
from fabrec.faces.framing import FRAME_FILE, fit_similarity
from fabrec.io import read_image
from fabrec.faces.framing import matching_detection
from fabrec.schemes import BUILTIN

RIDGE = 0.01


def symmetric(t: np.ndarray) -> np.ndarray:
    """A five-point template mirrored about x = 0 and averaged with itself."""
    m = t.copy()
    m[:, 0] = -m[:, 0]
    m = m[[1, 0, 2, 4, 3]]
    s = (t + m) / 2
    s[2, 0] = 0.0
    return s


def local(p: np.ndarray, a: complex, t: np.ndarray) -> np.ndarray:
    """Image points ``(N, 2)`` -> template units under ``p ~ a * q + t``."""
    z = ((p[:, 0] - t[0]) + 1j * (p[:, 1] - t[1])) / a
    return np.stack([z.real, z.imag], 1)


def five_point_frame(rows: list) -> dict:
    """Template and ridge weights from (points5, box, landmarks) rows."""
    ext = [(p.min(0) + p.max(0)) / 2 for _, _, p in rows]
    size = [float(np.mean(p.max(0) - p.min(0))) for _, _, p in rows]
    t = np.mean([(f - e) / s for (f, _, _), e, s in zip(rows, ext, size)], 0)
    for _ in range(3):  # re-centre on the extent and rescale to unit mean size
        st = []
        for f, _, p in rows:
            a, sh = fit_similarity(t, f)
            q = local(p, a, sh)
            st.append([*(q.min(0) + q.max(0)) / 2, *(q.max(0) - q.min(0))])
        med = np.median(np.array(st), 0)
        t = (t - med[:2]) / ((med[2] + med[3]) / 2)
    t = symmetric(t)
    x, y = [], []
    for f, (bx, by, bw, bh), p in rows:
        a, sh = fit_similarity(t, f)
        q, z = local(p, a, sh), local(f, a, sh)
        zb = local(np.array([[bx + (bw - 1) / 2, by + (bh - 1) / 2]]), a, sh)[0]
        s = abs(a)
        x.append([*(z[:, 0] - t[:, 0]), *(z[:, 1] - t[:, 1]), *zb, bw / s, bh / s, 1.0])
        y.append([*(q.min(0) + q.max(0)) / 2, *(q.max(0) - q.min(0))])
    x, y = np.array(x), np.array(y)
    reg = RIDGE * np.diag([1.0] * (x.shape[1] - 1) + [0.0])
    w = np.linalg.solve(x.T @ x + reg, x.T @ y)
    err = np.abs(x @ w - y).mean(0)
    return {"template": t.round(4).tolist(), "weights": w.round(5).tolist(),
            "fit_mean_abs_error_cx_cy_w_h": err.round(4).tolist(), "faces": len(rows)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="../shared/data/300w/helen/trainset")
    ap.add_argument("--detectors", default="yunet,opencv,dlib")
    ap.add_argument("--write", action="store_true", help="store YuNet's five-point frame in the package")
    a = ap.parse_args()
    samples = read_folder(a.root, BUILTIN["68"]).samples
    for name in a.detectors.split(","):
        try:
            det = get_detector(name)
        except Exception as e:  # noqa: BLE001 - report and go on with the others
            print(f"{name}: unavailable ({e})")
            continue
        rows, five, miss = [], [], 0
        for s in samples:
            d = matching_detection(det.detect(read_image(s.path)), s.points)
            if d is None:
                miss += 1
                continue
            (x0, y0), (x1, y1) = s.points.min(0), s.points.max(0)
            x, y, w, h = d.box
            sd = (w + h) / 2
            rows.append([((x0 + x1) / 2 - x) / sd, ((y0 + y1) / 2 - y) / sd, (x1 - x0) / sd, (y1 - y0) / sd])
            if d.points is not None:
                five.append((d.points, d.box, s.points))
        r = np.array(rows)
        print(name, json.dumps({"found": len(rows), "missed": miss, "median_cx_cy_w_h": np.median(r, 0).round(3).tolist(),
                                "iqr": (np.percentile(r, 75, 0) - np.percentile(r, 25, 0)).round(3).tolist()}))
        if five:
            frame = five_point_frame(five)
            print(name, "five-point frame", json.dumps({k: v for k, v in frame.items() if k != "weights"}))
            if a.write:
                old = json.loads(FRAME_FILE.read_text())
                FRAME_FILE.write_text(json.dumps({**old, "template": frame["template"], "weights": frame["weights"]},
                                                 indent=1))
                print(f"wrote {FRAME_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
