"""Face detectors on real photos: recall, false detections, speed; and whether the landmark
model's confidence or quality tells faces from non-faces.

    python benchmarks/detectors.py --out benchmarks/results/detectors

Data (all real photos, ../shared/data):
- faces: the 337 AFW photos (a face counts as found when a detection's centre lies inside its
  68-point extent); UTKFace chips of children aged 0-2 (the face fills the photo; the
  nearest thing to infant photos here);
- face-free images: from every HELEN-train photo, the strips left and right of the face (its
  68-point extent grown by 30% of its width), when at least 64 x 96 px. A few may hold part of
  another person; ``false_examples.jpg`` shows what was detected.
Writes ``detectors.json``, ``roc.png`` and ``false_examples.jpg`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from fabrec.datasets.landmarks import read_folder
from fabrec.faces.detectors import get_detector
from fabrec.registry import DETECTORS
from fabrec.io import read_image, write_image_atomic, write_json_atomic
from fabrec.predict import LandmarkPredictor
from fabrec.schemes import BUILTIN

SHARED = Path("../shared/data")


def face_free_strips(limit: int) -> list[np.ndarray]:
    """Background strips beside the face in HELEN-train photos."""
    out = []
    for s in read_folder(SHARED / "300w/helen/trainset", BUILTIN["68"]).samples:
        img = read_image(s.path)
        (x0, _), (x1, _) = s.points.min(0), s.points.max(0)
        g = 0.3 * (x1 - x0)  # past the cheeks and ears; a few strips still hold a bit of a face
        for a, b in ((0, int(x0 - g)), (int(np.ceil(x1 + g)), img.shape[1])):
            if b - a >= 64 and img.shape[0] >= 96:
                out.append(np.ascontiguousarray(img[:, a:b]))
        if len(out) >= limit:
            break
    return out


def infant_chips(limit: int) -> list[np.ndarray]:
    """UTKFace chips whose file name gives an age of 0-2 years."""
    files = sorted(p for p in (SHARED / "utkface").rglob("*.jpg") if p.name.split("_")[0] in ("0", "1", "2"))
    return [read_image(p) for p in files[:limit]]


def afw() -> list[tuple[np.ndarray, np.ndarray]]:
    return [(read_image(s.path), s.points) for s in read_folder(SHARED / "300w/afw", BUILTIN["68"]).samples]


def inside(det_box, pts: np.ndarray) -> bool:
    x, y, w, h = det_box
    cx, cy = x + w / 2, y + h / 2
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    return x0 <= cx <= x1 and y0 <= cy <= y1


def timed(det, img: np.ndarray) -> tuple[list, float]:
    t = time.perf_counter()
    d = det.detect(img)
    return d, time.perf_counter() - t


def detector_table(faces, infants, negatives) -> tuple[dict, list[np.ndarray]]:
    setups = [("yunet", {"rotations": (0, 90, 180, 270)}), ("yunet", {"rotations": (0,)}), ("opencv", {}), ("dlib", {})]
    rows, examples = {}, []
    for name, opt in setups:
        label = name + ("" if name != "yunet" else f" rotations {','.join(map(str, opt['rotations']))}")
        try:
            det = get_detector(name, **opt)
        except Exception as e:  # noqa: BLE001 - dlib is optional
            rows[label] = {"unavailable": str(e)}
            continue
        found, secs, scores = 0, [], []
        for img, pts in faces:
            d, t = timed(det, img)
            secs.append(t)
            hit = [x for x in d if inside(x.box, pts)]
            found += bool(hit)
            scores += [x.score for x in hit[:1]]
        inf = sum(bool(det.detect(img)) for img in infants)
        false = []
        for img in negatives:
            for x in det.detect(img):  # noqa: B007
                false.append(x.score)
                if name == "yunet" and len(opt["rotations"]) > 1 and len(examples) < 24:
                    bx, by, bw, bh = (int(v) for v in x.box)
                    c = img[max(0, by):by + bh, max(0, bx):bx + bw]
                    if c.size:
                        examples.append(cv2.resize(c, (96, 96)))
        rows[label] = {
            "afw_found": found, "afw_faces": len(faces), "ms_per_photo_median": round(1000 * float(np.median(secs)), 1),
            "infants_found": inf, "infant_photos": len(infants),
            "false_detections": len(false), "face_free_images": len(negatives),
            "false_by_min_score": {f"{t:.1f}": int(sum(s >= t for s in false)) for t in (0.6, 0.7, 0.8, 0.9)}
            if name == "yunet" else None,
            "afw_scores_min_p1_p5": [round(float(np.min(scores)), 3), round(float(np.percentile(scores, 1)), 3),
                                     round(float(np.percentile(scores, 5)), 3)] if scores and name == "yunet" else None,
        }
        print(label, json.dumps(rows[label]), flush=True)
    return rows, examples


def auc_of(pos: list[float], neg: list[float]) -> float:
    """Probability that a random face scores above a random non-face (ties half)."""
    p, n = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


def roc(faces, infants, negatives, out: Path) -> dict:
    """Landmark confidence / quality on true faces (AFW, YuNet crops) against non-face crops
    (YuNet detections down to score 0.3 and random squares in the face-free images)."""
    pred = LandmarkPredictor.from_pretrained("default", device="cpu", min_score=0.3)
    pos = [f for img, pts in faces for f in pred.predict(img)[:1]]
    kids = [f for img in infants for f in pred.predict(img)[:1]]
    rng = np.random.default_rng(0)
    neg = []
    for img in negatives:
        neg += pred.predict(img)
        h, w = img.shape[:2]
        s = int(rng.integers(48, min(h, w) + 1))
        x, y = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
        neg += pred.predict(img, boxes=[(x, y, s, s)])
    res = {}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    for key, get in (("mean confidence", lambda f: float(f.confidence.mean())), ("quality", lambda f: f.quality)):
        p, n = [get(f) for f in pos], [get(f) for f in neg]
        res[key] = {"auc": round(auc_of(p, n), 4), "faces": len(p), "non_faces": len(n)}
        th = np.unique(np.r_[p, n])[::-1]
        tpr = [np.mean(np.asarray(p) >= t) for t in th]
        fpr = [np.mean(np.asarray(n) >= t) for t in th]
        ax.plot(fpr, tpr, label=f"{key} (AUC {res[key]['auc']:.3f})")
    conf = lambda fs: np.array([float(f.confidence.mean()) for f in fs])  # noqa: E731
    p, k, n = conf(pos), conf(kids), conf(neg)
    res["mean_confidence_thresholds"] = {
        f"{t:.2f}": {"afw_kept_pct": round(100 * float((p >= t).mean()), 2),
                     "infants_kept_pct": round(100 * float((k >= t).mean()), 2) if len(k) else None,
                     "non_faces_removed_pct": round(100 * float((n < t).mean()), 2)}
        for t in (0.3, 0.35, 0.4, 0.45, 0.5)}
    default = LandmarkPredictor.from_pretrained("default", device="cpu")  # min_score 0.6, MIN_CONFIDENCE
    res["default_predict_faces_on_face_free_images"] = int(sum(len(default.predict(img)) for img in negatives))
    res["default_predict_afw_found"] = int(sum(any(inside(f.box, pts) for f in default.predict(img)) for img, pts in faces))
    res["default_predict_infants_found"] = int(sum(bool(default.predict(img)) for img in infants))
    res["afw_mean_confidence_min_p1"] = [round(float(p.min()), 3), round(float(np.percentile(p, 1)), 3)]
    res["infant_mean_confidence_min_p1"] = [round(float(k.min()), 3), round(float(np.percentile(k, 1)), 3)] if len(k) else None
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("non-face crops accepted")
    ax.set_ylabel("AFW faces accepted")
    ax.set_title("Does the landmark model tell faces from non-faces?")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "roc.png", dpi=100)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/detectors")
    ap.add_argument("--negatives", type=int, default=400)
    ap.add_argument("--infants", type=int, default=400)
    ap.add_argument("--roc-only", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(2)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    faces, infants, negatives = afw(), infant_chips(a.infants), face_free_strips(a.negatives)
    table, examples = detector_table(faces, infants, negatives) if not a.roc_only else ({}, [])
    result = {"detectors": table, "roc": roc(faces, infants, negatives, out), "available": sorted(DETECTORS)}
    write_json_atomic(out / "detectors.json", result)
    if examples:
        rows = [np.hstack(examples[i:i + 8] + [np.zeros_like(examples[0])] * (8 - len(examples[i:i + 8])))
                for i in range(0, len(examples), 8)]
        write_image_atomic(out / "false_examples.jpg", np.vstack(rows))
    print(json.dumps(result["roc"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
