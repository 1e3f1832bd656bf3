"""End to end against the network alone, and against dlib, in one run: what a user waits for.

Each row is a fresh process timed from start to exit (start-up, reading, detection, the network,
decoding and writing included) on the same whole photos: the first ``--photos`` photos of the
shared AFLW2000-3D half (450 x 450 px, one face each; linked, nothing copied):

- ``fabrec predict PHOTOS --no-images --format jsonl`` with ``--dtype fp32`` and the default
  (``auto``: bf16 on CPUs with bf16 units), each also ``--no-quality``, and the default with
  ``--flip-from off`` (no test-time flip for turned heads);
- ``fabrec bench --batch-size 32`` (the network on ready crops: faces/s), fp32 and the default;
- dlib: its HOG detector and 68-point predictor on every photo (``pip install dlib-bin
  face-recognition-models``; skipped when absent);
- MediaPipe's face mesh where ``runs/mpvenv`` holds it (see ``mediapipe_peer.py``).

Rounds are interleaved (``--rounds``, median kept), so a machine's drift hits every row alike.
The JSON holds the machine (CPU model and its fp32/bf16 flags), versions and every round.

    python benchmarks/predict_speed.py --out runs/speed --json benchmarks/results/predict_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")

DLIB = """
import sys, time, glob
import dlib, face_recognition_models, numpy as np
det = dlib.get_frontal_face_detector()
sp = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
n = 0
for f in sorted(glob.glob(sys.argv[1] + "/*.jpg")):
    img = dlib.load_rgb_image(f)
    for r in det(img, 1):
        s = sp(img, r); n += 1
        np.array([[p.x, p.y] for p in s.parts()])
print(n)
"""

MEDIAPIPE = """
import sys, glob
import cv2, mediapipe as mp
n = 0
with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=4) as mesh:
    for f in sorted(glob.glob(sys.argv[1] + "/*.jpg")):
        got = mesh.process(cv2.cvtColor(cv2.imread(f), cv2.COLOR_BGR2RGB))
        n += len(got.multi_face_landmarks or [])
print(n)
"""


def cpu_info() -> dict:
    """The CPU's model name and which of :data:`FLAGS` it has (:func:`fabrec.runtime.cpu_flags`)."""
    from fabrec.runtime import cpu_flags

    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    model = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")),
                 platform.processor())
    flags = cpu_flags()
    return {"model": model, "cores": os.cpu_count(), "flags": [f for f in FLAGS if f in flags]}


def timed(cmd: list[str]) -> tuple[float, str]:
    """Wall seconds of one process and its standard output; a failure stops the benchmark."""
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed: {p.stderr.strip()[-600:]}")
    return dt, p.stdout


def link_photos(dest: Path, n: int) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    photos = sorted((SHARED / "aflw2000").glob("*.jpg"))[:n]
    for f in photos:
        link = dest / f.name
        if not link.exists():
            link.symlink_to(f.resolve())
    return len(photos)


def rows(photos: Path, out: Path, threads: int) -> dict[str, list[str]]:
    py, th = sys.executable, ["--threads", str(threads), "--no-progress"]
    predict = [py, "-m", "fabrec", "predict", str(photos), "--no-images", "--format", "jsonl", *th]
    bench = [py, "-m", "fabrec", "bench", "--batch-size", "32", "--reps", "10", "--json", *th]
    r = {
        "predict fp32": [*predict, "--dtype", "fp32", "--out", str(out / "fp32")],
        "predict default": [*predict, "--out", str(out / "default")],
        "predict default --flip-from off": [*predict, "--flip-from", "off", "--out", str(out / "default-noflip")],
        "predict fp32 --no-quality": [*predict, "--dtype", "fp32", "--no-quality", "--out", str(out / "fp32-noq")],
        "predict default --no-quality": [*predict, "--no-quality", "--out", str(out / "default-noq")],
        "bench fp32 batch 32": [*bench, "--dtype", "fp32"],
        "bench default batch 32": bench,
    }
    try:
        import dlib  # noqa: F401
        import face_recognition_models  # noqa: F401

        r["dlib HOG + 68 points"] = [py, "-c", DLIB, str(photos)]
    except ImportError:
        pass
    mp = ROOT / "runs" / "mpvenv" / "bin" / "python"
    if mp.exists():
        r["mediapipe face mesh"] = [str(mp), "-c", MEDIAPIPE, str(photos)]
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="a folder under runs/")
    ap.add_argument("--json", required=True)
    ap.add_argument("--photos", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    out = Path(a.out).resolve()
    load = os.getloadavg()
    n = link_photos(out / "photos", a.photos)
    todo = rows(out / "photos", out, a.threads)
    got: dict[str, list[float]] = {k: [] for k in todo}
    faces: dict[str, int] = {}
    for r in range(a.rounds):
        for name, cmd in todo.items():
            dt, stdout = timed(cmd)
            if name.startswith("bench"):
                got[name].append(float(json.loads(stdout.strip().splitlines()[-1])["faces_per_s"]))
            else:
                got[name].append(dt)
                if name.startswith("predict"):
                    faces[name] = sum(len(json.loads(ln)["faces"]) for ln in
                                      (Path(cmd[cmd.index("--out") + 1]) / "predictions.jsonl").read_text().splitlines())
                else:
                    faces[name] = int(stdout.strip().splitlines()[-1])
            print(f"round {r + 1}: {name}: {got[name][-1]:.2f}", flush=True)
    bench32 = {k: statistics.median(got[f"bench {k} batch 32"]) for k in ("fp32", "default")}
    table = {}
    for name, vals in got.items():
        med = statistics.median(vals)
        if name.startswith("bench"):
            table[name] = {"faces_per_s": round(med, 1)}
        else:
            table[name] = {"seconds": round(med, 2), "faces": faces[name], "faces_per_s": round(faces[name] / med, 1),
                           "share_of_bench_fp32_32": round(faces[name] / med / bench32["fp32"], 3)}
            if name.startswith("predict default"):
                table[name]["share_of_bench_default_32"] = round(faces[name] / med / bench32["default"], 3)
                twin = name.replace("default", "fp32")
                if twin in got:
                    table[name]["speedup_over_fp32"] = round(statistics.median(got[twin]) / med, 2)
    for name, row in table.items():
        print(f"{name:28s} {row}")
    import torch

    res = {"photos": n, "data": "first photos of ../shared/data/aflw2000 (450 x 450, one face each)", "threads": a.threads,
           "rounds": a.rounds, "cpu": cpu_info(), "load_before": load, "torch": torch.__version__,
           "python": platform.python_version(), "table": table, "all_rounds": got}
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
