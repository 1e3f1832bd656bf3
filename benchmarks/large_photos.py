"""Small faces in large photos: mosaics of the AFW photos as one big picture, and how many faces
the detector finds in it.

    python benchmarks/large_photos.py            # 4000 x 3000 mosaics, faces of about 57, 113, 450 px

A face counts as found when a detection's box centre lies inside its 68-point extent. Prints one
JSON line per mosaic: faces, found, detections, milliseconds (YuNet with the default settings,
and with a single pass at 640 px for comparison).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from fabrec.datasets.landmarks import read_folder
from fabrec.faces.yunet import YuNet
from fabrec.io import read_image
from fabrec.schemes import BUILTIN


def mosaic(root: Path, cols: int, rows: int, cell: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """``cols x rows`` AFW photos, each shrunk into a ``cell`` square, and their faces' points."""
    samples = read_folder(root, BUILTIN["68"]).samples
    canvas = np.zeros((rows * cell, cols * cell, 3), np.uint8)
    faces = []
    for i in range(cols * rows):
        s = samples[i % len(samples)]
        img = read_image(s.path)
        h, w = img.shape[:2]
        f = cell / max(h, w)
        small = cv2.resize(img, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
        y0, x0 = (i // cols) * cell, (i % cols) * cell
        canvas[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
        faces.append((s.points + 0.5) * f - 0.5 + [x0, y0])
    return canvas, faces


def count(dets: list, faces: list[np.ndarray]) -> int:
    def hit(d, p) -> bool:
        cx, cy = d.box[0] + d.box[2] / 2, d.box[1] + d.box[3] / 2
        return p[:, 0].min() <= cx <= p[:, 0].max() and p[:, 1].min() <= cy <= p[:, 1].max()

    return sum(any(hit(d, p) for d in dets) for p in faces)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[2] / "shared/data/300w/afw"))
    a = ap.parse_args()
    for cols, rows, cell in ((32, 24, 125), (16, 12, 250), (4, 3, 1000)):
        canvas, faces = mosaic(Path(a.root), cols, rows, cell)
        det = YuNet()
        t = time.perf_counter()
        found = det.detect(canvas)
        ms = 1000 * (time.perf_counter() - t)
        small = cv2.resize(canvas, (640, 480), interpolation=cv2.INTER_AREA)
        one = [d for d in YuNet(max_side=640).detect(small)]
        scale = canvas.shape[1] / 640
        one = [type(d)(tuple(v * scale for v in d.box), d.score) for d in one]
        print(json.dumps({"photo": f"{canvas.shape[1]} x {canvas.shape[0]}", "faces": len(faces),
                          "face_px_median": float(np.median([np.ptp(p[:, 0]) for p in faces]).round()),
                          "found": count(found, faces), "detections": len(found), "ms": round(ms),
                          "found_single_640_pass": count(one, faces)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
