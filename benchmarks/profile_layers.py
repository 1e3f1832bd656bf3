"""Where the landmark path's time goes, part by part, on real face crops (torch, CPU).

Times each part of the default model's landmark path separately on its real input -- the
encoder, the generator's first layer, each generator block, each ITL, the heatmap layer, the
channels-last -> contiguous layout of the heatmaps, and the reference decoder -- at batch 1
and 32, channels-last, medians; and its FLOPs (FlopCounterMode, 2 per multiply-add), so each
row says GFLOP/s. The parts' sum is compared with the whole path timed in the same process.

    python benchmarks/profile_layers.py [--model default] [--reps 20] [--threads N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics

import torch
from torch.utils.flop_counter import FlopCounterMode

from fabrec.bench import timed
from fabrec.hub import load_landmarks
from fabrec.runtime import memory_format, set_threads
from fabrec.sample import face_crops


def flops(fn, *args) -> float:
    with FlopCounterMode(display=False) as fc:
        fn(*args)
    return float(fc.get_total_flops())


@torch.inference_mode()
def profile(model_name: str, batch: int, reps: int) -> list[dict]:
    dev = torch.device("cpu")
    model = load_landmarks(model_name).placed(dev)
    net, itl = model.net, model.net.itl
    x = face_crops(model.image_size, batch).contiguous(memory_format=memory_format(dev))
    parts: list[tuple[str, callable, tuple]] = []
    z = net.encoder(x)
    parts.append(("encoder", net.encoder, (x,)))
    h = net.generator.start(z)
    parts.append(("generator fc + first transposed conv", net.generator.start, (z,)))
    for i in range(itl.num_blocks):
        blk = net.generator.blocks[i]
        parts.append((f"generator block {i + 1}", blk, (h,)))
        h = blk(h)
        if i + 1 in itl.active:
            parts.append((f"ITL {i + 1}", itl.layers[i], (h,)))
            h = itl.layers[i](h)
    parts.append(("heatmap layer", itl.heatmap, (h,)))
    hm = itl.heatmap(h)
    parts.append(("heatmaps to float", lambda t: t.float(), (hm,)))
    parts.append(("reference decoder", model.decode, (hm.float(),)))
    rows = []
    for name, fn, args in parts:
        ts = timed(lambda: fn(*args), reps, warmup=2)
        f = flops(fn, *args) if name not in ("heatmaps to float", "reference decoder") else 0.0
        med = statistics.median(ts)
        rows.append({"part": name, "batch": batch, "ms_per_face": 1000 * med / batch,
                     "gflop_per_face": f / batch / 1e9, "gflops": f / med / 1e9 if f else None})
    whole = statistics.median(timed(lambda: model.decode(model.heatmaps(x).float()), reps, warmup=2))
    total = sum(r["ms_per_face"] for r in rows)
    for r in rows:
        r["share"] = r["ms_per_face"] / total
    rows.append({"part": "whole path (timed as one)", "batch": batch, "ms_per_face": 1000 * whole / batch,
                 "sum_of_parts_ms_per_face": total})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    threads = set_threads(a.threads)
    out = {"model": a.model, "threads": threads, "torch": torch.__version__, "python": platform.python_version(),
           "rows": profile(a.model, 1, a.reps) + profile(a.model, 32, max(3, a.reps // 4))}
    for r in out["rows"]:
        g = f"{r['gflops']:.0f} GFLOP/s" if r.get("gflops") else ""
        s = f"{100 * r['share']:.0f}%" if "share" in r else f"(parts sum {r['sum_of_parts_ms_per_face']:.2f})"
        print(f"batch {r['batch']:>2}  {r['part']:<38} {r['ms_per_face']:7.3f} ms/face  {s:>18}  {g}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
