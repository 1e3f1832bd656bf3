"""Fit and measure the face filter of a model (``fabrec/face_filter.py``) on real face and
non-face crops (``benchmarks/face_crops.py``), as ``fabrec predict`` makes them.

    python benchmarks/face_filter.py --out runs/face_filter                    # measure
    python benchmarks/face_filter.py --out runs/face_filter --install runs/mine.safetensors
                               # and write the model file with the filter (and its fitting record) inside

Fitting: HELEN-train, AFLW2000-3D's training part and UTKFace's training part (faces), and the
non-face crops of the HELEN-train and AFLW training photos. The threshold keeps 99.5 % of the
fitting faces, scored out of fold (5 folds). Measuring, never fitted on: the AFW photos, the
held-out part of AFLW2000-3D (by |yaw| bin) and of UTKFace (ages 0-2 apart), and the non-face
crops of the AFW and held-out AFLW photos. Writes ``face_filter.json`` (the measurements),
``roc.png``, ``accepted_non_faces.png`` and ``rejected_faces.png`` into ``--out``; the features
are cached in ``features.npz`` there (``--refit`` reuses them).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from face_crops import face_region, non_face_regions, other_faces, photos, strips  # noqa: E402

from fabrec.face_filter import FaceFilter, face_features, fit_logistic  # noqa: E402
from fabrec.io import write_image_atomic, write_json_atomic  # noqa: E402
from fabrec.model_file import is_bundled, with_face_filter  # noqa: E402
from fabrec.predict import LandmarkPredictor, Region  # noqa: E402
from fabrec.transforms import crop_matrix, warp  # noqa: E402
from fabrec.weights import bundled, sha256  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FIT_SOURCES, TEST_SOURCES = ("helen", "aflw", "utk"), ("afw", "aflw", "utk")


def collect(pred: LandmarkPredictor, held_out: bool, utk_limit: int) -> dict[str, list]:
    """Crops of one part: features, labels (1 face), group tags, thumbnails, detector scores."""
    rng = np.random.default_rng(1 if held_out else 0)
    s = pred.model.image_size
    rows: dict[str, list] = {"codes": [], "conf": [], "face": [], "tag": [], "thumb": [], "score": [], "yaw": []}

    def add(rgb: np.ndarray, regs: list[Region], face: int, tag: str, yaw: float | None) -> None:
        crops = [warp(rgb, crop_matrix(r.crop, s), s) for r in regs]
        for r, c, got in zip(regs, crops, pred.model.read_crops(crops, 32, reconstruct=False)):
            rows["codes"].append(got.codes)
            rows["conf"].append(got.confidence)
            rows["face"].append(face)
            rows["tag"].append(tag)
            rows["thumb"].append(c[::2, ::2])
            rows["score"].append(r.score)
            rows["yaw"].append(np.nan if yaw is None else yaw)

    for source in TEST_SOURCES if held_out else FIT_SOURCES:
        n = 0
        for ph in photos(SHARED, source, held_out):
            if source == "utk":
                if n >= utk_limit and not ph.name.split("_")[0] in ("0", "1", "2"):
                    continue
                n += 1
            reg = face_region(pred, ph)
            if reg is not None:
                age = ph.name.split("_")[0]
                tag = f"utk{'_infant' if age in ('0', '1', '2') else ''}" if source == "utk" else source
                add(ph.rgb, [reg], 1, tag, ph.yaw)
            others = other_faces(pred, ph)
            for st, off in strips(ph):
                add(st, non_face_regions(pred, st, off, others, rng, 1 if held_out else 3, ph.rgb.shape[1::-1]), 0,
                    f"{source}_strip", None)
        print(f"  {'held-out' if held_out else 'fitting'} {source}: {len(rows['face'])} crops so far", flush=True)
    return rows


def as_arrays(rows: dict[str, list]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in rows.items()}


def pose_weights(d: dict[str, np.ndarray], profile: float) -> np.ndarray:
    """Sample weights: ``profile`` for faces at 60-90 degrees of yaw, its square root at 30-60,
    1 otherwise (profiles are few among the faces, and the filter must keep them)."""
    yaw = np.nan_to_num(d["yaw"], nan=0.0)
    return np.where(d["face"] == 1, np.where(yaw >= 60, profile, np.where(yaw >= 30, np.sqrt(profile), 1.0)), 1.0)


def out_of_fold(x: np.ndarray, y: np.ndarray, l2: float, sw: np.ndarray, folds: int = 5) -> np.ndarray:
    idx = np.arange(len(y)) % folds
    p = np.zeros(len(y))
    for k in range(folds):
        w, b, m, s = fit_logistic(x[idx != k], y[idx != k], l2, sw[idx != k])
        p[idx == k] = 1 / (1 + np.exp(-(((x[idx == k] - m) / s) @ w + b)))
    return p


def measure(scores: np.ndarray, d: dict[str, np.ndarray], threshold: float) -> dict:
    kept = scores >= threshold
    face, tag, yaw = d["face"] == 1, d["tag"], d["yaw"]
    out: dict = {"non_faces": int((~face).sum()), "non_faces_accepted": int((kept & ~face).sum()),
                 "non_faces_accepted_pct": round(100 * float(kept[~face].mean()), 2)}
    groups = {t: tag == t for t in sorted(set(tag[face]))}
    if np.isfinite(yaw).any():
        for lo, hi in ((0, 30), (30, 60), (60, 90)):
            groups[f"aflw |yaw| {lo}-{hi}"] = (tag == "aflw") & (yaw >= lo) & (yaw < hi if hi < 90 else yaw <= 180)
    for t, m in groups.items():
        if m.any():
            out[f"{t} kept"] = f"{int(kept[m].sum())}/{int(m.sum())}"
    out["faces_kept_pct"] = round(100 * float(kept[face].mean()), 2)
    return out


def sheet(thumbs: list[np.ndarray], cols: int = 12) -> np.ndarray:
    if not thumbs:
        return np.zeros((8, 8, 3), np.uint8)
    s = thumbs[0].shape[0]
    rows = (len(thumbs) + cols - 1) // cols
    out = np.full((rows * s, cols * s, 3), 255, np.uint8)
    for i, t in enumerate(thumbs):
        out[(i // cols) * s:(i // cols + 1) * s, (i % cols) * s:(i % cols + 1) * s] = t
    return out


def roc_plot(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for name, (pos, neg) in curves.items():
        th = np.unique(np.r_[pos, neg])[::-1]
        ax.plot([np.mean(neg >= t) * 100 for t in th], [np.mean(pos >= t) * 100 for t in th], label=name)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("non-face crops accepted (%)")
    ax.set_ylabel("faces kept (%)")
    ax.set_ylim(80, 100.5)
    ax.set_title("Face filter on held-out crops (AFW, AFLW2000-3D part, UTKFace part)", fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--out", required=True)
    ap.add_argument("--utk", type=int, default=600, help="UTKFace chips per part beyond the 0-2-year-olds")
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--profile-weight", type=float, default=4.0, help="weight of 60-90 degree faces in the fit")
    ap.add_argument("--keep", type=float, default=99.5, help="%% of the fitting faces the threshold keeps")
    ap.add_argument("--refit", action="store_true", help="reuse the cached features")
    ap.add_argument("--install", metavar="OUT.safetensors", help="write the model file with this filter inside it")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "features.npz"
    pred = LandmarkPredictor.from_pretrained(a.model, device="cpu", quality=False, min_score=0.3,
                                             min_confidence=0.0, face_filter=False)
    t0 = time.perf_counter()
    if a.refit and cache.is_file():
        z = np.load(cache)
        fit = {k[4:]: z[k] for k in z.files if k.startswith("fit_")}
        test = {k[5:]: z[k] for k in z.files if k.startswith("test_")}
    else:
        fit, test = as_arrays(collect(pred, False, a.utk)), as_arrays(collect(pred, True, a.utk))
        np.savez_compressed(cache, **{f"fit_{k}": v for k, v in fit.items()}, **{f"test_{k}": v for k, v in test.items()})
    xf, yf = face_features(fit["codes"], fit["conf"]), fit["face"].astype(float)
    sw = pose_weights(fit, a.profile_weight)
    oof = out_of_fold(xf, yf, a.l2, sw)
    threshold = float(np.percentile(oof[yf == 1], 100 - a.keep))
    w, b, m, s = fit_logistic(xf, yf, a.l2, sw)
    model_path = bundled(a.model) if is_bundled(a.model) else Path(a.model)
    res = {"model": a.model, "fitting_crops": {"faces": int(yf.sum()), "non_faces": int((yf == 0).sum())},
           "l2": a.l2, "profile_weight": a.profile_weight, "threshold": round(threshold, 4), "keep_fitting_faces_pct": a.keep}
    flt = FaceFilter(w, b, m, s, threshold, sha256(model_path), res)
    score = flt.score(test["codes"], test["conf"])
    mc = test["conf"].mean(1)
    res["held_out"] = {"face filter": measure(score, test, threshold),
                       "mean confidence >= 0.35 (before)": measure(mc, test, 0.35)}
    face = test["face"] == 1
    res["held_out"]["face filter"]["auc"] = round(float(
        (score[face][:, None] > score[~face][None]).mean()), 4)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    roc_plot(out / "roc.png", {"face filter (codes + confidence)": (score[face], score[~face]),
                               "mean confidence": (mc[face], mc[~face])})
    order = np.argsort(-score)
    acc = [test["thumb"][i] for i in order if not face[i] and score[i] >= threshold][:48]
    rej = [test["thumb"][i] for i in order[::-1] if face[i] and score[i] < threshold][:48]
    write_image_atomic(out / "accepted_non_faces.png", sheet(acc))
    write_image_atomic(out / "rejected_faces.png", sheet(rej))
    write_json_atomic(out / "face_filter.json", res)
    print(json.dumps(res["held_out"], indent=1))
    if a.install:
        print(f"wrote {a.install}: SHA-256 {with_face_filter(a.model, flt, a.install)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
