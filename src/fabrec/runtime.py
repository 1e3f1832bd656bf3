"""What every action shares at run time: the device rule, threads, memory layout, deadlines
(run folders and their JSONL logs are :mod:`fabrec.training_loop`'s).

No action module (training, evaluation, prediction, export, bench) imports another action's
helpers: they all come from here.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time

import torch

from fabrec.errors import FabrecError

_CORES = torch.get_num_threads()  # PyTorch's own default (one per physical core), read once


BF16_FLAGS = {"amx_bf16": "AMX", "avx512_bf16": "AVX-512 BF16"}  # /proc/cpuinfo flag -> what it is


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux's ``/proc/cpuinfo`` lists them (``avx512_bf16``,
    ``amx_bf16``, ...); empty where it cannot be read. Read once per process (they do not
    change; the precision rules ask on every training step)."""
    try:
        with open("/proc/cpuinfo") as f:
            return frozenset(next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")), []))
    except OSError:
        return frozenset()


def cpu_bf16_units() -> list[str]:
    """The bfloat16 units this CPU has (``AMX``, ``AVX-512 BF16``; none known where
    :func:`cpu_flags` cannot tell): where ``--dtype bf16`` runs the network faster than fp32."""
    flags = cpu_flags()
    return [name for flag, name in BF16_FLAGS.items() if flag in flags]


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` on a CPU with bfloat16 units (:func:`cpu_bf16_units`: faster there,
    AFW NME through ``predict`` the same as fp32 -- README, speed), else ``fp32`` (CPUs without
    them; GPUs, where bf16 has not been measured against fp32's points); other values as given."""
    if precision != "auto":
        return precision
    return "bf16" if device.type == "cpu" and cpu_bf16_units() else "fp32"


def resolve_amp(amp: str, device: torch.device) -> str:
    """A training run's ``amp``: ``auto`` -> ``bf16`` on a CPU with AMX (measured there: the
    autoencoder 2.4x and a few-shot landmark run 2.3x as fast, the same AFW NME; README, speed),
    else ``none`` (fp32: CPUs with AVX-512 BF16 alone and GPUs were not measured for training);
    other values as given."""
    if amp != "auto":
        return amp
    return "bf16" if device.type == "cpu" and "AMX" in cpu_bf16_units() else "none"


def amp_note(amp: str, device: torch.device) -> str:
    """How a training run computes, for its first log line."""
    chosen = resolve_amp(amp, device)
    why = " (--amp auto: this CPU has AMX)" if amp == "auto" and chosen == "bf16" else (
        " (--amp auto)" if amp == "auto" else "")
    return ("bf16 autocast" if chosen == "bf16" else "fp32") + why


def autocast_context(amp: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context a training forward pass runs in: bf16 autocast for ``amp`` ``bf16`` (or
    ``auto`` resolving to it), else a no-op."""
    if resolve_amp(amp, device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> CUDA when available else CPU; ``cuda`` without a GPU is a FabrecError."""
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise FabrecError("--device cuda: no CUDA device is available")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise FabrecError(f"--device must be auto, cpu or cuda, got '{device}'")
    return torch.device(device)


def training_device(device: str | torch.device = "auto") -> torch.device:
    """:func:`resolve_device`, then the training set-up: on CUDA, cuDNN autotuning (fixed
    input sizes) and TF32 matrix products; nothing on CPU."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return dev


def memory_format(dev: torch.device) -> torch.memory_format:
    """Channels-last on CPU (oneDNN runs these convolutions ~1.7x faster), NCHW on CUDA."""
    return torch.channels_last if dev.type == "cpu" else torch.contiguous_format


def set_threads(n: int | None) -> int:
    """Use ``n`` CPU threads for PyTorch's operators (None: leave PyTorch's default, one per
    core). On a machine busy with other work, fewer threads than cores avoid oversubscription.
    Returns the count in use."""
    if n is not None:
        if n < 1:
            raise FabrecError(f"--threads must be at least 1, got {n}")
        torch.set_num_threads(n)
    return torch.get_num_threads()


def default_threads() -> int:
    """Threads that do not oversubscribe the CPU: PyTorch's one per core, minus the cores the
    1-minute load average says other processes keep busy, at least one. (Measured on 2 cores
    beside a 2-thread training run: the default model at batch 1 ran 45 faces/s with 1 thread
    and 27 faces/s, p90 latency 163 ms, with 2.)"""
    cores = _CORES
    try:
        busy = os.getloadavg()[0]
    except (OSError, AttributeError):
        return cores
    return max(1, min(cores, cores - int(busy + 0.5)))


class Deadline:
    """A wall-clock budget in minutes (None or <= 0: no limit), read with :meth:`passed`."""

    def __init__(self, minutes: float | None, start: float | None = None) -> None:
        """``start``: when the budget began (``time.monotonic()``; default: now)."""
        if minutes is not None and minutes < 0:
            raise FabrecError(f"--time-limit must be positive minutes, got {minutes}")
        self.seconds = minutes * 60.0 if minutes else None
        self.t0 = time.monotonic() if start is None else start

    @property
    def minutes(self) -> float | None:
        """The budget in minutes, or None."""
        return None if self.seconds is None else self.seconds / 60.0

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def passed(self, share: float = 1.0) -> bool:
        """True once ``share`` of the budget is spent (never without a budget)."""
        return self.seconds is not None and self.elapsed() >= share * self.seconds

    def __bool__(self) -> bool:
        return self.seconds is not None
