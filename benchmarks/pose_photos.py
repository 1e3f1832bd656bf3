"""Faces at every head pose through ``fabrec predict``: faces found, NME and head-pose error by
|yaw| bin on the held-out part of the shared AFLW2000-3D half (``face_crops.aflw_held_out``).

Runs the command line as a user would (``fabrec predict FILES --format jsonl``), then matches
the annotated face to the predicted face whose points' centre lies inside the annotation's
extent grown by half its size each way (nearest if several). NME: mean point error over the
square root of the annotation extent's width x height (AFLW2000-3D's usual normaliser; its
3-D point convention at large yaw, see ``../shared/data/README.md``). Head pose: mean absolute
error of yaw, pitch and roll against the data set's fitted pose, over the faces whose three
angles lie within +-99 degrees; also from the annotated points themselves (what the mean-face
fit can do with perfect points).

    python benchmarks/pose_photos.py --out runs/bench/pose [--predict-args="--rotations all"]
    python benchmarks/pose_photos.py --part training --out runs/bench/pose_train   # for choosing settings
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aflw_parts import BINS, aflw_held_out, bin_of, match  # noqa: E402

from fabrec.datasets.pts import read_pts  # noqa: E402
from fabrec.head_pose import head_pose  # noqa: E402
from fabrec.io import write_json_atomic  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="default")
    ap.add_argument("--predict-args", default="", help="more options for fabrec predict")
    ap.add_argument("--dtype", default="fp32", help="fabrec predict --dtype: fp32 (the published points, the "
                    "README's accuracy tables) or auto (the default path of this machine)")
    ap.add_argument("--part", choices=("held-out", "training"), default="held-out",
                    help="held-out: the 30 %% measured for the README; training: the rest (for choosing settings)")
    a = ap.parse_args()
    out = Path(a.out)
    poses = json.loads((SHARED / "aflw2000" / "poses.json").read_text())
    files = [p for p in sorted((SHARED / "aflw2000").glob("*.jpg")) if aflw_held_out(p.stem) == (a.part == "held-out")]
    cmd = [sys.executable, "-m", "fabrec", "predict", *map(str, files), "--model", a.model, "--out", str(out / "pred"),
           "--format", "jsonl", "--no-images", "--no-progress", "--dtype", a.dtype, *shlex.split(a.predict_args)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    recs = {Path(r["file"]).stem: r for r in map(json.loads, (out / "pred" / "predictions.jsonl").read_text().splitlines())}
    rows: dict[str, dict[str, list]] = {f"{lo}-{hi}": {"found": [], "nme": [], "pose": [], "pose_gt_points": []}
                                       for lo, hi in BINS}
    for f in files:
        g, truth = poses[f.stem], read_pts(f.with_suffix(".pts"))
        row = rows[bin_of(g["yaw"])]
        face = match(recs[f.stem].get("faces", []), truth)
        row["found"].append(face is not None)
        in_range = max(abs(v) for v in g.values()) <= 99
        gt = np.array([g["yaw"], g["pitch"], g["roll"]])
        if in_range:
            hp = head_pose(truth, (450, 450))
            row["pose_gt_points"].append(np.abs(np.array(hp) - gt) if hp is not None else np.full(3, np.nan))
        if face is None:
            continue
        w, h = np.ptp(truth, 0)
        row["nme"].append(float(np.linalg.norm(np.array(face["points"]) - truth, axis=1).mean() / np.sqrt(w * h)))
        if in_range:
            hp = face.get("head_pose")
            row["pose"].append(np.abs(np.array([hp[k] for k in ("yaw", "pitch", "roll")]) - gt)
                               if hp else np.full(3, np.nan))

    def mae(v: list) -> dict | None:
        m = np.array(v)
        if not len(m):
            return None
        ok = np.isfinite(m).all(1)
        e = m[ok].mean(0)
        return {"yaw": round(float(e[0]), 2), "pitch": round(float(e[1]), 2), "roll": round(float(e[2]), 2),
                "mean": round(float(e.mean()), 2), "faces": int(ok.sum())}

    res = {"command": f"fabrec predict FILES --format jsonl --dtype {a.dtype} " + a.predict_args, "model": a.model,
           "photos": len(files), "part": ("held-out 30% of the shared AFLW2000-3D half (face_crops.aflw_held_out)"
                                          if a.part == "held-out" else "training part of the shared AFLW2000-3D half "
                                          "(everything face_crops.aflw_held_out keeps out of the held-out 30%)"),
           "normaliser": "sqrt(w*h) of the 68 annotated points' extent", "wall_s": round(wall, 1), "bins": {}}
    for k, r in rows.items():
        res["bins"][k] = {"faces": len(r["found"]), "found": int(sum(r["found"])),
                          "found_pct": round(100 * float(np.mean(r["found"])), 1),
                          "nme_found_pct": round(100 * float(np.mean(r["nme"])), 2) if r["nme"] else None,
                          "head_pose_mae": mae(r["pose"]), "head_pose_mae_from_annotated_points": mae(r["pose_gt_points"])}
    allpose = [v for r in rows.values() for v in r["pose"]]
    res["head_pose_mae_all"] = mae(allpose)
    write_json_atomic(out / "summary.json", res)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
