"""Label assist measured as a person would use it: a scripted user labels 10 HELEN-train photos
of a scheme twice -- from scratch (one click per point), and with the page's suggestions
(``fabrec.label_assist`` on the bundled model's 68 points, as ``/v1/projects/NAME/suggest``
makes them): the user drags a suggested point only when it lies more than 2 % of the face's size
(the annotation extent's diagonal) from the truth, then accepts the rest with one click.
Then both label sets train a model exactly as the page does (``fabrec train-landmarks
--train-count 10``, the few-shot default) and both are measured through ``fabrec predict`` on
all 337 AFW photos (``predict_photos.py``).

Schemes: ``five`` (eye centres, nose tip, mouth corners) and ``seven`` (the five plus a forehead
point above the brows and a point under the chin, extrapolated from the 300-W annotation: not
among the 68 points).

    python benchmarks/label_assist_user.py --out runs/label_assist_user --json benchmarks/results/label_assist_user.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from fabrec.datasets.labelme import write_labelme
from fabrec.datasets.pts import read_pts
from fabrec.io import find_image, read_image, write_json_atomic
from fabrec.label_assist import fit_mapping, map_points
from fabrec.predict import LandmarkPredictor

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SCHEMES = {
    "five": (["left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right"],
             lambda p: np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])),
    "seven": (["left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right", "forehead", "under_chin"],
              lambda p: np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54],
                                  (p[19] + p[24]) - p[27], p[8] + 0.25 * (p[8] - p[57])])),
}


def scheme_yaml(name: str, names: list[str]) -> str:
    return (f"name: {name}\npoints: [{', '.join(names)}]\nflip_pairs: [[left_eye, right_eye], [mouth_left, mouth_right]]\n"
            "norm_points: [left_eye, right_eye]\n")


def fabrec(*args: str) -> float:
    t = time.time()
    p = subprocess.run([sys.executable, "-m", "fabrec", *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"fabrec {args[0]} failed: {p.stderr.strip()[-800:]}")
    return time.time() - t


def write_folder(dst: Path, photos: list[Path], labels: list[np.ndarray], names: list[str]) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for img, pts in zip(photos, labels):
        h, w = read_image(img).shape[:2]
        shutil.copyfile(img, dst / img.name)
        write_labelme(dst / f"{img.stem}.json", img.name, pts, names, h, w)


def user(photos: list[Path], truths: list[np.ndarray], found68: list[np.ndarray | None],
         p68s: list[np.ndarray]) -> tuple[list[np.ndarray], list[int]]:
    """The assisted labels and the interactions per photo (clicks + drags + accepts)."""
    labels, acts = [], []
    for i, (t, f) in enumerate(zip(truths, found68)):
        if i == 0 or f is None:
            labels.append(t)
            acts.append(len(t))
            continue
        sug = map_points(fit_mapping([found68[j] for j in range(i) if found68[j] is not None],
                                     [labels[j] for j in range(i) if found68[j] is not None]), f)
        off = np.linalg.norm(sug - t, axis=1) > 0.02 * np.linalg.norm(np.ptp(p68s[i], 0))
        labels.append(np.where(off[:, None], t, sug))
        acts.append(int(off.sum()) + int((~off).any()))
    return labels, acts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--photos", type=int, default=10)
    a = ap.parse_args()
    out = Path(a.out)
    pred = LandmarkPredictor.from_pretrained("default", quality=False)
    pts_files = sorted((SHARED / "300w" / "helen" / "trainset").glob("*.pts"))[: a.photos]
    photos = [find_image(p) for p in pts_files]
    p68s = [read_pts(p) for p in pts_files]
    found68 = []
    for img, t in zip(photos, p68s):
        faces = pred.predict(img)
        found68.append(min(faces, key=lambda f: float(np.linalg.norm(f.points.mean(0) - t.mean(0)))).points
                       if faces else None)
    afw = sorted((SHARED / "300w" / "afw").glob("*.pts"))
    res: dict = {"photos": len(photos), "drag_threshold": "2% of the annotation extent's diagonal", "schemes": {}}
    for name, (names, make) in SCHEMES.items():
        d = out / name
        (d / "scheme.yaml").parent.mkdir(parents=True, exist_ok=True)
        (d / "scheme.yaml").write_text(scheme_yaml(name, names))
        truths = [make(p) for p in p68s]
        assisted, acts = user(photos, truths, found68, p68s)
        write_folder(d / "afw", [find_image(p) for p in afw], [make(read_pts(p)) for p in afw], names)
        row = {"points": len(names), "interactions_scratch_per_photo": len(names),
               "interactions_assisted": acts,
               "assisted_from_third_photo_share": round(float(np.mean(acts[2:])) / len(names), 3)}
        for kind, labels in (("scratch", truths), ("assisted", assisted)):
            write_folder(d / kind, photos, labels, names)
            secs = fabrec("train-landmarks", "--autoencoder", "default", "--dataset", "folder", "--root", str(d / kind),
                          "--scheme", str(d / "scheme.yaml"), "--train-count", str(len(photos)), "--out",
                          str(d / f"run_{kind}"), "--no-progress")
            subprocess.run([sys.executable, str(Path(__file__).with_name("predict_photos.py")), "--root", str(d / "afw"),
                            "--scheme", str(d / "scheme.yaml"), "--model", str(d / f"run_{kind}" / "best.pt"),
                            "--out", str(d / f"afw_{kind}")], check=True, capture_output=True)
            s = json.loads((d / f"afw_{kind}" / "summary.json").read_text())
            row[kind] = {"train_s": round(secs, 1), "afw_nme_pct": s["nme_found"], "afw_found": s["found"]}
        res["schemes"][name] = row
        print(name, json.dumps(row))
    write_json_atomic(a.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
