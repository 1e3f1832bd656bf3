"""Adapting the bundled model to a new kind of face with 10 labels, against zero-shot (the proxy:
10 labelled AFW faces adapt the default; the other 327 AFW faces are held out).

Per seed: 10 AFW faces drawn at random (symlinked, with their .pts, into TRAIN; the others into
TEST), then exactly what a user runs:

    fabrec eval --model default --dataset folder --root TEST --scheme 68 --out ZERO
    fabrec train-landmarks --autoencoder default --dataset folder --root TRAIN --scheme 68 \\
        --train-count all --framing landmarks --out RUN [VARIANT FLAGS]
    fabrec eval --model RUN/best.pt --dataset folder --root TEST --scheme 68 --out RUN/test

Both are evaluated on the same crops (the bundled model is landmark-framed, so the adapted runs
are too); NME by the outer-eye-corner distance; FR@10 the share of faces over 10%.

    python benchmarks/fewshot_adapt.py --out runs/adapt --seeds 0,1,2 \\
        --variant "default:" --variant "lr1e-4:--set lr=1e-4" --json benchmarks/results/fewshot_adapt.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fewshot_new_scheme import fabrec

from fabrec.io import find_image


def link_faces(pts: list[Path], dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for p in pts:
        img = find_image(p)
        for src in (p, img):
            link = dst / src.name
            if not link.exists():
                link.symlink_to(src.resolve())


def metrics(folder: Path) -> dict:
    m = json.loads((folder / "metrics.json").read_text())
    return {"nme": m["nme"], "fr_10": m["fr_10"], "auc_10": m["auc_10"], "count": m["count"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--out", default="runs/adapt")
    ap.add_argument("--labels", type=int, default=10)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:FLAGS",
                    help="train-landmarks flags of one variant, e.g. 'lr1e-4:--set lr=1e-4' (repeatable)")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    variants = [v.split(":", 1) for v in (a.variant or ["default:"])]
    out = Path(a.out)
    every = sorted((Path(a.shared) / "300w" / "afw").glob("*.pts"))
    rows = []
    for seed in (int(s) for s in a.seeds.split(",")):
        pick = set(np.random.default_rng(seed).choice(len(every), a.labels, replace=False).tolist())
        base = out / f"seed{seed}"
        link_faces([p for i, p in enumerate(every) if i in pick], base / "train")
        link_faces([p for i, p in enumerate(every) if i not in pick], base / "test")
        if not (base / "zero" / "metrics.json").exists():
            fabrec("eval", "--model", "default", "--dataset", "folder", "--root", str(base / "test"), "--scheme", "68",
                   "--out", str(base / "zero"))
        row = {"seed": seed, "zero_shot": metrics(base / "zero")}
        for name, flags in variants:
            run = base / name
            if not (run / "test" / "metrics.json").exists():
                secs, _ = fabrec("train-landmarks", "--autoencoder", "default", "--dataset", "folder", "--root",
                              str(base / "train"), "--scheme", "68", "--train-count", "all", "--framing", "landmarks",
                              "--out", str(run), "--no-progress", *shlex.split(flags))
                (run / "seconds.txt").write_text(f"{secs:.1f}\n")
                fabrec("eval", "--model", str(run / "best.pt"), "--dataset", "folder", "--root", str(base / "test"),
                       "--scheme", "68", "--out", str(run / "test"))
            row[name] = {**metrics(run / "test"), "train_seconds": float((run / "seconds.txt").read_text())}
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {}
    for key in ["zero_shot", *(n for n, _ in variants)]:
        nme = np.array([r[key]["nme"] for r in rows])
        fr = np.array([r[key]["fr_10"] for r in rows])
        summary[key] = {"nme_mean": float(nme.mean()), "nme_sd": float(nme.std(ddof=1)) if len(rows) > 1 else 0.0,
                        "fr_10_mean": float(fr.mean()), "fr_10_sd": float(fr.std(ddof=1)) if len(rows) > 1 else 0.0,
                        "never_worse_nme": bool(all(r[key]["nme"] <= r["zero_shot"]["nme"] for r in rows)),
                        "never_worse_fr10": bool(all(r[key]["fr_10"] <= r["zero_shot"]["fr_10"] for r in rows))}
    rec = {"rows": rows, "summary": summary, "variants": dict(variants), "command": " ".join(sys.argv)}
    print(json.dumps(summary, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(rec, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
