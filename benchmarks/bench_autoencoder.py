"""Autoencoder speed on this machine: training images/s and encode+decode images/s at 128 and
256 px, with achieved GFLOP/s and its ratio to a large-matmul ceiling measured in the same run.

    python benchmarks/bench_autoencoder.py --json benchmarks/results/autoencoder_cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess

import torch
from torch.utils.flop_counter import FlopCounterMode

from fabrec.bench import matmul_ceiling, timed
from fabrec.config import AEScheduleConfig, AETrainConfig, ModelConfig
from fabrec.train_autoencoder import ae_step, build_networks, build_optimizers


def flops(fn) -> float:
    with FlopCounterMode(display=False) as fc:
        fn()
    return float(fc.get_total_flops())


def bench(size: int, width: float, batch: int, reps: int) -> dict:
    cfg = AETrainConfig(model=ModelConfig(image_size=size, width=width), schedule=AEScheduleConfig(curriculum=False))
    nets = build_networks(cfg.model)
    mf = torch.channels_last
    for _, n in nets.items():
        n.to(memory_format=mf)
    opts = build_optimizers(nets, cfg)
    x = (torch.rand(batch, 3, size, size) - 0.45).contiguous(memory_format=mf)
    it = [0]

    def train_step() -> None:  # all four losses and both discriminator updates (it % 4 == 0)
        ae_step(nets, dict(nets.items()), opts, x, 0, cfg, 1)
        it[0] += 1

    enc, gen = nets.encoder.eval(), nets.generator.eval()

    @torch.no_grad()
    def infer() -> None:
        gen(enc(x))

    tr = timed(train_step, reps)
    nets.encoder.train()
    fl_tr = flops(train_step)
    enc.eval()
    gen.eval()
    inf = timed(infer, reps)
    fl_inf = flops(infer)
    return {
        "image_size": size, "width": width, "batch": batch,
        "train_images_per_s": batch / statistics.median(tr),
        "train_step_s_median": statistics.median(tr), "train_step_s_spread": [min(tr), max(tr)],
        "train_gflops_achieved": fl_tr / statistics.median(tr) / 1e9,
        "infer_images_per_s": batch / statistics.median(inf),
        "infer_s_median": statistics.median(inf),
        "infer_gflops_achieved": fl_inf / statistics.median(inf) / 1e9,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default="")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--configs", default="128:1.0:32,256:1.0:16,128:0.5:32")
    a = ap.parse_args()
    ceiling = matmul_ceiling(torch.device("cpu"))
    rows = []
    for c in a.configs.split(","):
        s, w, b = c.split(":")
        r = bench(int(s), float(w), int(b), a.reps)
        r["train_ratio_to_ceiling"] = r["train_gflops_achieved"] / ceiling
        r["infer_ratio_to_ceiling"] = r["infer_gflops_achieved"] / ceiling
        rows.append(r)
        print(json.dumps(r))
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    out = {
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__, "python": platform.python_version()},
        "commit": commit, "matmul_ceiling_gflops": ceiling, "rows": rows,
        "note": "FLOPs counted by torch.utils.flop_counter (2 per MAC); medians over --reps runs",
    }
    if a.json:
        from pathlib import Path

        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
