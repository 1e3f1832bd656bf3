"""Tracking through cuts, fast moves and a face leaving the frame: frames on the wrong spot.

A synthetic 640x400 clip: the bundled photo's face on the left (frames 0-9), a cut to another
real face (a UTKFace chip, 2x) on the right (10-19), that face moving fast to the left at 40 px
per frame (20-29), then sliding out of the right edge (30-39). A frame is *wrong* when the
reported points' centroid is farther than 40% of the face width from the true face centre,
or a face is reported while none is visible, or none while one is. Prints one JSON line.

    python benchmarks/video_cuts.py [--shared ../shared/data] [--redetect-every 3]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from fabrec.io import read_image
from fabrec.predict import LandmarkPredictor
from fabrec.sample_photo import SAMPLE_BOX, SAMPLE_IMAGE


def clip(shared: Path) -> tuple[list[np.ndarray], list[tuple[float, float] | None], list[float]]:
    img = read_image(SAMPLE_IMAGE)
    x, y, w, h = (int(v) for v in SAMPLE_BOX)
    a = img[max(0, y - 40): y + h + 60, max(0, x - 60): x + w + 60]
    chips = sorted((shared / "utkface").glob("*.jpg"))
    b = cv2.resize(read_image(chips[len(chips) // 3]), (256, 256), interpolation=cv2.INTER_CUBIC)
    frames, centres, widths = [], [], []
    for t in range(40):
        canvas = np.full((400, 640, 3), 80, np.uint8)
        if t < 10:
            p, ox, oy, cx, cy, fw = a, 20, 30, 20 + 60 + w / 2, 30 + 40 + h / 2, float(w)
        else:
            p, oy = b, 70
            ox = 360 if t < 20 else (360 - 40 * (t - 19) if t < 30 else -40 + 90 * (t - 29))
            cx, cy, fw = ox + 128, oy + 128, 150.0
        x0, x1 = max(0, ox), min(640, ox + p.shape[1])
        if x1 > x0:
            canvas[oy:oy + p.shape[0], x0:x1] = p[:, x0 - ox:x1 - ox]
        visible = 0 <= cx < 640 - 0.25 * fw and cx > 0.25 * fw
        frames.append(canvas)
        centres.append((cx, cy) if visible else None)
        widths.append(fw)
    return frames, centres, widths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--model", default="default")
    ap.add_argument("--redetect-every", type=int, default=3)
    a = ap.parse_args()
    frames, centres, widths = clip(Path(a.shared))
    p = LandmarkPredictor.from_pretrained(a.model, device="cpu")
    wrong = []
    for face, c, fw in zip(p.track(frames, redetect_every=a.redetect_every), centres, widths):
        if c is None:
            wrong.append(face is not None)
        elif face is None:
            wrong.append(True)
        else:
            wrong.append(bool(np.linalg.norm(face.points.mean(0) - np.array(c)) > 0.4 * fw))
    segs = {"face A (0-9)": wrong[:10], "after the cut (10-19)": wrong[10:20], "fast move (20-29)": wrong[20:30],
            "leaving the frame (30-39)": wrong[30:]}
    print(json.dumps({"redetect_every": a.redetect_every, "wrong_frames": {k: int(sum(v)) for k, v in segs.items()},
                      "per_frame": "".join("x" if w else "." for w in wrong)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
