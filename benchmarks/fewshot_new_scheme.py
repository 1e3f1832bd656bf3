"""Worked example: a new 5-point landmark scheme from a dozen labelled faces, on the CPU.

Makes labelme files (one point shape per landmark) for the first N HELEN-train faces and for
all 337 AFW faces from their 68-point annotations -- eye centres (means of the six eye-contour
points), nose tip (30), mouth corners (48, 54) -- then runs exactly what a user would:

    fabrec train-landmarks --autoencoder default --dataset folder --root TRAIN --scheme five.yaml \
        --train-count 10 --out RUN [VARIANT FLAGS: --init-from none for the paper's way]
    fabrec eval --model RUN/best.pt --dataset folder --root AFW --scheme five.yaml --out RUN/afw

and reports wall time and AFW NME (normaliser: the distance between the two eye centres).

    python benchmarks/fewshot_new_scheme.py --shared ../shared/data --out runs/fewshot5 \
        [--labelled 12] [--train-count 10] [--variants paper,transfer-lr1e-3,default] [--json FILE]
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
from fabrec.io import find_image, read_image

SCHEME = """name: five
points: [left_eye, right_eye, nose_tip, mouth_left, mouth_right]
flip_pairs: [[left_eye, right_eye], [mouth_left, mouth_right]]
norm_points: [left_eye, right_eye]
"""
NAMES = ["left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right"]
VARIANTS = {  # name: train-landmarks flags
    "paper": "--init-from none",  # new ITLs on the frozen autoencoder
    "transfer-lr1e-3": "--init-from default --set heatmap_init=small --set transfer_lr=1e-3",  # the first transfer
    "default": "",  # the few-shot default: transfer, combined heatmap start, transfer_lr
}


def five(p68: np.ndarray) -> np.ndarray:
    """68-point iBUG annotation -> the 5 points, in the subject's left/right as iBUG numbers them."""
    return np.stack([p68[36:42].mean(0), p68[42:48].mean(0), p68[30], p68[48], p68[54]])


def label_folder(src: Path, dst: Path, limit: int = 0) -> int:
    dst.mkdir(parents=True, exist_ok=True)
    files = sorted(src.glob("*.pts"))[: limit or None]
    for pts in files:
        img = find_image(pts)
        h, w = read_image(img).shape[:2]
        shutil.copyfile(img, dst / img.name)
        write_labelme(dst / f"{pts.stem}.json", img.name, five(read_pts(pts)), NAMES, h, w)
    return len(files)


def fabrec(*args: str) -> tuple[float, str]:
    t = time.time()
    p = subprocess.run([sys.executable, "-m", "fabrec", *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"fabrec {args[0]} failed: {p.stderr.strip()[-800:]}")
    return time.time() - t, p.stdout + p.stderr


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--out", default="runs/fewshot5")
    ap.add_argument("--labelled", type=int, default=12, help="labelled HELEN faces (validation comes out of them)")
    ap.add_argument("--train-count", default="10")
    ap.add_argument("--variants", default="paper,transfer-lr1e-3,default", help=f"of {', '.join(VARIANTS)}")
    ap.add_argument("--extra", default="", help="more train-landmarks flags, e.g. '--max-steps 800'")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    out, shared = Path(a.out), Path(a.shared)
    (out / "five.yaml").parent.mkdir(parents=True, exist_ok=True)
    (out / "five.yaml").write_text(SCHEME)
    n = label_folder(shared / "300w" / "helen" / "trainset", out / "train", a.labelled)
    m = label_folder(shared / "300w" / "afw", out / "afw")
    rows = []
    for v in a.variants.split(","):
        run = out / v
        extra = VARIANTS[v].split()
        secs, log = fabrec("train-landmarks", "--autoencoder", "default", "--dataset", "folder", "--root",
                           str(out / "train"), "--scheme", str(out / "five.yaml"), "--train-count", a.train_count,
                           "--out", str(run), "--no-progress", *extra, *a.extra.split())
        _, _ = fabrec("eval", "--model", str(run / "best.pt"), "--dataset", "folder", "--root", str(out / "afw"),
                      "--scheme", str(out / "five.yaml"), "--out", str(run / "afw"), "--device", "cpu")
        met = json.loads((run / "afw" / "metrics.json").read_text())
        steps = [ln for ln in log.splitlines() if "ITL steps" in ln or "initialised" in ln]
        rows.append({"variant": v, "labelled": n, "train_count": a.train_count, "train_seconds": round(secs, 1),
                     "afw_faces": met["count"], "nme": met["nme"], "fr_10": met["fr_10"], "auc_10": met["auc_10"],
                     "notes": steps})
        print(f"{v}: {secs:.0f} s training, AFW ({met['count']} faces) NME {met['nme']:.2f}%, "
              f"FR@10 {met['fr_10']:.2f}%, AUC@10 {met['auc_10']:.3f}", flush=True)
    print(f"labelled {n} HELEN-train faces, evaluated on {m} AFW faces")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
