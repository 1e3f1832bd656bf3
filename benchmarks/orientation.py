"""How the orientation search (``--rotations all``) picks a face's orientation, on real photos
turned by 0, 90, 180 and 270 degrees: for every candidate orientation of the annotated face,
what the model says of it (mean point confidence, the face filter's score) and how far its
points are from the truth; then how often each way of choosing picks the right one, and whether
choosing ever makes a face worse than the upright search would.

Photos: the shared AFLW2000-3D half (every head pose; the training part for choosing a rule,
the held-out part of ``face_crops.aflw_held_out`` for the numbers) and HELEN-train / AFW (300-W).
The right orientation of a candidate: its crop's "up" within 45 degrees of the annotation's
chin-to-eyes direction. NME: over the square root of the annotation extent's width x height.
``--fit`` fits the model's orientation rule (``fabrec.orientation.OrientationChooser``) on the
fitting parts only and measures it beside the plain rule; ``--install OUT`` writes the model
file with it inside. Candidates are cached in ``candidates.json`` under ``--out``.

    python benchmarks/orientation.py --out runs/bench/orientation [--model M] [--fit | --install OUT.safetensors]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))

from face_crops import photos  # noqa: E402

from fabrec.face_filter import FaceFilter, fit_logistic  # noqa: E402
from fabrec.transforms import crop_to_image  # noqa: E402
from fabrec.model_file import with_values  # noqa: E402
from fabrec.orientation import OrientationChooser, choose, is_upright  # noqa: E402
from fabrec.io import write_json_atomic  # noqa: E402
from fabrec.predict import LandmarkPredictor  # noqa: E402
from fabrec.transforms import crop_matrix, warp  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TURNS = (0, 90, 180, 270)
_CV = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
log = logging.getLogger("orientation")


def turned(rgb: np.ndarray, pts: np.ndarray, turn: int) -> tuple[np.ndarray, np.ndarray]:
    """The photo turned clockwise by ``turn`` degrees and its points with it."""
    if turn == 0:
        return rgb, pts
    h, w = rgb.shape[:2]
    x, y = pts[:, 0], pts[:, 1]
    if turn == 90:
        q = np.stack([h - 1 - y, x], 1)
    elif turn == 180:
        q = np.stack([w - 1 - x, h - 1 - y], 1)
    else:
        q = np.stack([y, w - 1 - x], 1)
    return np.ascontiguousarray(cv2.rotate(rgb, _CV[turn])), q


def up_error(angle: float, pts: np.ndarray) -> float:
    """Degrees between a crop's "up" (crop angle ``angle``) and the points' chin-to-eyes direction."""
    up = np.array([math.sin(angle), -math.cos(angle)])
    d = pts[36:48].mean(0) - pts[8]
    c = float(np.dot(up, d) / (np.linalg.norm(d) + 1e-9))
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def candidates(pred: LandmarkPredictor, rgb: np.ndarray, truth: np.ndarray) -> list[dict]:
    """Every candidate orientation of the detection of the annotated face (empty if missed)."""
    regions = pred.crops_for(rgb, None)
    (x0, y0), (x1, y1) = truth.min(0), truth.max(0)
    inside = [r for r in regions if x0 <= r.box[0] + r.box[2] / 2 <= x1 and y0 <= r.box[1] + r.box[3] / 2 <= y1]
    if not inside:
        return []
    group = max(inside, key=lambda r: r.score).group
    regs = [r for r in regions if r.group == group]
    s = pred.model.image_size
    mats = [crop_matrix(r.crop, s) for r in regs]
    crops = [warp(rgb, m, s) for m in mats]
    norm = math.sqrt((x1 - x0) * (y1 - y0))
    out = []
    for r, m, c in zip(regs, mats, pred.model.read_crops(crops, 32, False)):
        pts = crop_to_image(c.points, m)
        fs = float(pred.face_filter.score(c.codes[None], c.confidence[None])[0]) if pred.face_filter else float("nan")
        out.append({"conf": float(c.confidence.mean()), "det": float(r.score), "face_score": fs,
                    "angle": math.degrees(r.crop.angle), "codes": np.round(c.codes, 4).tolist(),
                    "conf_std": float(c.confidence.std()),
                    "up_error": up_error(r.crop.angle, truth),
                    "nme": float(np.linalg.norm(pts - truth, axis=1).mean() / norm)})
    return out


def collect(model: str, limit: int, min_yaw: float = 30.0, held_out_only: bool = False) -> list[dict]:
    """One record per photo, part and turn: its candidates."""
    pred = LandmarkPredictor.from_pretrained(model, rotations=TURNS, quality=False)
    upright = LandmarkPredictor.from_pretrained(model, quality=False)
    recs = []
    jobs = [(src, held) for src in ("aflw", "helen", "afw") for held in (False, True)
            if not (src == "helen" and held) and not (src == "afw" and not held) and (held or not held_out_only)]
    for src, held in jobs:
        items = list(photos(SHARED, src, held))
        if src == "aflw":  # every face past ``min_yaw`` degrees of yaw, the first ``limit`` frontal ones
            frontal = [ph for ph in items if ph.yaw < 30][:limit]
            items = [ph for ph in items if ph.yaw >= min_yaw or any(ph is f for f in frontal)]
        else:
            items = items[:limit]
        for ph in tqdm(items, desc=f"{src}{' held-out' if held else ''}", dynamic_ncols=True):
            for t in TURNS:
                rgb, truth = turned(ph.rgb, ph.points, t)
                cands = candidates(pred, rgb, truth)
                up = candidates(upright, rgb, truth) if t == 0 else []
                recs.append({"source": src, "held_out": held, "name": ph.name, "yaw": ph.yaw, "turn": t,
                             "candidates": cands, "upright": up})
    return recs


def features(cands: list[dict]) -> np.ndarray:
    """The face filter's features of candidates (codes, their squares, confidence mean and spread)."""
    z = np.array([c["codes"] for c in cands], np.float64)
    return np.concatenate([z, z * z, [[c["conf"], c["conf_std"]] for c in cands]], 1)


