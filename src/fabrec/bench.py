"""Speed of the landmark path: faces/s and latency for torch or onnxruntime, with achieved
GFLOP/s beside three ceilings measured in the same run: the CPU's peak in the precision timed
(compiled register-only kernels, :mod:`fabrec.peak`: fp32 FMA; bf16 dot product or AMX tiles), a plain stack of 3x3 convolutions of the same FLOPs
and batch, and a large matmul."""

from __future__ import annotations

import contextlib
import dataclasses
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
from fabrec.heatmaps import native_decoder_available
from fabrec.landmark_model import LandmarkModel, load_landmark_model
from fabrec.peak import Peak, precision_peak
from fabrec.runtime import memory_format, resolve_device
from fabrec.sample_photo import face_crops


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously); a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize()


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
        synchronize(device)

    synchronize(device)
    return 2 * n**3 / statistics.median(timed(mm, reps, warmup=2)) / 1e9


def conv_stack_gflops(device: torch.device, batch_size: int, flops_per_face: float, precision: str = "fp32",
                      channels: int = 64, side: int = 32, reps: int = 5) -> float:
    """GFLOP/s of a plain stack of ``channels``-wide 3x3 convolutions (ReLU between) on
    ``side x side`` maps, as deep as needed to match ``flops_per_face``, at ``batch_size``:
    what the convolution library reaches on the friendliest network of the same work."""
    per_layer = 2 * side * side * channels * channels * 9
    layers = max(1, round(flops_per_face / per_layer))
    mods: list[torch.nn.Module] = []
    for _ in range(layers):
        mods += [torch.nn.Conv2d(channels, channels, 3, 1, 1, bias=False), torch.nn.ReLU(inplace=True)]
    net = torch.nn.Sequential(*mods).eval().to(device, memory_format=memory_format(device))
    x = torch.randn(batch_size, channels, side, side, device=device).contiguous(memory_format=memory_format(device))
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()

    @torch.inference_mode()
    def run() -> None:
        with ctx:
            net(x)
        synchronize(device)

    return layers * per_layer * batch_size / statistics.median(timed(run, reps, warmup=2)) / 1e9


def landmark_flops(model: LandmarkModel) -> float:
    """FLOPs (2 per multiply-add) of the landmark path for one face."""
    s = model.image_size
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model.heatmaps(torch.zeros(1, 3, s, s, device=model.device))
    return float(fc.get_total_flops())


def _check_options(backend: str, dtype: str, dev: torch.device) -> None:
    if dtype not in ("fp32", "bf16", "fp16"):
        raise FabrecError(f"dtype must be fp32, bf16 or fp16, got '{dtype}'")
    if dev.type == "cpu" and dtype == "fp16":
        raise FabrecError("fp16 runs on CUDA only; on the CPU use fp32 or bf16")
    if backend not in ("torch", "onnxruntime"):
        raise FabrecError(f"backend must be torch or onnxruntime, got '{backend}'")
    if backend != "torch" and dtype != "fp32":
        raise FabrecError(f"the {backend} backend runs fp32 only")
    if backend == "onnxruntime" and dev.type != "cpu":
        raise FabrecError("the onnxruntime benchmark runs on the CPU")


Runners = tuple[Callable[[], object], Callable[[], object], list[torch.Tensor]]


def _torch_runners(model: LandmarkModel, x: torch.Tensor, dev: torch.device, dtype: str,
                   tdtype: torch.dtype) -> tuple[LandmarkModel, Runners]:
    """The network alone, the whole landmark path (``LandmarkModel.locate``, as predict and eval
    run it) and the heatmaps of ``x`` ``(N, 3, S, S)`` for timing the decoding alone."""
    model = model.placed(dev)
    if dev.type == "cuda" and tdtype != torch.float32:
        model.net.to(tdtype)  # whole network in the low precision (CUDA)
    elif dtype == "bf16":
        model = dataclasses.replace(model, precision="bf16")  # bf16 autocast (CPU)
    xd = x.to(dev, dtype=tdtype if dev.type == "cuda" else torch.float32).contiguous(memory_format=memory_format(dev))

    @torch.inference_mode()
    def network() -> None:  # the prediction path without its decoding
        for _ in model.heatmap_chunks(xd):
            pass
        synchronize(dev)

    @torch.inference_mode()
    def run() -> None:
        model.locate(xd)
        synchronize(dev)

    with torch.inference_mode():
        maps = list(model.heatmap_chunks(xd))
    return model, (network, run, maps)


