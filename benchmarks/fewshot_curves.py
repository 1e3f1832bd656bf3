"""Few-shot learning curves: N labelled HELEN-train faces (5, 10, 20, 50; 3 seeds) -> AFW.

Per (N, seed): N faces drawn at random from HELEN-train's 870 (the seed's draw; the smaller N
of a seed are not subsets of the larger), labelled in labelme form for the scheme, and exactly
what a user runs -- `fabrec train-landmarks` with default settings on that folder (all N
photos; the hash rule may hold one or more out for validation), then `fabrec eval` on AFW's 337
faces (detector framing, as the model was trained).

Schemes: ``five`` (eye centres, nose tip, mouth corners: a new scheme; the default few-shot
method starts from the bundled model) and ``68`` with ``--init-from none`` (the frozen
autoencoder, the paper's Table 4 setting; the bundled 68-point model has seen HELEN-train, so
starting from it would not measure few-shot learning).

    python benchmarks/fewshot_curves.py --out runs/curves --curve five --curve 68-paper \\
        --json benchmarks/results/fewshot_curves.json --plot docs/fewshot_curves.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fewshot_new_scheme import NAMES, SCHEME, fabrec, five, label_folder

from fabrec.datasets.labelme import write_labelme
from fabrec.datasets.pts import read_pts
from fabrec.io import find_image, read_image

CURVES = {  # name: (scheme file or id, extra train-landmarks flags, evaluation folder)
    "five": ("five.yaml", [], "afw5"),
    "68-paper": ("68", ["--init-from", "none"], "afw68"),
}
LABELS = {"five": "5 new points (the default: transfer from the bundled model)",
          "68-paper": "68 points on the frozen autoencoder (--init-from none)"}


def labelled(pts: list[Path], dst: Path, curve: str) -> None:
    """A folder of symlinked photos with their labels: 5-point labelme files or the .pts files."""
    dst.mkdir(parents=True, exist_ok=True)
    for p in pts:
        img = find_image(p)
        if not (dst / img.name).exists():
            (dst / img.name).symlink_to(img.resolve())
        if curve == "five":
            h, w = read_image(img).shape[:2]
            write_labelme(dst / f"{p.stem}.json", img.name, five(read_pts(p)), NAMES, h, w)
        elif not (dst / p.name).exists():
            (dst / p.name).symlink_to(p.resolve())


def run_cell(out: Path, curve: str, n: int, seed: int, pool: list[Path]) -> dict:
    scheme, flags, evald = CURVES[curve]
    cell = out / curve / f"n{n}_s{seed}"
    done = cell / "afw" / "metrics.json"
    if not done.exists():
        pick = np.random.default_rng(1000 * seed + n).choice(len(pool), n, replace=False)
        labelled([pool[i] for i in sorted(pick)], cell / "labels", curve)
        sch = str(out / scheme) if scheme.endswith(".yaml") else scheme
        secs, _ = fabrec("train-landmarks", "--autoencoder", "default", "--dataset", "folder", "--root",
                      str(cell / "labels"), "--scheme", sch, "--train-count", "all", "--seed", str(seed),
                      "--out", str(cell / "run"), "--no-progress", *flags)
        (cell / "seconds.txt").write_text(f"{secs:.1f}\n")
        fabrec("eval", "--model", str(cell / "run" / "best.pt"), "--dataset", "folder", "--root", str(out / evald),
               "--scheme", sch, "--out", str(cell / "afw"))
    m = json.loads(done.read_text())
    return {"n": n, "seed": seed, "nme": m["nme"], "fr_10": m["fr_10"], "auc_10": m["auc_10"],
            "train_seconds": float((cell / "seconds.txt").read_text())}


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for curve, rows in summary.items():
        ns = [r["n"] for r in rows]
        mean = np.array([r["nme_mean"] for r in rows])
        sd = np.array([r["nme_sd"] for r in rows])
        ax.errorbar(ns, mean, yerr=sd, marker="o", capsize=3, label=LABELS[curve])
    ax.set_xscale("log")
    ax.set_xticks([5, 10, 20, 50], ["5", "10", "20", "50"])
    ax.minorticks_off()
    ax.set_xlabel("labelled HELEN-train photos")
    ax.set_ylabel("AFW NME % (mean ± sd, 3 seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--out", default="runs/curves")
    ap.add_argument("--curve", action="append", choices=tuple(CURVES), default=[])
    ap.add_argument("--counts", default="5,10,20,50")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--json", default="")
    ap.add_argument("--plot", default="")
    a = ap.parse_args()
    out, shared = Path(a.out), Path(a.shared)
    out.mkdir(parents=True, exist_ok=True)
    (out / "five.yaml").write_text(SCHEME)
    if not any((out / "afw5").glob("*.json")):
        label_folder(shared / "300w" / "afw", out / "afw5")
    labelled(sorted((shared / "300w" / "afw").glob("*.pts")), out / "afw68", "68")
    pool = sorted((shared / "300w" / "helen" / "trainset").glob("*.pts"))
    cells, summary = [], {}
    for curve in a.curve or ["five"]:
        summary[curve] = []
        for n in (int(x) for x in a.counts.split(",")):
            rows = [run_cell(out, curve, n, int(s), pool) for s in a.seeds.split(",")]
            cells += [{"curve": curve, **r} for r in rows]
            nme = np.array([r["nme"] for r in rows])
            fr = np.array([r["fr_10"] for r in rows])
            secs = np.array([r["train_seconds"] for r in rows])
            row = {"n": n, "nme_mean": float(nme.mean()), "nme_sd": float(nme.std(ddof=1)) if len(rows) > 1 else 0.0,
                   "fr_10_mean": float(fr.mean()), "fr_10_sd": float(fr.std(ddof=1)) if len(rows) > 1 else 0.0,
                   "train_seconds_median": float(np.median(secs))}
            summary[curve].append(row)
            print(curve, json.dumps(row), flush=True)
    if a.plot:
        plot(summary, Path(a.plot))
    if a.json:
        Path(a.json).write_text(json.dumps({"summary": summary, "cells": cells, "command": " ".join(sys.argv)},
                                           indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
