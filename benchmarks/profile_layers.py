"""Where the landmark path's time goes, part by part, on real face crops (CPU, torch and
onnxruntime).

Times each part of the model's landmark path separately on its real input -- the encoder, the
generator's first layer, each generator block, each ITL, the heatmap layer (the last block,
its ITL and the heatmap layer on 4 faces at a time, as the prediction path runs them), and the
reference decoder (compiled kernel and torch
operations) -- at batch 1 and 32, channels-last for torch, medians; with its FLOPs
(FlopCounterMode, 2 per multiply-add), so each row says GFLOP/s, and the fp32 FMA peak measured
in the same process (fabrec.peak). For onnxruntime each part is exported alone and run in its
own session (all graph optimisations, no spinning threads). The parts' sum is compared with
the whole path (LandmarkModel.locate) timed in the same process.

    python benchmarks/profile_layers.py [--model default] [--reps 20] [--threads N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fabrec.bench import timed
from fabrec.export import ort_session
from fabrec.heatmaps import decode_reference
from fabrec.landmark_model import TAIL_FACES, load_landmark_model
from fabrec.peak import fma_peak
from fabrec.runtime import memory_format, set_threads
from fabrec.sample_photo import face_crops


def flops(fn, *args) -> float:
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        fn(*args)
    return float(fc.get_total_flops())


class _Call(nn.Module):
    """A part as a module (for the ONNX export)."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def ort_timer(fn, x: torch.Tensor, threads: int, owner: nn.Module, tmp: Path):
    """A zero-argument callable running ``fn`` exported to ONNX on ``x`` in onnxruntime."""
    path = tmp / f"part{len(list(tmp.iterdir()))}.onnx"
    mod = _Call(fn)
    mod.owner = owner  # registers the weights the part uses
    torch.onnx.export(mod.eval(), (x.contiguous(),), str(path), input_names=["x"], output_names=["y"],
                      opset_version=17, dynamo=False)
    sess = ort_session(path, threads)
    xn = np.ascontiguousarray(x.numpy())
    return lambda: sess.run(None, {"x": xn})


@torch.no_grad()
def profile(model_name: str, batch: int, reps: int, threads: int, backends: list[str]) -> list[dict]:
    dev = torch.device("cpu")
    model = load_landmark_model(model_name).placed(dev)
    net, itl = model.net, model.net.itl
    net.requires_grad_(False)
    x = face_crops(model.image_size, batch).contiguous(memory_format=memory_format(dev))
    parts: list[tuple[str, callable, torch.Tensor]] = []
    z = net.encoder(x)
    parts.append(("encoder", net.encoder, x))
    h = net.generator.start(z)
    parts.append(("generator fc + first transposed conv", net.generator.start, z))
    for i in range(itl.num_blocks):
        if i == itl.num_blocks - 1:
            h = h[:TAIL_FACES]  # the last block, its ITL and the heatmaps run a few faces at a time
        blk = net.generator.blocks[i]
        parts.append((f"generator block {i + 1}", blk, h))
        h = blk(h)
        if i + 1 in itl.active:
            parts.append((f"ITL {i + 1}", itl.layers[i], h))
            h = itl.layers[i](h)
    parts.append(("heatmap layer", itl.heatmap, h))
    hm = itl.heatmap(h)
    for _ in range(5):  # warm up: oneDNN primitives, allocator, clocks
        model.locate(x)
    rows = []
    tmp = Path(tempfile.mkdtemp())
    for backend in backends:
        bparts = list(parts)
        if backend == "torch":
            bparts += [("reference decoder, compiled kernel", lambda t: decode_reference(t, native=True), hm),
                       ("reference decoder, torch operations", lambda t: decode_reference(t, native=False), hm)]
        total = 0.0
        brows = []
        for name, fn, arg in bparts:
            faces = len(arg)
            run = (lambda fn=fn, arg=arg: fn(arg)) if backend == "torch" else ort_timer(fn, arg, threads, net, tmp)
            med = statistics.median(timed(run, reps, warmup=3))
            f = flops(fn, arg) if "decoder" not in name else 0.0
            # the heatmap layer and the decoder run once per chunk: scale to the whole batch
            ms = 1000 * med / faces
            brows.append({"backend": backend, "part": name, "batch": batch, "ms_per_face": ms,
                          "gflop_per_face": f / faces / 1e9, "gflops": f / med / 1e9 if f else None})
            if "torch operations" not in name:
                total += ms
        for r in brows:
            if "torch operations" not in r["part"]:
                r["share"] = r["ms_per_face"] / total
        rows += brows
        if backend == "torch":
            whole = statistics.median(timed(lambda: model.locate(x), reps, warmup=2))
            rows.append({"backend": backend, "part": "whole path (LandmarkModel.locate, timed as one)", "batch": batch,
                         "ms_per_face": 1000 * whole / batch, "sum_of_parts_ms_per_face": total})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--backends", default="torch,onnxruntime")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    threads = set_threads(a.threads)
    backends = [b for b in a.backends.split(",") if b]
    peak = fma_peak(threads)
    out = {"model": a.model, "threads": threads, "torch": torch.__version__, "python": platform.python_version(),
           "fma_peak_gflops": peak.total, "fma_peak_gflops_per_thread": peak.per_thread,
           "rows": profile(a.model, 1, a.reps, threads, backends)
           + profile(a.model, 32, max(3, a.reps // 4), threads, backends)}
    try:
        import onnxruntime

        out["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    print(f"fp32 FMA peak {peak.total:.0f} GFLOP/s ({peak.per_thread:.0f} per thread)" if peak.total else peak.note)
    for r in out["rows"]:
        g = f"{r['gflops']:.0f} GFLOP/s" if r.get("gflops") else ""
        s = f"{100 * r['share']:.0f}%" if "share" in r else (
            f"(parts sum {r['sum_of_parts_ms_per_face']:.2f})" if "sum_of_parts_ms_per_face" in r else "")
        print(f"{r['backend']:<12} batch {r['batch']:>2}  {r['part']:<52} {r['ms_per_face']:7.3f} ms/face  {s:>18}  {g}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
