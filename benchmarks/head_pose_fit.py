"""Fit and measure the head-pose correction of a model (``fabrec.head_pose.PoseCorrection``) on
the shared AFLW2000-3D half, through the predictor users run (YuNet, the model's framing and filter).

    python benchmarks/head_pose_fit.py --out runs/head_pose                       # fit and measure
    python benchmarks/head_pose_fit.py --out runs/head_pose --install runs/mine.safetensors

Fitting: the faces of the training part (``aflw_parts``: everything but the held-out 30 %) whose
three angles lie within +-99 degrees, matched to the predicted face as ``pose_photos.py`` does.
The ridge and the kernel width are chosen by 5-fold cross-validation on that part alone; the
held-out part is only measured (by |yaw| bin, plain PnP beside the correction). Writes
``head_pose.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aflw_parts import BINS, aflw_held_out, bin_of, match  # noqa: E402

from fabrec.datasets.pts import read_pts  # noqa: E402
from fabrec.head_pose import (HeadPose, PoseCorrection, face_pose, fit_correction, head_pose,  # noqa: E402
                              pose_features, turned)
from fabrec.io import read_image, write_json_atomic  # noqa: E402
from fabrec.model_file import with_values  # noqa: E402
from fabrec.predict import LandmarkPredictor  # noqa: E402
from fabrec.transforms import crop_matrix  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LAMS, GAMMAS = (0.3, 1.0, 3.0), (0.5, 1.0, 2.0, 4.0)
ANGLES = ("yaw", "pitch", "roll")


def collect(pred: LandmarkPredictor, held_out: bool) -> dict[str, np.ndarray]:
    """The matched faces of one part: photo points, crop points, crop roll, truth, photo size."""
    poses = json.loads((SHARED / "aflw2000" / "poses.json").read_text())
    s = pred.model.image_size
    rows: dict[str, list] = {"points": [], "crop_points": [], "roll": [], "truth": [], "size": []}
    for jpg in sorted((SHARED / "aflw2000").glob("*.jpg")):
        g = poses[jpg.stem]
        if aflw_held_out(jpg.stem) != held_out or max(abs(v) for v in g.values()) > 99:
            continue
        rgb, pts = read_image(jpg), read_pts(jpg.with_suffix(".pts"))
        faces = [{"points": f.points, "face": f} for f in pred.predict(rgb)]
        m = match(faces, pts)
        if m is None:
            continue
        f = m["face"]
        a = crop_matrix(f.crop, s)
        rows["points"].append(f.points)
        rows["crop_points"].append(f.points @ a[:2, :2].T + a[:2, 2])
        rows["roll"].append(f.crop.angle)
        rows["truth"].append([g[k] for k in ANGLES])
        rows["size"].append(rgb.shape[1::-1])
    return {k: np.asarray(v, np.float64) for k, v in rows.items()}


def crop_poses(d: dict[str, np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray]:
    """PnP in each crop ``(N, 3)`` and the truth seen in the crop's frame ``(N, 3)``."""
    pnp = np.array([head_pose(c, (size, size)) or (np.nan,) * 3 for c in d["crop_points"]], np.float64)
    truth = np.array([turned(HeadPose(*t), -np.degrees(r)) for t, r in zip(d["truth"], d["roll"])])
    return pnp, truth


def mae_by_bin(pred: np.ndarray, truth: np.ndarray) -> dict:
    e = np.abs(pred - truth)
    out = {"all": {**{k: round(float(v), 2) for k, v in zip(ANGLES, e.mean(0))}, "mean": round(float(e.mean()), 2),
                   "faces": len(e)}}
    bins = np.array([bin_of(y) for y in truth[:, 0]])
    for lo, hi in BINS:
        m = bins == f"{lo}-{hi}"
        if m.any():
            out[f"{lo}-{hi}"] = {"mean": round(float(e[m].mean()), 2), "faces": int(m.sum())}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--out", required=True)
    ap.add_argument("--install", metavar="OUT.safetensors", help="write the model file with this correction inside it")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pred = LandmarkPredictor.from_pretrained(a.model, device="cpu", quality=False)
    s = pred.model.image_size
    fit, test = collect(pred, False), collect(pred, True)
    pnp, truth = crop_poses(fit, s)
    ok = np.isfinite(pnp).all(1)
    feats, resid = pose_features(pnp[ok], fit["crop_points"][ok]), (truth - pnp)[ok]
    folds = np.arange(len(feats)) % 5
    grid = {}
    for lam in LAMS:
        for gamma in GAMMAS:
            err = np.zeros_like(resid)
            for k in range(5):
                tr, te = folds != k, folds == k
                err[te] = np.abs(fit_correction(feats[tr], resid[tr], lam, gamma).residual(feats[te]) - resid[te])
            grid[f"lam={lam} gamma={gamma}"] = round(float(err.mean()), 3)
    lam, gamma = min(((lam, g) for lam in LAMS for g in GAMMAS), key=lambda v: grid[f"lam={v[0]} gamma={v[1]}"])
    res: dict = {"model": a.model, "fitting": "AFLW2000-3D shared half, training part (not aflw_held_out), "
                 "faces found by fabrec's predictor, angles within +-99 degrees", "fitting_faces": int(ok.sum()),
                 "plain_pnp_mae_fitting_part": round(float(np.abs(resid).mean()), 3),
                 "cross_validated_mae": grid, "lam": lam, "gamma": gamma}
    corr = fit_correction(feats, resid, lam, gamma, res)
    plain = np.array([head_pose(p, tuple(map(int, sz))) or (np.nan,) * 3 for p, sz in zip(test["points"], test["size"])])
    fixed = np.array([face_pose(p, tuple(map(int, sz)), c, s, r, corr) or (np.nan,) * 3
                      for p, sz, c, r in zip(test["points"], test["size"], test["crop_points"], test["roll"])])
    keep = np.isfinite(plain).all(1) & np.isfinite(fixed).all(1)
    res["held_out"] = {"plain PnP": mae_by_bin(plain[keep], test["truth"][keep]),
                       "corrected": mae_by_bin(fixed[keep], test["truth"][keep])}
    res["seconds"] = round(time.perf_counter() - t0, 1)
    corr = PoseCorrection(corr.support, corr.alpha, corr.offset, corr.mean, corr.scale, corr.gamma, res)
    write_json_atomic(out / "head_pose.json", res)
    print(json.dumps(res, indent=1))
    if a.install:
        print(f"wrote {a.install}: SHA-256 {with_values(a.model, a.install, head_pose=corr.to_dict())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
