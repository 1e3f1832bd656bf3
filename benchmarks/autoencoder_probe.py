"""Measure an autoencoder against the installed one: reconstruction per source and the 10-label probe.

    python benchmarks/autoencoder_probe.py --autoencoder runs/ae/last.pt \
        --source utkface=../shared/data/utkface --source celeba=DATA/celeba_faces \
        --source lfw=DATA/lfw_faces --out runs/ae_probe [--compare default] [--probe-args "--max-steps 2"]

1. Reconstruction: for each ``--source NAME=FOLDER`` (prepared face crops), the faces that the
   stable hash rule holds out of autoencoder training (``data.val_permille``, the same rule
   ``train-ae`` uses; at most ``--val-max`` per source): mean L1 (0-255) and SSIM.
2. The 10-label probe: new ITLs on the frozen autoencoder from 10 HELEN-train faces (seed 0,
   the default step count), evaluated on the 337 AFW faces (`fabrec train-landmarks` and
   `fabrec eval` exactly as a user runs them).
3. A grid of held-out faces (top) and their reconstructions per model.

Every model in ``--autoencoder`` and ``--compare`` gets the same measurements; ``probe.json``
holds them side by side. A new default is installed only if it is better on AFW and the probe.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from fabrec.config import AETrainConfig
from fabrec.datasets.faces import FaceDataset, collect_faces, split_items
from fabrec.io import write_image_atomic, write_json_atomic
from fabrec.model import FabRec
from fabrec.model_file import read_autoencoder
from fabrec.normalization import batch_to_tensor
from fabrec.train_autoencoder import cached_crops, validate
from fabrec.normalization import to_uint8
from fabrec.visualize import grid


def held_out(folder: str, image_size: int, val_max: int) -> torch.Tensor:
    """The held-out crops ``uint8 (N, S, S, 3)`` of one source, by train-ae's hash rule."""
    items = collect_faces([folder])
    _, val = split_items(items, AETrainConfig().data.val_permille, val_max)
    return cached_crops(FaceDataset(val, image_size, None))


def reconstruction(spec: str, sources: dict[str, str], val_max: int) -> tuple[dict, np.ndarray]:
    ae = read_autoencoder(spec)
    net = FabRec(config=ae.model, itl=None).eval()
    net.encoder.load_state_dict(ae.nets["encoder"])
    net.generator.load_state_dict(ae.nets["generator"])
    dev = torch.device("cpu")
    out, rows = {}, []
    for name, folder in sources.items():
        crops = held_out(folder, ae.model.image_size, val_max)
        out[name] = {"faces": len(crops), **validate(net.encoder, net.generator, crops, dev, 32)}
        with torch.no_grad():
            t = batch_to_tensor(crops[:8])
            rec = net.generator(net.encoder(t))
        rows += [to_uint8(t), to_uint8(rec)]
    return out, grid(rows)


def probe(spec: str, out: Path, extra: list[str]) -> dict:
    """The 10-label probe through the command line."""
    run = out / "probe_run"
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "300w"
    base = [sys.executable, "-m", "fabrec"]
    subprocess.run(base + ["train-landmarks", "--autoencoder", spec, "--dataset", "300w", "--root", str(shared),
                           "--split", "helen/trainset", "--train-count", "10", "--out", str(run), "--no-progress",
                           *extra], check=True)
    subprocess.run(base + ["eval", "--model", str(run / "best.pt"), "--dataset", "300w", "--root", str(shared),
                           "--split", "afw", "--out", str(out / "probe_afw")], check=True, capture_output=True)
    m = json.loads((out / "probe_afw" / "metrics.json").read_text())
    return {k: m[k] for k in ("nme", "fr_10", "auc_10", "count", "normaliser", "framing")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--autoencoder", required=True)
    ap.add_argument("--compare", action="append", default=[], help="models to measure beside it (e.g. default)")
    ap.add_argument("--source", action="append", default=[], metavar="NAME=FOLDER")
    ap.add_argument("--val-max", type=int, default=500)
    ap.add_argument("--out", required=True)
    ap.add_argument("--probe-args", default="", help="extra train-landmarks flags (tests: '--max-steps 2')")
    ap.add_argument("--no-probe", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(2)
    sources = dict(s.split("=", 1) for s in a.source)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {}
    for i, spec in enumerate([a.autoencoder, *a.compare]):
        d = out / f"model{i}"
        d.mkdir(exist_ok=True)
        rec, picture = reconstruction(spec, sources, a.val_max) if sources else ({}, None)
        if picture is not None:
            write_image_atomic(d / "reconstructions.png", picture)
        result[spec] = {"reconstruction": rec}
        if not a.no_probe:
            result[spec]["probe_10_helen_to_afw"] = probe(spec, d, a.probe_args.split())
        print(spec, json.dumps(result[spec]), flush=True)
    write_json_atomic(out / "probe.json", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
