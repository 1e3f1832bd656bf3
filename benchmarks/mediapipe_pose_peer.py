"""MediaPipe 0.10.14's legacy face mesh as a peer on the held-out AFLW2000-3D photos, measured
as ``pose_photos.py`` measures fabrec: whole photos, its own face finding (static-image mode,
up to 5 faces), the 468-point mesh mapped to the 68 iBUG points (``mediapipe_peer.MP68``), the
annotated face matched by the points' centre, NME over √(w·h) of the annotation's extent, and
head pose from those 68 points by the same mean face + PnP (``fabrec.head_pose``).
Run it in its own venv (MediaPipe needs numpy<2):

    python3.11 -m venv runs/mpvenv && runs/mpvenv/bin/pip install "mediapipe==0.10.14" "numpy<2" "opencv-python-headless<5"
    PYTHONPATH=src runs/mpvenv/bin/python benchmarks/mediapipe_pose_peer.py --json benchmarks/results/pose_photos_mediapipe.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aflw_parts import BINS, aflw_held_out, bin_of  # noqa: E402
from mediapipe_peer import MP68  # noqa: E402

from fabrec.datasets.pts import read_pts  # noqa: E402
from fabrec.head_pose import head_pose  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> int:
    import mediapipe as mp

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    poses = json.loads((SHARED / "aflw2000" / "poses.json").read_text())
    files = [p for p in sorted((SHARED / "aflw2000").glob("*.jpg")) if aflw_held_out(p.stem)]
    rows = {f"{lo}-{hi}": {"found": [], "nme": [], "pose": []} for lo, hi in BINS}
    t0 = time.perf_counter()
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=5) as mesh:
        for f in files:
            bgr = cv2.imread(str(f))
            h, w = bgr.shape[:2]
            got = mesh.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).multi_face_landmarks or []
            faces = [np.array([[lm.landmark[i].x * w, lm.landmark[i].y * h] for i in MP68]) for lm in got]
            truth, g = read_pts(f.with_suffix(".pts")), poses[f.stem]
            (x0, y0), (x1, y1) = truth.min(0), truth.max(0)
            gx, gy = (x1 - x0) / 2, (y1 - y0) / 2
            inside = [p for p in faces if x0 - gx <= p.mean(0)[0] <= x1 + gx and y0 - gy <= p.mean(0)[1] <= y1 + gy]
            row = rows[bin_of(g["yaw"])]
            row["found"].append(bool(inside))
            if not inside:
                continue
            p = min(inside, key=lambda q: float(np.linalg.norm(q.mean(0) - truth.mean(0))))
            row["nme"].append(float(np.linalg.norm(p - truth, axis=1).mean() / np.sqrt((x1 - x0) * (y1 - y0))))
            if max(abs(v) for v in g.values()) <= 99:
                hp = head_pose(p, (w, h))
                row["pose"].append(np.abs(np.array(hp) - [g["yaw"], g["pitch"], g["roll"]]) if hp else [np.nan] * 3)
    res = {"tool": f"mediapipe {mp.__version__} legacy face mesh (static images, its own detector), 468 -> 68 points",
           "photos": len(files), "part": "held-out 30% of the shared AFLW2000-3D half (face_crops.aflw_held_out)",
           "normaliser": "sqrt(w*h) of the 68 annotated points' extent", "wall_s": round(time.perf_counter() - t0, 1),
           "bins": {}}
    allpose = []
    for k, r in rows.items():
        m = np.array(r["pose"], float).reshape(-1, 3)
        ok = np.isfinite(m).all(1)
        allpose += list(m[ok])
        res["bins"][k] = {"faces": len(r["found"]), "found": int(sum(r["found"])),
                          "nme_found_pct": round(100 * float(np.mean(r["nme"])), 2) if r["nme"] else None,
                          "head_pose_mae": {n: round(float(v), 2) for n, v in zip(("yaw", "pitch", "roll"), m[ok].mean(0))}
                          | {"mean": round(float(m[ok].mean()), 2), "faces": int(ok.sum())} if ok.any() else None}
    al = np.array(allpose)
    res["head_pose_mae_all"] = {"mean": round(float(al.mean()), 2), "faces": len(al)}
    Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
