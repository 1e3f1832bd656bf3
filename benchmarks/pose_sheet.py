"""A contact sheet of posed faces: ``fabrec predict`` on held-out AFLW2000-3D photos
(``face_crops.aflw_held_out``), the annotated pictures it writes (points, box, head-pose axes)
tiled by |yaw| bin, every k-th photo of each bin so the choice is not ours.

    python benchmarks/pose_sheet.py --out docs/pose_faces.jpg [--model M] [--per-bin 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from face_crops import aflw_held_out  # noqa: E402

from fabrec.io import write_image_atomic  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
BINS = ((0, 30), (30, 60), (60, 100))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="default")
    ap.add_argument("--per-bin", type=int, default=4)
    ap.add_argument("--side", type=int, default=240, help="tile side in pixels")
    a = ap.parse_args()
    poses = json.loads((SHARED / "aflw2000" / "poses.json").read_text())
    held = [p for p in sorted((SHARED / "aflw2000").glob("*.jpg")) if aflw_held_out(p.stem)]
    rows = []
    for lo, hi in BINS:
        inbin = [p for p in held if lo <= abs(poses[p.stem]["yaw"]) < hi]
        step = max(1, len(inbin) // a.per_bin)
        rows.append(inbin[::step][: a.per_bin])
    with tempfile.TemporaryDirectory() as tmp:
        files = [str(p) for row in rows for p in row]
        subprocess.run([sys.executable, "-m", "fabrec", "predict", *files, "--model", a.model, "--out", tmp,
                        "--no-progress"], check=True, stdout=subprocess.DEVNULL)
        tiles = []
        for row in rows:
            line = []
            for p in row:
                img = Path(tmp) / f"{p.stem}_landmarks.jpg"
                pic = cv2.imread(str(img if img.exists() else p))
                pic = cv2.resize(pic, (a.side, a.side), interpolation=cv2.INTER_AREA)
                g = poses[p.stem]
                cv2.putText(pic, f"yaw {g['yaw']:.0f}", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 2)
                line.append(pic)
            line += [np.zeros_like(line[0])] * (a.per_bin - len(line))
            tiles.append(np.hstack(line))
        write_image_atomic(a.out, cv2.cvtColor(np.vstack(tiles), cv2.COLOR_BGR2RGB))
    print(a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
