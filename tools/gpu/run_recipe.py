"""Train the default model from packed data in one call: autoencoder, ITLs, encoder
finetuning, exports and a speed benchmark. Runs where the call lands (the repository root).

    python3 tools/gpu/run_recipe.py real --smoke-first --pack gpu_pack --out "$OUT"  # ~9 min, one H100/H200
    python3 tools/gpu/run_recipe.py smoke --pack gpu_pack --out "$OUT"   # every step, tiny, ~1 min
    python3 tools/gpu/run_recipe.py dry   --pack PACK --out OUT          # CPU, tiny, seconds

``--smoke-first`` runs the smoke mode in the same call before the real one and stops at its
first failure: a GPU-only fault costs a minute, not the whole window.

Writes into OUT (at most 8 files, each < 16 MB, as a GPU call returns them):
``ae.safetensors`` (autoencoder E+G and the discriminators D_z, D_x, fp16: the next run
continues from it with FABREC_AE_INIT), ``lm.safetensors`` (landmark model, fp16, without
the autoencoder's encoder: tools/gpu/install_default.py adds it), ``bench.jsonl``,
``extras.tar.gz`` (metrics, configs, last grids) and ``log.txt``.
Time budget of ``real``: FABREC_AE_MINUTES (default 5) and FABREC_LM_MINUTES (2.5).
The autoencoder continues from FABREC_AE_INIT (default ``default``, the bundled one; a returned
``ae.safetensors`` continues its discriminators too) on UTKFace plus every ``faces-<k>.zip``
part of the pack (``fabrec prepare-faces`` crops). Parts larger than one call carries travel in
earlier calls to the same warm machine: ``run_recipe.py real --unpack-only --pack gpu_pack``
with the first parts carried, then the training call with the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

MODES = {
    # mode: (device, train-ae args, train-landmarks args, bench)
    "real": ("cuda",
             ["--time-limit", os.environ.get("FABREC_AE_MINUTES", "5")],
             ["--time-limit", os.environ.get("FABREC_LM_MINUTES", "2.5")], True),
    "smoke": ("cuda",
              ["--max-steps", "20", "--set", "val_every_epochs=1"],
              ["--max-steps", "10", "--finetune-steps", "10", "--set", "val_every=10"], True),
    "dry": ("cpu",
            ["--max-steps", "3", "--image-size", "64", "--width", "0.125", "--batch-size", "4",
             "--workers", "0", "--set", "amp=none", "--set", "data.val_permille=200"],
            ["--max-steps", "2", "--finetune-steps", "2", "--batch-size", "2", "--workers", "0",
             "--set", "val_every=2", "--set", "val_permille=300",
             "--set", "framing=landmarks"], False),  # the dry run's synthetic faces: no detector finds them
}


class Log:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.t0 = time.time()

    def __call__(self, msg: str) -> None:
        line = f"[{time.time() - self.t0:7.1f} s] {msg}"
        print(line, flush=True)
        with open(self.path, "a") as f:
            f.write(line + "\n")


def fabrec_env() -> dict[str, str]:
    """The environment for ``python -m fabrec`` from this checkout, uninstalled."""
    return {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "PYTHONUNBUFFERED": "1"}


def fabrec(log: Log, *args: str) -> None:
    """Run one ``fabrec`` subcommand (the CLI users run), its output into the log."""
    env = fabrec_env()
    cmd = [sys.executable, "-m", "fabrec", *args]
    log("$ fabrec " + " ".join(args))
    t = time.time()
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail = [ln for ln in p.stdout.replace("\r", "\n").splitlines() if ln.strip() and "it/s]" not in ln
            and "step/s]" not in ln and "s/step]" not in ln]
    for ln in tail[-15:]:
        log("  " + ln)
    log(f"  -> exit {p.returncode} in {time.time() - t:.0f} s")
    if p.returncode != 0:
        raise SystemExit(f"fabrec {args[0]} failed (exit {p.returncode})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=sorted(MODES))
    ap.add_argument("--pack", default="gpu_pack", help="folder with utk.zip and helen.zip (tools/gpu/pack.py)")
    ap.add_argument("--out", required=True, help="where the returned files go ($OUT on the GPU machine)")
    ap.add_argument("--work", default="runs/gpu", help="run folders and unpacked data")
    ap.add_argument("--smoke-first", action="store_true", help="run the smoke mode first, in this call")
    ap.add_argument("--unpack-only", action="store_true",
                    help="only unpack the parts carried in this call (the next call to the warm machine trains)")
    a = ap.parse_args()
    out, work = Path(a.out), Path(a.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    log = Log(out / "log.txt")
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    log(f"mode {a.mode}; python {platform.python_version()}, torch {torch.__version__}, CUDA device: {gpu}, "
        f"{os.cpu_count()} CPUs")
    if MODES[a.mode][0] == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: use the dry mode on a CPU")
    if a.unpack_only:
        extract_parts(Path(a.pack), work / "data", log)
        return 0
    data, boxes = unpack(Path(a.pack), work, log)
    if a.smoke_first and a.mode != "smoke":
        log("---- smoke run")
        recipe("smoke", data, boxes, work / "smoke", work / "smoke_out", log)
        log("---- smoke run passed; real run")
    recipe(a.mode, data, boxes, work, out, log)
    sizes = {p.name: p.stat().st_size for p in out.iterdir()}
    log("files: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(sizes.items())))
    return 0


def extract_parts(pack: Path, data: Path, log: Log) -> None:
    """Unzip each part in ``pack`` into ``data`` unless an earlier call already did (a marker
    file per part)."""
    data.mkdir(parents=True, exist_ok=True)
    for z in sorted(pack.glob("*.zip")) if pack.is_dir() else []:
        mark = data / f".unpacked-{z.name}"
        if mark.exists():
            continue
        with zipfile.ZipFile(z) as f:
            f.extractall(data)
        mark.touch()
        log(f"unpacked {z.name} ({z.stat().st_size / 1e6:.1f} MB)")


def unpack(pack: Path, work: Path, log: Log) -> tuple[Path, Path]:
    """Unzip every packed part here once (a part carried by an earlier call to this machine stays
    unpacked in ``work/data``); write the HELEN box CSV (UTKFace-chip framing)."""
    data = work / "data"
    extract_parts(pack, data, log)
    listed = pack / "pack.json"
    needed = json.loads(listed.read_text())["parts"] if listed.exists() else ("utk.zip", "helen.zip")
    for need in needed:
        if not (data / f".unpacked-{need}").exists():
            raise SystemExit(f"{need} is not on this machine: carry {pack}/{need} in this call or an earlier one")
    n_utk = len(list((data / "utk").glob("*.webp")))
    n_helen = len(list((data / "300w" / "helen" / "trainset").glob("*.pts")))
    extra = {d.name: sum(1 for _ in d.rglob("*.webp")) for d in sorted((data / "faces").glob("*"))} \
        if (data / "faces").is_dir() else {}
    log(f"data here: {n_utk} UTKFace and {n_helen} HELEN-train faces"
        + "".join(f", {n} {name} faces" for name, n in extra.items()))
    boxes = work / "helen_boxes.csv"
    fabrec(log, "boxes", "--pts", str(data / "300w" / "helen" / "trainset"), "--top", "0.18", "--bottom", "0.01",
           "--out", str(boxes))
    return data, boxes


def recipe(mode: str, data: Path, boxes: Path, work: Path, out: Path, log: Log) -> None:
    """Stage 1, stages 2-3, exports, speed, archive: every file into ``out``."""
    device, ae_args, lm_args, do_bench = MODES[mode]
    out.mkdir(parents=True, exist_ok=True)
    ae_run, lm_run = work / "ae", work / "lm"
    sources = ["--data", str(data / "utk")]
    for d in sorted((data / "faces").glob("*")) if (data / "faces").is_dir() else []:
        sources += ["--data", str(d)]  # prepare-faces crops: CelebA, LFW, ...
    init = os.environ.get("FABREC_AE_INIT", "default") if mode != "dry" else ""
    fabrec(log, "train-ae", "--config", "configs/ae_gpu_default.yaml", *sources,
           "--boxes", str(boxes), "--out", str(ae_run), "--device", device, "--no-progress", "--resume",
           *(["--init-from", init] if init else []), *ae_args)
    fabrec(log, "export", "--format", "safetensors", "--model", str(ae_run / "last.pt"), "--out", str(out / "ae.safetensors"))
    if mode == "real" and os.environ.get("FABREC_LM_MINUTES") == "0":  # the whole call for the autoencoder
        log("FABREC_LM_MINUTES=0: landmark stages left to the CPU (train-landmarks --autoencoder ae.safetensors)")
        _archive(out, [ae_run])
        return
    fabrec(log, "train-landmarks", "--config", "configs/lm_gpu_default.yaml", "--autoencoder", str(ae_run / "last.pt"),
           "--root", str(data / "300w"), "--out", str(lm_run), "--device", device, "--no-progress", "--resume", *lm_args)
    from fabrec.model_file import export_weights, read_model_file

    mf = read_model_file(lm_run / "best.pt")
    mf.nets.pop("ae_encoder", None)  # ae.safetensors carries it; keeps each file < 16 MB
    export_weights(mf, out / "lm.safetensors")
    log(f"wrote {out / 'lm.safetensors'} (best validation NME {mf.training['best_nme']:.2f}% "
        f"at step {mf.training['step']})")
    _archive(out, [ae_run, lm_run])
    if do_bench:
        bench(out, log, smoke=mode == "smoke")


def _archive(out: Path, runs: list[Path]) -> None:
    """``extras.tar.gz``: each run's metrics and config, the autoencoder's last sample grids."""
    with tarfile.open(out / "extras.tar.gz", "w:gz") as tar:
        for run in runs:
            for name in ("metrics.jsonl", "config.yaml"):
                if (run / name).exists():
                    tar.add(run / name, arcname=f"{run.name}/{name}")
        for g in sorted((runs[0] / "grids").glob("*.png"))[-4:]:
            tar.add(g, arcname=f"ae/grids/{g.name}")


def bench(out: Path, log: Log, smoke: bool) -> None:
    """``fabrec bench`` rows on this machine's GPU into ``bench.jsonl``."""
    rows = [("lm", "bf16", 256), ("lm", "fp32", 1), ("paper-256", "bf16", 256)]
    env = fabrec_env()
    with open(out / "bench.jsonl", "w") as f:
        for model, dtype, b in rows[:1] if smoke else rows:
            spec = str(out / "lm.safetensors") if model == "lm" else model
            p = subprocess.run([sys.executable, "-m", "fabrec", "bench", "--model", spec, "--device", "cuda",
                                "--dtype", dtype, "--batch-size", str(b), "--reps", "3" if smoke else "20", "--json"],
                               env=env, capture_output=True, text=True)
            if p.returncode != 0:
                log(f"bench {model} {dtype} batch {b} failed: {p.stderr.strip().splitlines()[-1:]}")
                continue
            rec = json.loads(p.stdout.strip().splitlines()[-1])
            rec["model"] = "default (this run)" if model == "lm" else model
            f.write(json.dumps(rec) + "\n")
            log(f"bench {rec['model']} {dtype} batch {b}: {rec['faces_per_s']:.0f} faces/s "
                f"(network alone {rec['network_faces_per_s']:.0f})")


if __name__ == "__main__":
    raise SystemExit(main())
