"""Accuracy on held-out 300-W AFW faces: a fabrec landmark model beside dlib's 68-point predictor.

Both see the same images and the same face boxes (the fabrec model's landmark-derived crop box),
and are scored by the same metric code (fabrec.metrics, inter-ocular normaliser). dlib is run a
second time on the box its own HOG detector finds (the boxes its predictor was trained with).
Note: dlib's 68-point model was trained on the 300-W training set, which includes AFW.

    python benchmarks/afw_accuracy.py --model runs/lm/best.pt --root ../shared/data/300w \
        --split afw --out benchmarks/results/afw
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from fabrec.datasets.landmarks import LandmarkDataset, read_dataset
from fabrec.evaluate import evaluate
from fabrec.heatmaps import heatmap_size
from fabrec.io import read_image, write_json_atomic
from fabrec.landmark_model import load_landmark_model
from fabrec.metrics import ced, nme, summarize
from fabrec.schemes import BUILTIN
from fabrec.visualize import plot_ced


def dlib_predictor():
    import importlib.util

    import dlib

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise SystemExit("pip install dlib-bin face-recognition-models")
    path = os.path.join(os.path.dirname(spec.origin), "models", "shape_predictor_68_face_landmarks.dat")
    return dlib, dlib.shape_predictor(path), dlib.get_frontal_face_detector()


def run_dlib(ds: LandmarkDataset, own_detector: bool) -> tuple[np.ndarray, list[float], int]:
    dlib, sp, det = dlib_predictor()
    preds, times, fallback = [], [], 0
    for i, s in enumerate(ds.samples):
        img = read_image(s.path)
        b = ds.box(i)
        rect = dlib.rectangle(int(round(b.cx - b.side / 2)), int(round(b.cy - b.side / 2)),
                              int(round(b.cx + b.side / 2)), int(round(b.cy + b.side / 2)))
        if own_detector:
            found = det(img, 1)
            if found:  # the detection closest to our box centre
                rect = min(found, key=lambda r: (r.center().x - b.cx) ** 2 + (r.center().y - b.cy) ** 2)
            else:
                fallback += 1
        t = time.perf_counter()
        shape = sp(img, rect)
        times.append(time.perf_counter() - t)
        preds.append([[p.x, p.y] for p in shape.parts()])
    return np.asarray(preds, np.float64), times, fallback


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--root", default="../shared/data/300w")
    ap.add_argument("--split", default="afw")
    ap.add_argument("--out", default="benchmarks/results/afw")
    ap.add_argument("--decoder", default=None)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    model = load_landmark_model(a.model)
    t0 = time.perf_counter()
    fm = evaluate(model, "300w", a.root, a.split, out / "fabrec", decoder=a.decoder, device="cpu")
    fab_s = time.perf_counter() - t0
    res = read_dataset("300w", a.root, a.split, BUILTIN["68"])
    ds = LandmarkDataset(res.samples, BUILTIN["68"], model.image_size, heatmap_size(model.image_size), model.framing.margins)
    gt = np.stack([s.points for s in ds.samples])
    norm = np.array([np.linalg.norm(s.points[36] - s.points[45]) for s in ds.samples])
    rows = {"fabrec": {**{k: fm[k] for k in ("nme", "fr_10", "auc_10", "count")},
                       "ms_per_face_incl_io": 1000 * fab_s / fm["count"]}}
    curves = {f"fabrec ({fm['nme']:.2f}%)": ced(np.load(out / "fabrec" / "predictions.npz")["nme"])}
    # the full product path: OpenCV detector boxes, without and with --refine 1
    from fabrec.predict import LandmarkPredictor

    pred = LandmarkPredictor(model, "opencv", "cpu", quality=False)
    for refine in (0, 1):
        errs, miss = [], 0
        for i, s in enumerate(ds.samples):
            c = s.points.mean(0)
            faces = pred.predict(str(s.path), refine=refine)
            if not faces:
                miss += 1
                continue
            f = min(faces, key=lambda f: float(np.linalg.norm(f.points.mean(0) - c)))
            errs.append(nme(f.points[None], gt[i : i + 1], norm[i : i + 1])[0])
        e = np.array(errs)
        name = f"fabrec (OpenCV detector, refine {refine})"
        rows[name] = {**summarize(e), "detector_missed": miss}
        curves[f"{name} ({e.mean():.2f}%)"] = ced(e)
    try:
        for own in (False, True):
            p, times, fb = run_dlib(ds, own)
            e = nme(p, gt, norm)
            name = "dlib (own HOG box)" if own else "dlib (same box)"
            rows[name] = {**summarize(e), "ms_per_face_landmarks_only": 1000 * float(np.median(times)),
                          "detector_misses_fell_back_to_same_box": fb}
            curves[f"{name} ({e.mean():.2f}%)"] = ced(e)
    except ImportError:
        print("dlib not installed: pip install dlib-bin face-recognition-models", file=sys.stderr)
    write_json_atomic(out / "boxes.json", {s.path.name: [ds.box(i).cx, ds.box(i).cy, ds.box(i).side]
                                           for i, s in enumerate(ds.samples)})
    mp_json = out / "mediapipe.json"
    if mp_json.exists():  # written by mediapipe_peer.py from its own venv
        mpr = json.loads(mp_json.read_text())
        rows["mediapipe face mesh (same box)"] = {k: mpr[k] for k in ("nme", "fr_10", "auc_10", "count", "missed", "ms_per_face_median")}
        curves[f"mediapipe ({mpr['nme']:.2f}%)"] = ced(np.array(mpr["nme_per_image"]))
    plot_ced(curves, str(out / "ced_afw.png"), f"300-W {a.split}: {len(ds)} faces")
    write_json_atomic(out / "afw_accuracy.json", {"model": a.model, "split": a.split, "normaliser": fm["normaliser"], "rows": rows})
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
