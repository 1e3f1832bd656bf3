"""MediaPipe 0.10.14 legacy face mesh as a peer on AFW (run it in its own venv: it needs
numpy<2). Writes its 68-point estimates and timings as JSON; `afw_accuracy.py` is not needed
for it — this script scores them with the same formulas (NME by the outer-eye-corner
distance, FR@10 strictly above 10%, AUC@10 by exact integration).

The 468-point mesh is mapped to the 68-point iBUG scheme with a commonly used index list
(MP68 below). The mesh's contour points are not the iBUG jawline, so part of its error is a
definition mismatch, not a localisation error; the table says so.

    runs/mpvenv/bin/python benchmarks/mediapipe_peer.py --root ../shared/data/300w/afw \
        --boxes benchmarks/results/afw/boxes.json --json benchmarks/results/afw/mediapipe.json
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import time

import cv2
import numpy as np

MP68 = [127, 234, 93, 132, 58, 172, 136, 150, 152, 377, 365, 397, 288, 361, 323, 454, 356,
        70, 63, 105, 66, 107, 336, 296, 334, 293, 300, 168, 197, 5, 4, 75, 97, 2, 326, 305,
        33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380, 61, 39, 37, 0, 267, 269,
        291, 405, 314, 17, 84, 181, 78, 82, 13, 312, 308, 317, 14, 87]


def read_pts(path: str) -> np.ndarray:
    lines = open(path).read().split("{")[1].split("}")[0].split()
    return np.array(lines, float).reshape(-1, 2) - 1.0


def main() -> int:
    import mediapipe as mp

    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="../shared/data/300w/afw")
    ap.add_argument("--boxes", required=True, help="JSON {file name: [cx, cy, side]} crop boxes (from afw_accuracy.py)")
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    boxes = json.load(open(a.boxes))
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False)
    errs, times, miss = [], [], 0
    for pts_path in sorted(glob.glob(os.path.join(a.root, "*.pts"))):
        name = os.path.basename(pts_path)[:-4] + ".jpg"
        gt = read_pts(pts_path)
        img = cv2.cvtColor(cv2.imread(os.path.join(a.root, name)), cv2.COLOR_BGR2RGB)
        cx, cy, side = boxes[name]
        s = 256  # the mesh is run on the same square face crop fabrec sees, at 256 px
        k = s / side
        m = np.float32([[k, 0, s / 2 - 0.5 - k * cx], [0, k, s / 2 - 0.5 - k * cy]])
        crop = cv2.warpAffine(img, m, (s, s))
        t = time.perf_counter()
        res = mesh.process(crop)
        times.append(time.perf_counter() - t)
        if not res.multi_face_landmarks:
            miss += 1
            continue
        lm = res.multi_face_landmarks[0].landmark
        p = np.array([[lm[i].x * s, lm[i].y * s] for i in MP68])
        p = (p - m[:, 2]) / k  # back to image pixels
        d = np.linalg.norm(p - gt, axis=1).mean() / np.linalg.norm(gt[36] - gt[45]) * 100
        errs.append(float(d))
    e = np.array(errs)
    out = {"peer": "mediapipe 0.10.14 face_mesh (static images, 68 of 468 points)", "count": len(e), "missed": miss,
           "nme": float(e.mean()), "fr_10": float((e > 10).mean() * 100), "auc_10": float(np.clip(10 - e, 0, None).sum() / (10 * len(e))),
           "ms_per_face_median": 1000 * statistics.median(times), "nme_per_image": errs}
    json.dump(out, open(a.json, "w"), indent=1)
    print(json.dumps({k: v for k, v in out.items() if k != "nme_per_image"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
