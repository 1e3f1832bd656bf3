"""Load: `fabrec predict` over a folder of N images streams with bounded memory, and an
interrupted run resumes without redoing finished files (--skip-existing).

Images are made from the shared UTKFace faces, padded into a larger canvas at random shifts.
Peak RSS of the predict process is measured for each N (it must not grow with N).

    python benchmarks/faults/load_predict.py --counts 100,1000,10000 --json benchmarks/results/load_predict.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def make_images(folder: Path, n: int, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    src = sorted((SHARED / "utkface").glob("*.jpg"))
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = cv2.imread(str(src[i % len(src)]))
        canvas = np.full((320, 320, 3), int(rng.integers(0, 255)), np.uint8)
        x, y = rng.integers(0, 120, 2)
        canvas[y : y + 200, x : x + 200] = img
        sub = folder / f"{i // 1000:02d}"
        sub.mkdir(exist_ok=True)
        cv2.imwrite(str(sub / f"img_{i:05d}.jpg"), canvas)


def run_predict(folder: Path, out: Path, extra: list[str], kill_after: float | None = None) -> dict:
    cmd = [sys.executable, "-m", "fabrec", "predict", str(folder), "--out", str(out), "--format", "jsonl",
           "--no-images", "--no-progress", "--device", "cpu", *extra]
    t = time.time()
    pid = os.fork()
    if pid == 0:  # child: become the predict process so its rusage is its own
        os.execv(sys.executable, cmd)
    if kill_after is not None:
        time.sleep(kill_after)
        os.kill(pid, signal.SIGKILL)
    _, status, ru = os.wait4(pid, 0)
    return {"seconds": time.time() - t, "peak_rss_mb": ru.ru_maxrss / 1024, "exit": os.waitstatus_to_exitcode(status)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="100,1000,10000")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fabrec_load_"))
    rows = []
    for n in (int(c) for c in a.counts.split(",")):
        folder = tmp / f"imgs_{n}"
        make_images(folder, n)
        r = run_predict(folder, tmp / f"out_{n}", [])
        lines = (tmp / f"out_{n}" / "predictions.jsonl").read_text().splitlines()
        r.update(images=n, records=len(lines))
        rows.append(r)
        print(json.dumps(r), flush=True)
    # interruption + resume on the last folder
    n = rows[-1]["images"]
    out = tmp / "resume"
    killed = run_predict(tmp / f"imgs_{n}", out, [], kill_after=max(5.0, rows[-1]["seconds"] / 3))
    before = len([ln for ln in (out / "predictions.jsonl").read_text().splitlines() if ln.strip()])
    resumed = run_predict(tmp / f"imgs_{n}", out, ["--skip-existing"])
    recs = [json.loads(ln) for ln in (out / "predictions.jsonl").read_text().splitlines() if ln.strip().endswith("}")]
    files = [r["file"] for r in recs]
    res = {"images": n, "killed_after_s": killed["seconds"], "records_before_resume": before,
           "resume_seconds": resumed["seconds"], "records_after": len(set(files)), "duplicates": len(files) - len(set(files))}
    print(json.dumps(res))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({"runs": rows, "resume": res}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
