"""Speed of the landmark path: faces/s and latency for torch or onnxruntime, with achieved
GFLOP/s beside a large-matmul ceiling measured in the same run."""

from __future__ import annotations

import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from fabrec.errors import FabrecError
from fabrec.landmark_model import LandmarkModel
from fabrec.runtime import memory_format, resolve_device
from fabrec.sample import face_crops


def resolve_model(name: str) -> LandmarkModel:
    """``paper-256`` (full-size paper architecture, random weights), ``default``, a
    ``.safetensors`` file or a training checkpoint."""
    from fabrec.hub import load_landmarks

    return load_landmarks(name)


def timed(fn: Callable[[], object], reps: int, warmup: int = 1) -> list[float]:
    """Seconds per call of ``fn`` for ``reps`` calls, after ``warmup`` untimed calls. ``fn``
    must finish its work before returning (synchronise CUDA inside it)."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return ts


def matmul_ceiling(device: torch.device, dtype: torch.dtype = torch.float32, n: int = 2048, reps: int = 10) -> float:
    """GFLOP/s of an ``n x n`` matmul (median of ``reps``)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)

    def mm() -> None:
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()

    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 / statistics.median(timed(mm, reps, warmup=2)) / 1e9


def landmark_flops(model: LandmarkModel) -> float:
    """FLOPs (2 per multiply-add) of the landmark path for one face."""
    s = model.image_size
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model.heatmaps(torch.zeros(1, 3, s, s, device=model.device))
    return float(fc.get_total_flops())


def bench(model_name: str = "default", backend: str = "torch", batch_size: int = 1, reps: int = 20,
          device: str = "auto", dtype: str = "fp32", warmup: int = 3) -> dict[str, Any]:
    """Time the landmark path (network + heatmap decoding) on real face crops; returns faces/s,
    latency median/p90 (ms per batch), the network alone (faces/s, and GFLOP/s achieved beside
    the matmul ceiling) and the decoding's share."""
    model = resolve_model(model_name)
    dev = resolve_device(device)
    s = model.image_size
    flops = landmark_flops(model) * batch_size
    x = face_crops(s, batch_size)  # real face content: decoding cost depends on the heatmaps
    def decode(hm: torch.Tensor) -> None:
        model.decode(hm)

    tdtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    if backend == "torch":
        model = model.placed(dev)
        if dev.type == "cuda" and tdtype != torch.float32:
            model.net.to(tdtype)
        xd = x.to(dev, dtype=tdtype if dev.type == "cuda" else torch.float32).contiguous(memory_format=memory_format(dev))

        @torch.inference_mode()
        def network() -> torch.Tensor:
            hm = model.heatmaps(xd)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            return hm

        def run() -> None:
            decode(network().float())
    elif backend == "onnxruntime":
        if dev.type != "cpu":
            raise FabrecError("the onnxruntime benchmark runs on the CPU")
        from fabrec.export import OnnxLandmarks, export_onnx

        tmp = Path(tempfile.mkdtemp()) / "m.onnx"
        export_onnx(model, tmp)
        sess = OnnxLandmarks(tmp, s, model.decoder)
        xn = x.numpy()

        def network() -> torch.Tensor:
            return torch.from_numpy(sess.heatmaps(xn))

        def run() -> None:
            decode(network())
    else:
        raise FabrecError(f"backend must be torch or onnxruntime, got '{backend}'")
    ts = timed(run, reps, warmup)
    med = statistics.median(ts)
    tn = timed(network, max(3, reps // 2), warmup=0)
    net_med = statistics.median(tn)
    ceiling = matmul_ceiling(dev, tdtype if dev.type == "cuda" else torch.float32)
    return {
        "model": model_name, "backend": backend, "device": str(dev), "dtype": dtype, "batch_size": batch_size,
        "image_size": s, "faces_per_s": batch_size / med,
        "latency_ms_median": 1000 * med, "latency_ms_p90": 1000 * float(np.percentile(ts, 90)),
        "network_faces_per_s": batch_size / net_med,
        "decode_ms_per_face": 1000 * max(med - net_med, 0.0) / batch_size,
        "gflop_per_face": flops / batch_size / 1e9,
        "gflops_achieved": flops / net_med / 1e9, "gflops_ceiling": ceiling,
        "ratio_to_ceiling": flops / net_med / 1e9 / ceiling, "reps": reps,
        "threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
    }
