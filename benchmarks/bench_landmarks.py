"""Landmark-path speed table: fabrec (torch / onnxruntime, batch 1 and 32, default and the
256-px paper model) and, where installed, dlib's 68-point predictor on the same crops.

    python benchmarks/bench_landmarks.py --json benchmarks/results/landmarks_cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from fabrec.bench import bench, timed


def dlib_speed(reps: int = 200) -> dict | None:
    try:
        import dlib
    except ImportError:
        return None
    import importlib.util
    import os

    from fabrec.io import read_image
    from fabrec.sample import SAMPLE_BOX, SAMPLE_IMAGE

    spec = importlib.util.find_spec("face_recognition_models")
    sp = dlib.shape_predictor(os.path.join(os.path.dirname(spec.origin), "models", "shape_predictor_68_face_landmarks.dat"))
    img = read_image(SAMPLE_IMAGE)
    x, y, w, h = (int(v) for v in SAMPLE_BOX)
    rect = dlib.rectangle(x, y, x + w, y + h)
    ts = timed(lambda: sp(img, rect), reps, warmup=10)
    med = statistics.median(ts)
    return {"model": "dlib shape_predictor_68", "backend": "dlib", "batch_size": 1, "faces_per_s": 1 / med,
            "latency_ms_median": 1000 * med, "latency_ms_p90": 1000 * float(np.percentile(ts, 90))}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="default,paper-256")
    ap.add_argument("--backends", default="torch,onnxruntime")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    rows = []
    for m in a.models.split(","):
        for be in a.backends.split(","):
            for b in (int(v) for v in a.batches.split(",")):
                r = bench(m, be, b, reps=a.reps if b > 1 else 5 * a.reps)
                rows.append(r)
                print(json.dumps({k: r[k] for k in ("model", "backend", "batch_size", "faces_per_s",
                                                   "latency_ms_median", "latency_ms_p90", "gflops_achieved",
                                                   "gflops_ceiling")}))
    d = dlib_speed()
    if d:
        rows.append(d)
        print(json.dumps(d))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
