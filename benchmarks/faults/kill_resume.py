"""Fault trial: SIGKILL training at random moments, resume, and check nothing was lost.

For train-ae and train-landmarks on small real data (../shared/data) with tiny models: a
reference run goes uninterrupted; each trial kills a fresh run at random moments (1-3 kills,
checkpoints written every step so many kills land inside a checkpoint write), resumes with the
same command until it finishes, and checks that every checkpoint seen after a kill loads, that
metrics.jsonl has each step exactly once, and that the final weights equal the reference.

    python benchmarks/faults/kill_resume.py --trials 20 --json benchmarks/results/faults_kill.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from fabrec.checkpoint import load_checkpoint
from fabrec.errors import FabrecError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def ae_cmd(data: Path, out: Path, steps: int) -> list[str]:
    return [sys.executable, "-m", "fabrec", "train-ae", "--data", str(data), "--out", str(out), "--image-size", "64",
            "--width", "0.125", "--batch-size", "8", "--max-steps", str(steps), "--device", "cpu", "--workers", "0",
            "--no-progress", "--resume", "--set", "checkpoint_every=1", "--set", "log_every=1",
            "--set", "schedule.curriculum=false", "--set", "data.val_permille=0"]


def lm_cmd(ae: Path, root: Path, out: Path, steps: int) -> list[str]:
    return [sys.executable, "-m", "fabrec", "train-landmarks", "--autoencoder", str(ae), "--dataset", "300w",
            "--root", str(root), "--split", "afw", "--train-count", "24", "--batch-size", "4",
            "--max-steps", str(steps), "--device", "cpu", "--no-progress", "--resume", "--out", str(out),
            "--set", "checkpoint_every=1", "--set", "log_every=1", "--set", "val_every=5", "--set", "val_max=8",
            "--set", "num_workers=0"]


def weights(path: Path) -> dict[str, torch.Tensor]:
    st = load_checkpoint(path)
    return {f"{n}.{k}": v for n, sd in st["nets"].items() for k, v in sd.items()}


def trial(cmd: list[str], out: Path, ref: dict[str, torch.Tensor], steps: int, rng: random.Random, env: dict) -> dict:
    kills = rng.randint(1, 3)
    during_write = 0
    loads_ok = 0
    for _ in range(kills):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        metrics = out / "metrics.jsonl"
        start = len(metrics.read_text().splitlines()) if metrics.exists() else 0
        deadline = time.time() + 120  # wait until this run has trained a step, then kill at random
        while p.poll() is None and time.time() < deadline and not (
                metrics.exists() and len(metrics.read_text().splitlines()) > start):
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 2.5))
        if p.poll() is not None:
            break
        during_write += any(out.glob(".last.pt.*.tmp")) or any(out.glob(".best.pt.*.tmp"))
        p.send_signal(signal.SIGKILL)
        p.wait()
        if (out / "last.pt").exists():
            load_checkpoint(out / "last.pt")  # raises if a kill left it damaged
            loads_ok += 1
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if r.returncode != 0:
        return {"ok": False, "why": r.stderr[-300:]}
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    train_steps = [x["step"] for x in recs if "rec" in x or "loss" in x]
    got = weights(out / "last.pt")
    same = all(torch.equal(got[k], ref[k]) for k in ref) and got.keys() == ref.keys()
    ok = same and train_steps == list(range(1, steps + 1))
    return {"ok": ok, "kills": kills, "kills_during_checkpoint_write": during_write, "checkpoints_loaded_after_kill": loads_ok,
            "weights_equal": same, "steps_logged_once": train_steps == list(range(1, steps + 1))}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED}: shared data not found")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    tmp = Path(tempfile.mkdtemp(prefix="fabrec_faults_"))
    faces = tmp / "faces.txt"
    faces.write_text("\n".join(str(p) for p in sorted((SHARED / "utkface").glob("*.jpg"))[:96]) + "\n")
    rng = random.Random(0)
    results = {}
    ref_ae = tmp / "ref_ae"
    subprocess.run(ae_cmd(faces, ref_ae, a.steps), check=True, env=env, capture_output=True)
    jobs = {
        "train-ae": (lambda out: ae_cmd(faces, out, a.steps), weights(ref_ae / "last.pt")),
    }
    ref_lm = tmp / "ref_lm"
    subprocess.run(lm_cmd(ref_ae / "last.pt", SHARED / "300w", ref_lm, a.steps), check=True, env=env, capture_output=True)
    jobs["train-landmarks"] = (lambda out: lm_cmd(ref_ae / "last.pt", SHARED / "300w", out, a.steps), weights(ref_lm / "last.pt"))
    for name, (mk, ref) in jobs.items():
        rows = []
        for t in range(a.trials):
            out = tmp / f"{name}_{t}"
            try:
                rows.append(trial(mk(out), out, ref, a.steps, rng, env))
            except FabrecError as e:
                rows.append({"ok": False, "why": str(e)})
            print(name, t, json.dumps(rows[-1]), flush=True)
        results[name] = {"trials": len(rows), "passed": sum(r["ok"] for r in rows),
                         "kills": sum(r.get("kills", 0) for r in rows),
                         "kills_during_checkpoint_write": sum(r.get("kills_during_checkpoint_write", 0) for r in rows),
                         "rows": rows}
    summary = {k: {kk: v[kk] for kk in ("trials", "passed", "kills", "kills_during_checkpoint_write")} for k, v in results.items()}
    print(json.dumps(summary, indent=2))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(v["passed"] == v["trials"] for v in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
