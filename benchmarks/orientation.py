"""How the orientation search (``--rotations all``) picks a face's orientation, on real photos
turned by 0, 90, 180 and 270 degrees: for every candidate orientation of the annotated face,
what the model says of it (mean point confidence, the face filter's score) and how far its
points are from the truth; then how often each way of choosing picks the right one, and whether
choosing ever makes a face worse than the upright search would.

Photos: the shared AFLW2000-3D half (every head pose; the training part for choosing a rule,
the held-out part of ``face_crops.aflw_held_out`` for the numbers) and HELEN-train / AFW (300-W).
The right orientation of a candidate: its crop's "up" within 45 degrees of the annotation's
chin-to-eyes direction. NME: over the square root of the annotation extent's width x height.

    python benchmarks/orientation.py --out runs/bench/orientation [--model default] [--limit 150]
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

from fabrec.landmark_model import crop_to_image  # noqa: E402
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
    for r, m, c in zip(regs, mats, pred._run(crops, 32, False)):
        pts = crop_to_image(c.points, m)
        fs = float(pred.face_filter.score(c.codes[None], c.confidence[None])[0]) if pred.face_filter else float("nan")
        out.append({"conf": float(c.confidence.mean()), "det": float(r.score), "face_score": fs,
                    "angle": math.degrees(r.crop.angle),
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


def confidence_rule(c: dict) -> float:
    """fabrec.predict.orientation_score today."""
    return c["conf"] + 0.1 * c["det"]


def evaluate(recs: list[dict], rule) -> dict:
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
        pick = max(r["candidates"], key=rule)
        d["faces"] += 1
        d["right"] += pick["up_error"] < 45
        d["right_possible"] += any(c["up_error"] < 45 for c in r["candidates"])
        if r["turn"] == 0 and r["upright"]:
            up = r["upright"][0]
            d["upright_faces"] += 1
            d["worse"] += pick["nme"] > up["nme"] + 0.01
            d["nme_all"].append(pick["nme"])
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
    ap.add_argument("--limit", type=int, default=150, help="HELEN-train / AFW photos and AFLW photos under 30 degrees of yaw used, per part")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "candidates.json"
    recs = json.loads(cache.read_text()) if cache.exists() else collect(a.model, a.limit, a.min_yaw, a.held_out_only)
    write_json_atomic(cache, recs)
    res = {"confidence + 0.1 det (today)": evaluate(recs, confidence_rule)}
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
