"""Jitter of tracked points on a still-face clip made from one photo with small synthetic
shifts (±1 px, random per frame): mean frame-to-frame motion of the points after undoing the
known shift, with and without One-Euro smoothing.

    python benchmarks/video_jitter.py --model default --frames 60
"""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np

from fabrec.io import read_image
from fabrec.predict import LandmarkPredictor, OneEuro
from fabrec.sample_photo import SAMPLE_IMAGE as DEMO_IMAGE


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--min-cutoff", type=float, default=1.0)
    ap.add_argument("--beta", type=float, default=0.05)
    a = ap.parse_args()
    img = read_image(DEMO_IMAGE)
    rng = np.random.default_rng(0)
    shifts = rng.uniform(-1, 1, (a.frames, 2))
    frames = [cv2.warpAffine(img, np.float32([[1, 0, dx], [0, 1, dy]]), img.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
              for dx, dy in shifts]
    p = LandmarkPredictor.from_pretrained(a.model, device="cpu", quality=False)
    out = {}
    for name, sm in (("raw", None), ("one_euro", OneEuro(30, a.min_cutoff, a.beta))):
        pts = [f.points - s for f, s in zip(p.track(frames, smoothing=sm), shifts)]  # undo the known shift
        motion = [float(np.linalg.norm(b - a_, axis=-1).mean()) for a_, b in zip(pts, pts[1:])]
        out[name] = {"mean_px": float(np.mean(motion)), "median_px": float(np.median(motion))}
    print(json.dumps({"frames": a.frames, "shift_px": "uniform ±1 per axis", **out,
                      "one_euro": {**out["one_euro"], "min_cutoff": a.min_cutoff, "beta": a.beta}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
