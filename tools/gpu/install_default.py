"""Install a GPU-trained default model: join the returned files, evaluate on AFW, install.

    python tools/gpu/install_default.py --from RETURNED_DIR --afw ../shared/data/300w [--force]

1. ``lm.safetensors`` + the encoder of ``ae.safetensors`` -> one landmark file that also
   carries its autoencoder's encoder (``train-landmarks --autoencoder default`` needs it).
2. ``fabrec eval`` of it and of the installed default on AFW (300-W layout, split ``afw``),
   same process, same crops.
3. If the new model has the lower AFW NME (or ``--force``): writes ``default.safetensors``
   and ``default.sha256`` into ``--dest`` (the package's pretrained/
   folder by default). The model card (``default.md``) is edited by hand from the summary
   this prints.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from fabrec.evaluate import evaluate  # noqa: E402
from fabrec.io import write_json_atomic, write_text_atomic  # noqa: E402
from fabrec.landmark_model import load_landmark_model  # noqa: E402
from fabrec.model_file import (
    export_weights,  # noqa: E402
    read_model_file,  # noqa: E402
)
from fabrec.weights import WEIGHTS_DIR, sha256  # noqa: E402


def compose(returned: Path, out: Path) -> dict:
    """Landmark weights with the autoencoder's encoder added as ``ae_encoder``."""
    lm = read_model_file(returned / "lm.safetensors")
    ae = read_model_file(returned / "ae.safetensors")
    if ae.kind != "autoencoder" or lm.kind != "landmarks":
        raise SystemExit(f"{returned}: expected an autoencoder ae.safetensors and a landmark lm.safetensors")
    lm.nets["ae_encoder"] = ae.nets["encoder"]
    export_weights(lm, out)
    return lm


def afw(spec: str | Path, root: Path, out: Path) -> dict:
    m = evaluate(load_landmark_model(spec), "300w", root, "afw", out, device="cpu", grid_count=6)
    return {k: m[k] for k in ("nme", "fr_10", "auc_10", "count", "normaliser")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="src", required=True, help="folder with lm.safetensors and ae.safetensors")
    ap.add_argument("--afw", required=True, help="300-W root holding afw/")
    ap.add_argument("--dest", default=str(WEIGHTS_DIR), help="where default.safetensors goes")
    ap.add_argument("--work", default="runs/install_default", help="evaluation outputs")
    ap.add_argument("--force", action="store_true", help="install even if it is not better on AFW")
    a = ap.parse_args()
    src, dest, work = Path(a.src), Path(a.dest), Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    cand = work / "default.safetensors"
    compose(src, cand)
    new = afw(cand, Path(a.afw), work / "afw_new")
    old_file = dest / "default.safetensors"
    old = afw(old_file, Path(a.afw), work / "afw_old") if old_file.exists() else None
    better = old is None or new["nme"] < old["nme"]
    summary = {"new": new, "installed_before": old, "installed": bool(better or a.force),
               "sha256": sha256(cand), "bytes": cand.stat().st_size}
    if better or a.force:
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cand, dest / "default.safetensors.tmp")
        (dest / "default.safetensors.tmp").replace(dest / "default.safetensors")
        write_text_atomic(dest / "default.sha256", f"{summary['sha256']}  default.safetensors\n")
        for name in ("ced.png", "grid.png", "metrics.json"):
            if (work / "afw_new" / name).exists():
                shutil.copyfile(work / "afw_new" / name, work / f"new_{name}")
    write_json_atomic(work / "summary.json", summary)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