def _onnx_runners(model: LandmarkModel, x: torch.Tensor) -> Runners:
    """As :func:`_torch_runners`, through onnxruntime on an exported model."""
    from fabrec.export import OnnxLandmarks, export_onnx

    tmp = Path(tempfile.mkdtemp()) / "m.onnx"
    export_onnx(model, tmp)
    sess = OnnxLandmarks(tmp, model.image_size, model.decoder)
    xn = x.numpy()

    def network() -> torch.Tensor:
        return torch.from_numpy(sess.heatmaps(xn))

    def run() -> None:
        model.decode(network())

    return network, run, [network()]


def bench(model_name: str = "default", backend: str = "torch", batch_size: int = 1, reps: int = 20,
          device: str = "auto", dtype: str = "fp32", warmup: int = 3, fold_bn: bool = True) -> dict[str, Any]:
    """Time the landmark path (network + heatmap decoding, as predict and eval run it) on real
    face crops; returns faces/s, latency median/p90 (ms per batch), the network alone (faces/s,
    GFLOP/s achieved beside the FMA peak, a same-FLOPs conv stack and a matmul) and the
    decoding alone (ms per face, timed on the same heatmaps)."""
    model = load_landmark_model(model_name, fold_batchnorm=fold_bn)
    dev = resolve_device(device)
    _check_options(backend, dtype, dev)
    flops = landmark_flops(model) * batch_size
    x = face_crops(model.image_size, batch_size)  # real face content: decoding cost depends on the heatmaps
    tdtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    if backend == "torch":
        model, (network, run, maps) = _torch_runners(model, x, dev, dtype, tdtype)
    else:
        network, run, maps = _onnx_runners(model, x)
    ts = timed(run, reps, warmup)
    med = statistics.median(ts)
    net_med = statistics.median(timed(network, max(3, reps // 2), warmup=1))

    def decode_all() -> None:
        for hm in maps:
            model.decode(hm)
        synchronize(dev)

    dec_med = statistics.median(timed(decode_all, max(3, reps // 2), warmup=1))
    ceiling = matmul_ceiling(dev, tdtype)  # in the precision timed (bf16 matmuls use AMX where present)
    threads = torch.get_num_threads()
    if dev.type == "cpu":
        time.sleep(0.2)  # let the pool threads of the runs above go idle first
        peak = precision_peak(threads, "bf16" if dtype == "bf16" else "fp32")
        stack = conv_stack_gflops(dev, batch_size, flops / batch_size, dtype)
    else:
        peak, stack = Peak(None, None, threads, "measured on CPUs only"), None
    achieved, end_to_end = flops / net_med / 1e9, flops / med / 1e9
    return {
        "model": model_name, "backend": backend, "device": str(dev), "dtype": dtype, "batch_size": batch_size,
        "batchnorm_folded": fold_bn,
        "image_size": model.image_size, "faces_per_s": batch_size / med,
        "latency_ms_median": 1000 * med, "latency_ms_p90": 1000 * float(np.percentile(ts, 90)),
        "latency_ms_min": 1000 * min(ts), "latency_ms_max": 1000 * max(ts),
        "network_faces_per_s": batch_size / net_med,
        "decode_ms_per_face": 1000 * dec_med / batch_size,
        "decoder": model.decoder,
        "decoder_kernel": "compiled (numba)" if dev.type == "cpu" and native_decoder_available() else "torch",
        "gflop_per_face": flops / batch_size / 1e9,
        "gflops_achieved": achieved, "gflops_end_to_end": end_to_end,
        "fma_peak_kind": peak.kind,
        "fma_peak_gflops": peak.total, "fma_peak_gflops_per_thread": peak.per_thread, "fma_peak_note": peak.note,
        "ratio_to_fma_peak": achieved / peak.total if peak.total else None,
        "end_to_end_ratio_to_fma_peak": end_to_end / peak.total if peak.total else None,
        "conv_stack_gflops": stack, "ratio_to_conv_stack": achieved / stack if stack else None,
        "gflops_ceiling": ceiling, "ratio_to_ceiling": achieved / ceiling, "reps": reps,
        "threads": threads, "torch": torch.__version__, "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
    }
