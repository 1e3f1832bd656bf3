"""Accuracy of what users run: `fabrec predict` on labelled photos, scored against their labels.

Runs the command line exactly as a user would (`fabrec predict FILES --out DIR ...`), then
matches each labelled face to the predicted face whose points' centre lies inside the labels'
extent grown by half its size each way (closest points if several). A labelled face without such a prediction is *missed*:
it counts as a failure in FR@10 ("with misses"). NME uses the scheme's normaliser (68 points:
outer eye corners 36/45; a custom scheme: its ``norm_points``).

    python benchmarks/predict_photos.py --root ../shared/data/300w/afw --out runs/bench/afw_yunet
    python benchmarks/predict_photos.py --root ../shared/data/300w/afw --rotate 90 --out runs/bench/afw_r90
    python benchmarks/predict_photos.py --root LABELME_DIR --scheme five.yaml --model runs/five/best.pt ...

``--rotate DEG`` first writes rotated copies of the photos (and labels) under ``--out``.
Writes ``summary.json`` (and ``per_face.json``) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from fabrec.datasets.landmarks import normaliser, read_dataset
from fabrec.io import read_image, write_image_atomic, write_json_atomic
from fabrec.metrics import auc, failure_rate, nme
from fabrec.schemes import get_scheme
from fabrec.transforms import Box

_ROT = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def rotate_points(p: np.ndarray, deg: int, w: int, h: int) -> np.ndarray:
    """Points of a ``w x h`` image rotated clockwise by ``deg`` (pixel centres, exact)."""
    x, y = p[:, 0], p[:, 1]
    if deg == 90:
        return np.stack([h - 1 - y, x], 1)
    if deg == 180:
        return np.stack([w - 1 - x, h - 1 - y], 1)
    return np.stack([y, w - 1 - x], 1)


def unrotate_points(p: np.ndarray, deg: int, w: int, h: int) -> np.ndarray:
    """Inverse of :func:`rotate_points` for a ``w x h`` original."""
    if deg == 0:
        return p
    return rotate_points(p, 360 - deg, h if deg != 180 else w, w if deg != 180 else h)


def rotate_any(img: np.ndarray, deg: float) -> tuple[np.ndarray, np.ndarray]:
    """``img`` rotated clockwise by ``deg`` about its centre onto a canvas holding all of it
    (black corners); returns the image and the 3x3 point matrix."""
    h, w = img.shape[:2]
    t = np.radians(deg)
    c, s = abs(np.cos(t)), abs(np.sin(t))
    nw, nh = int(np.ceil(w * c + h * s)), int(np.ceil(w * s + h * c))
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), -deg, 1.0)
    m[:, 2] += ((nw - 1) / 2 - (w - 1) / 2, (nh - 1) / 2 - (h - 1) / 2)
    return cv2.warpAffine(img, m, (nw, nh), flags=cv2.INTER_LINEAR), np.vstack([m, [0, 0, 1]])


def rotated_copies(samples: list, deg: int, dest: Path) -> tuple[list[Path], dict[str, np.ndarray]]:
    """Write each photo rotated by ``deg`` into ``dest``; returns the files and their labels."""
    dest.mkdir(parents=True, exist_ok=True)
    files, labels = [], {}
    for s in samples:
        img = read_image(s.path)
        h, w = img.shape[:2]
        out = dest / (s.key.replace("/", "__").rsplit(".", 1)[0] + ".png")
        if deg % 90 == 0:
            write_image_atomic(out, cv2.rotate(img, _ROT[deg % 360]))
            labels[out.stem] = rotate_points(s.points, deg % 360, w, h)
        else:
            rot, m = rotate_any(img, deg)
            write_image_atomic(out, rot)
            labels[out.stem] = s.points @ m[:2, :2].T + m[:2, 2]
        files.append(out)
    return files, labels


def match(faces: list[dict], gt: np.ndarray) -> np.ndarray | None:
    """The predicted points of the face labelled ``gt``, or None if it was missed."""
    (x0, y0), (x1, y1) = gt.min(0), gt.max(0)
    gx, gy = 0.5 * (x1 - x0), 0.5 * (y1 - y0)  # a few points (5) span less than the face
    x0, x1, y0, y1 = x0 - gx, x1 + gx, y0 - gy, y1 + gy
    best, best_d = None, np.inf
    for f in faces:
        p = np.asarray(f["points"], np.float64)
        cx, cy = p.mean(0)
        if x0 <= cx <= x1 and y0 <= cy <= y1:
            d = float(np.linalg.norm(p - gt, axis=1).mean())
            if d < best_d:
                best, best_d = p, d
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="../shared/data/300w/afw")
    ap.add_argument("--dataset", default="folder")
    ap.add_argument("--split", default="")
    ap.add_argument("--scheme", default="68")
    ap.add_argument("--model", default="default")
    ap.add_argument("--rotate", type=int, default=0, help="degrees clockwise; multiples of 90 exactly (pixel "
                    "permutation), others by warping onto a canvas that holds the whole photo")
    ap.add_argument("--out", required=True)
    ap.add_argument("--predict-args", default="", help="extra `fabrec predict` options, one string")
    ap.add_argument("--dtype", default="fp32", help="fabrec predict --dtype: fp32 (the published points, the "
                    "README's accuracy tables) or auto (the default path of this machine)")
    ap.add_argument("--reference", help="an unrotated run's --out: also compare each face's points, rotated "
                    "back, with that run's points (NME between the two)")
    a = ap.parse_args()
    out = Path(a.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    scheme = get_scheme(a.scheme)
    samples = read_dataset(a.dataset, a.root, a.split, scheme).samples
    if a.rotate:
        files, labels = rotated_copies(samples, a.rotate, out / "photos")
        inputs = [str(out / "photos")]
    else:
        inputs = [str(s.path) for s in samples]
        labels = {s.path.stem: s.points for s in samples}
    cmd = [sys.executable, "-m", "fabrec", "predict", *inputs, "--model", a.model, "--out", str(out / "pred"),
           "--no-images", "--no-progress", "--dtype", a.dtype, *a.predict_args.split()]
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t
    errs, missed, rows, agree = [], 0, [], []
    ref = {r["key"]: r for r in json.loads((Path(a.reference) / "per_face.json").read_text())} if a.reference else {}
    for s in samples:
        stem = s.key.replace("/", "__").rsplit(".", 1)[0] if a.rotate else s.path.stem
        gt = labels[stem]
        res = json.loads((out / "pred" / f"{stem}.json").read_text())
        p = match(res["faces"], gt)
        norm = normaliser(s, scheme, Box.from_landmarks(s.points))
        if p is None:
            missed += 1
            rows.append({"key": s.key, "found": False, "faces_in_photo": len(res["faces"])})
            continue
        e = float(nme(p[None], gt[None], np.array([norm]))[0])
        errs.append(e)
        rows.append({"key": s.key, "found": True, "nme": round(e, 3), "faces_in_photo": len(res["faces"]),
                     "points": np.round(p, 3).tolist()})
        if ref.get(s.key, {}).get("found") and a.rotate % 90 == 0:
            h, w = read_image(s.path).shape[:2]
            back = unrotate_points(p, a.rotate, w, h)
            agree.append(float(nme(back[None], np.asarray(ref[s.key]["points"])[None], np.array([norm]))[0]))
    e = np.array(errs)
    with_misses = np.concatenate([e, np.full(missed, np.inf)])
    summary = {
        "command": "fabrec predict " + ("PHOTOS " if a.rotate else "FILES ") + " ".join(cmd[4 + len(inputs):]), "root": a.root, "rotate": a.rotate,
        "model": a.model, "scheme": scheme.name, "normaliser": scheme.normaliser, "faces": len(samples),
        "found": len(errs), "missed": missed, "nme_found": round(float(e.mean()), 3) if len(e) else None,
        "nme_found_median": round(float(np.median(e)), 3) if len(e) else None,
        "fr10_found": round(failure_rate(e), 2) if len(e) else None,
        "fr10_with_misses": round(failure_rate(with_misses), 2),
        "auc10_with_misses": round(auc(np.minimum(with_misses, 1e9)), 4),
        "extra_faces": int(sum(max(0, r["faces_in_photo"] - 1) for r in rows)),
        "vs_reference_nme_mean": round(float(np.mean(agree)), 4) if agree else None,
        "vs_reference_nme_max": round(float(np.max(agree)), 4) if agree else None,
        "vs_reference_over_0_5": int(np.sum(np.array(agree) > 0.5)) if agree else None,
        "wall_s": round(wall, 1), "ms_per_photo_incl_startup": round(1000 * wall / len(samples), 1),
    }
    write_json_atomic(out / "summary.json", summary)
    write_json_atomic(out / "per_face.json", rows)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
