"""Measure where the landmark extent sits inside each detector's boxes (fabrec.detect).

    python benchmarks/calibrate_detector.py --root ../shared/data/300w/helen/trainset
Prints the medians that fabrec.detect.Calibration holds for each detector.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from fabrec.datasets.landmarks import read_folder
from fabrec.detect import DETECTORS
from fabrec.io import read_image
from fabrec.schemes import BUILTIN


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="../shared/data/300w/helen/trainset")
    ap.add_argument("--detectors", default="opencv,dlib")
    a = ap.parse_args()
    samples = read_folder(a.root, BUILTIN["68"]).samples
    out = {}
    for name in a.detectors.split(","):
        try:
            det = DETECTORS[name]()
        except Exception as e:  # noqa: BLE001 - report and go on with the others
            print(f"{name}: unavailable ({e})")
            continue
        rows, miss = [], 0
        for s in samples:
            img = read_image(s.path)
            (x0, y0), (x1, y1) = s.points.min(0), s.points.max(0)
            ecx, ecy = (x0 + x1) / 2, (y0 + y1) / 2
            boxes = [b for b in det.detect(img) if b[0] <= ecx <= b[0] + b[2] and b[1] <= ecy <= b[1] + b[3]]
            if not boxes:
                miss += 1
                continue
            x, y, w, h = boxes[0]
            sd = (w + h) / 2
            rows.append([(ecx - x) / sd, (ecy - y) / sd, (x1 - x0) / sd, (y1 - y0) / sd])
        r = np.array(rows)
        out[name] = {"found": len(rows), "missed": miss, "median_cx_cy_w_h": np.median(r, 0).round(3).tolist(),
                     "iqr": (np.percentile(r, 75, 0) - np.percentile(r, 25, 0)).round(3).tolist()}
        print(name, json.dumps(out[name]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