def picker(chooser: OrientationChooser | None):
    """The product's choice (fabrec.orientation) among a record's candidates."""
    def pick(cands: list[dict]) -> dict:
        plain = np.array([c["conf"] + 0.1 * c["det"] for c in cands])
        if chooser is None:
            return cands[choose(plain, [False] * len(cands))]
        sc = plain + chooser.weight * chooser.upright.score_features(features(cands))
        return cands[choose(sc, [is_upright(math.radians(c["angle"])) for c in cands], chooser.margin)]
    return pick


def fit(recs: list[dict], l2: float = 100.0, profile_weight: float = 3.0) -> OrientationChooser:
    """The upright logistic on the fitting parts' candidates (60-90 degree faces weighted
    ``profile_weight``), then its weight and margin chosen on the same parts: the most right
    orientations, a face made worse than upright counting as 10 wrong ones."""
    fitting = [r for r in recs if not r["held_out"] and r["candidates"]]
    cands = [c for r in fitting for c in r["candidates"]]
    x, y = features(cands), np.array([c["up_error"] < 45 for c in cands], float)
    sw = np.array([profile_weight if (r["yaw"] or 0) >= 60 else 1.0 for r in fitting for _ in r["candidates"]])
    w, b, m, sc = fit_logistic(x, y, l2, sw)
    upright = FaceFilter(w, b, m, sc, 0.5, "", {"l2": l2, "profile_weight": profile_weight, "crops": len(cands)})
    grid = {}
    for weight in WEIGHTS:
        for margin in MARGINS:
            ch = OrientationChooser(upright, weight, margin, {})
            e = evaluate(fitting, picker(ch))
            right, worse = sum(d["right"] for d in e.values()), sum(d["worse"] for d in e.values())
            grid[(weight, margin)] = right - 10 * worse
    weight, margin = max(grid, key=grid.get)
    return OrientationChooser(upright, weight, margin, {"fitting_records": len(fitting),
                                                       "grid_right_minus_10_worse": {f"{k[0]}/{k[1]}": v for k, v in grid.items()}})


WEIGHTS = (0.05, 0.1, 0.2, 0.4)
MARGINS = (0.0, 0.03, 0.06)


def evaluate(recs: list[dict], pick) -> dict:
    """Right picks and faces made worse than upright, per part and yaw bin."""
    out: dict[str, dict] = {}
    for r in recs:
        if not r["candidates"]:
            continue
        yaw = r["yaw"]
        part = r["source"] + ("/held-out" if r["held_out"] else "/train")
        if yaw is not None:
            part += "/" + ("0-30" if yaw < 30 else "30-60" if yaw < 60 else "60-90")
        d = out.setdefault(part, {"faces": 0, "right": 0, "right_possible": 0, "upright_faces": 0, "worse": 0,
                                  "nme_all": [], "nme_upright": []})
        chosen = pick(r["candidates"])
        d["faces"] += 1
        d["right"] += chosen["up_error"] < 45
        d["right_possible"] += any(c["up_error"] < 45 for c in r["candidates"])
        if r["turn"] == 0 and r["upright"]:
            up = r["upright"][0]
            d["upright_faces"] += 1
            d["worse"] += chosen["nme"] > up["nme"] + 0.01
            d["nme_all"].append(chosen["nme"])
            d["nme_upright"].append(up["nme"])
    for d in out.values():
        d["nme_all"] = round(100 * float(np.mean(d["nme_all"])), 2) if d["nme_all"] else None
        d["nme_upright"] = round(100 * float(np.mean(d["nme_upright"])), 2) if d["nme_upright"] else None
    return dict(sorted(out.items()))


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="default")
    ap.add_argument("--min-yaw", type=float, default=30.0, help="AFLW faces past this |yaw| are all used")
    ap.add_argument("--held-out-only", action="store_true", help="measure only (no fitting parts)")
    ap.add_argument("--fit", action="store_true", help="fit the orientation rule on the fitting parts")
    ap.add_argument("--install", metavar="OUT.safetensors", help="write the model file with the fitted rule inside")
    ap.add_argument("--limit", type=int, default=150, help="HELEN-train / AFW photos and AFLW photos under 30 degrees of yaw used, per part")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "candidates.json"
    recs = json.loads(cache.read_text()) if cache.exists() else collect(a.model, a.limit, a.min_yaw, a.held_out_only)
    write_json_atomic(cache, recs)
    res = {"confidence + 0.1 det (plain)": evaluate(recs, picker(None))}
    if a.fit or a.install:
        ch = fit(recs)
        res[f"fitted: upright score x {ch.weight}, margin {ch.margin}"] = evaluate(recs, picker(ch))
        if a.install:
            ch = OrientationChooser(ch.upright, ch.weight, ch.margin, {**ch.measured, "results": res})
            log.info("wrote %s: SHA-256 %s", a.install, with_values(a.model, a.install, orientation=ch.to_dict()))
    write_json_atomic(out / "orientation.json", res)
    for name, parts in res.items():
        log.info("%s", name)
        for part, d in parts.items():
            log.info("  %-22s right %d/%d (possible %d)  worse than upright %d/%d  NME %s vs upright %s", part,
                     d["right"], d["faces"], d["right_possible"], d["worse"], d["upright_faces"], d["nme_all"],
                     d["nme_upright"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
