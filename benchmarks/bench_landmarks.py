"""Landmark-path speed table: fabrec (default and the 256-px paper model; torch fp32 with
BatchNorm folded -- the default path -- and as trained, onnxruntime, and bf16; batch 1 and 32)
and, where installed, dlib's 68-point predictor, all in one process. Every fabrec row carries
the ceilings measured beside it (fp32 FMA or bf16 dot-product peak, a same-FLOPs conv stack,
a 2048^2 matmul).

    python benchmarks/bench_landmarks.py --json benchmarks/results/landmarks_cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from fabrec.bench import bench, timed
from fabrec.runtime import set_threads

# (backend, dtype, fold BatchNorm)
CONFIGS = {
    "torch": ("torch", "fp32", False),
    "onnxruntime": ("onnxruntime", "fp32", False),
    "torch-foldbn": ("torch", "fp32", True),
    "torch-bf16": ("torch", "bf16", False),
    "torch-bf16-foldbn": ("torch", "bf16", True),
}


def dlib_speed(reps: int = 2000) -> dict | None:
    try:
        import dlib
    except ImportError:
        return None
    import importlib.util
    import os

    from fabrec.io import read_image
    from fabrec.sample_photo import SAMPLE_BOX, SAMPLE_IMAGE

    spec = importlib.util.find_spec("face_recognition_models")
    sp = dlib.shape_predictor(os.path.join(os.path.dirname(spec.origin), "models", "shape_predictor_68_face_landmarks.dat"))
    img = read_image(SAMPLE_IMAGE)
    x, y, w, h = (int(v) for v in SAMPLE_BOX)
    rect = dlib.rectangle(x, y, x + w, y + h)
    ts = timed(lambda: sp(img, rect), reps, warmup=10)
    med = statistics.median(ts)
    return {"model": "dlib shape_predictor_68", "backend": "dlib", "batch_size": 1, "faces_per_s": 1 / med,
            "latency_ms_median": 1000 * med, "latency_ms_p90": 1000 * float(np.percentile(ts, 90)),
            "latency_ms_min": 1000 * min(ts), "latency_ms_max": 1000 * max(ts)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="default,paper-256")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--reps", type=int, default=6, help="batches timed at batch > 1 (5x as many at batch 1)")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--rounds", default="default:3,paper-256:1",
                    help="times each model's rows are measured, interleaved; the round with the median rate is kept")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    set_threads(a.threads)
    rows = []
    d = dlib_speed()  # first, on the idle machine (PyTorch's pool threads spin for a while after use)
    rounds = {k: int(v) for k, v in (item.split(":") for item in a.rounds.split(",") if item)}
    for m in a.models.split(","):
        runs: dict[tuple[str, int], list[dict]] = {}
        for _ in range(rounds.get(m, 1)):
            for name in a.configs.split(","):
                backend, dtype, fold = CONFIGS[name]
                for b in (int(v) for v in a.batches.split(",")):
                    r = bench(m, backend, b, reps=a.reps if b > 1 else 5 * a.reps, device="cpu", dtype=dtype,
                              fold_bn=fold)
                    r["config"] = name
                    runs.setdefault((name, b), []).append(r)
                    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if k in (
                        "model", "config", "batch_size", "faces_per_s", "latency_ms_median", "decode_ms_per_face",
                        "gflops_achieved", "fma_peak_gflops", "ratio_to_fma_peak")}), flush=True)
        for got in runs.values():
            got.sort(key=lambda r: r["faces_per_s"])
            keep = dict(got[len(got) // 2])
            keep["faces_per_s_rounds"] = [r["faces_per_s"] for r in got]
            rows.append(keep)
    if d:
        rows.append(d)
        print(json.dumps(d))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
