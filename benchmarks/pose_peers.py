"""Peers on the held-out AFLW2000-3D photos, measured as ``pose_photos.py`` measures fabrec:
whole photos, each tool's own face finding, the annotated face matched by the points' centre
(``aflw_parts.match``), NME over √(w·h) of the annotation's extent, and head pose from the
tool's 68 points by the same mean face + PnP (``fabrec.head_pose.head_pose``).

- ``--tool mediapipe``: MediaPipe 0.10.14's legacy face mesh (static-image mode, up to 5
  faces), its 468 points mapped to the 68 iBUG points (``mediapipe_peer.MP68``). Run it in its
  own venv (MediaPipe needs numpy<2):

      python3.11 -m venv runs/mpvenv && runs/mpvenv/bin/pip install "mediapipe==0.10.14" "numpy<2" "opencv-python-headless<5"
      PYTHONPATH=src runs/mpvenv/bin/python benchmarks/pose_peers.py --tool mediapipe --json benchmarks/results/pose_photos_mediapipe.json

- ``--tool dlib``: dlib's HOG detector (one upsampling) and its 68-point shape predictor
  (``pip install dlib-bin face-recognition-models``):

      python benchmarks/pose_peers.py --tool dlib --json benchmarks/results/pose_photos_dlib.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aflw_parts import BINS, aflw_held_out, bin_of, match  # noqa: E402

from fabrec.datasets.pts import read_pts  # noqa: E402
from fabrec.head_pose import head_pose  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
Finder = Callable[[np.ndarray], list[np.ndarray]]  # RGB photo -> each face's (68, 2) points


def mediapipe_finder() -> tuple[str, Finder]:
    import mediapipe as mp
    from mediapipe_peer import MP68

    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=5)

    def find(rgb: np.ndarray) -> list[np.ndarray]:
        h, w = rgb.shape[:2]
        got = mesh.process(rgb).multi_face_landmarks or []
        return [np.array([[lm.landmark[i].x * w, lm.landmark[i].y * h] for i in MP68]) for lm in got]

    return f"mediapipe {mp.__version__} legacy face mesh (static images, its own detector), 468 -> 68 points", find


def dlib_finder() -> tuple[str, Finder]:
    import warnings

    import dlib
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # face_recognition_models imports pkg_resources
        import face_recognition_models

    det = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())

    def find(rgb: np.ndarray) -> list[np.ndarray]:
        return [np.array([[p.x, p.y] for p in sp(rgb, r).parts()], np.float64) for r in det(rgb, 1)]

    return f"dlib {dlib.__version__} HOG detector (1 upsampling) + shape_predictor_68_face_landmarks", find


FINDERS = {"mediapipe": mediapipe_finder, "dlib": dlib_finder}


def measure(tool: str, find: Finder) -> dict:
    """Faces found, NME and head-pose MAE by |yaw| bin for one tool on the held-out photos."""
    poses = json.loads((SHARED / "aflw2000" / "poses.json").read_text())
    files = [p for p in sorted((SHARED / "aflw2000").glob("*.jpg")) if aflw_held_out(p.stem)]
    rows = {f"{lo}-{hi}": {"found": [], "nme": [], "pose": []} for lo, hi in BINS}
    t0 = time.perf_counter()
    for f in files:
        rgb = cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)
        truth, g = read_pts(f.with_suffix(".pts")), poses[f.stem]
        p = match(find(rgb), truth, points=lambda q: q)
        row = rows[bin_of(g["yaw"])]
        row["found"].append(p is not None)
        if p is None:
            continue
        w, h = np.ptp(truth, 0)
        row["nme"].append(float(np.linalg.norm(p - truth, axis=1).mean() / np.sqrt(w * h)))
        if max(abs(v) for v in g.values()) <= 99:
            hp = head_pose(p, rgb.shape[1::-1])
            row["pose"].append(np.abs(np.array(hp) - [g["yaw"], g["pitch"], g["roll"]]) if hp else [np.nan] * 3)
    res = {"tool": tool, "photos": len(files), "part": "held-out 30% of the shared AFLW2000-3D half (aflw_parts.aflw_held_out)",
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
    al = np.array(allpose).reshape(-1, 3)
    res["head_pose_mae_all"] = {n: round(float(v), 2) for n, v in zip(("yaw", "pitch", "roll"), al.mean(0))} | {
        "mean": round(float(al.mean()), 2), "faces": len(al)}
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tool", choices=sorted(FINDERS), required=True)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    res = measure(*FINDERS[a.tool]())
    Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
