"""The machine's floating-point ceiling, measured: fp32 fused multiply-add peak per thread and
for all threads (and the bf16 dot-product peak where the CPU has AVX-512 BF16), from tiny C
kernels compiled on first use.

The kernel keeps twelve independent 64-byte float32 vectors in registers and updates each with
``a = a * m + c`` in a loop (GCC/Clang vector extensions, ``-march=native -ffp-contract=fast``:
the compiler emits the widest FMA the CPU has -- AVX-512, AVX2/FMA3 or NEON). Twelve chains
cover the FMA latency, so the loop runs at the FMA units' throughput: the number no network on
this CPU can beat in fp32, which makes "fraction of peak" an honest yardstick. Threads are
Python threads calling the compiled function through ctypes (which releases the GIL), so they
run in parallel. Needs a C compiler (``cc``); without one the peak is reported as unavailable.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_SOURCE = r"""
#include <stdint.h>
typedef float v16 __attribute__((vector_size(64)));
#define STEP(a) a = a * m + c
double fabrec_fma(int64_t iters) {
    v16 m, c, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11;
    for (int j = 0; j < 16; j++) {
        m[j] = 0.999999f; c[j] = 1e-7f;
        a0[j] = 1; a1[j] = 2; a2[j] = 3; a3[j] = 4; a4[j] = 5; a5[j] = 6;
        a6[j] = 7; a7[j] = 8; a8[j] = 9; a9[j] = 10; a10[j] = 11; a11[j] = 12;
    }
    for (int64_t t = 0; t < iters; t++) {  /* twelve independent chains, in registers */
        STEP(a0); STEP(a1); STEP(a2); STEP(a3); STEP(a4); STEP(a5);
        STEP(a6); STEP(a7); STEP(a8); STEP(a9); STEP(a10); STEP(a11);
    }
    v16 s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11));
    double r = 0;
    for (int j = 0; j < 16; j++) r += s[j];
    return r;
}
"""
_BF16_SOURCE = r"""
#include <immintrin.h>
#include <stdint.h>
#define STEP(a) a = _mm512_dpbf16_ps(a, x, y)
double fabrec_fma(int64_t iters) {
    __m512 a0 = _mm512_set1_ps(1), a1 = _mm512_set1_ps(2), a2 = _mm512_set1_ps(3), a3 = _mm512_set1_ps(4);
    __m512 a4 = _mm512_set1_ps(5), a5 = _mm512_set1_ps(6), a6 = _mm512_set1_ps(7), a7 = _mm512_set1_ps(8);
    __m512 a8 = _mm512_set1_ps(9), a9 = _mm512_set1_ps(10), a10 = _mm512_set1_ps(11), a11 = _mm512_set1_ps(12);
    __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3380);
    for (int64_t t = 0; t < iters; t++) {  /* 32 bf16 products summed into 16 floats, x12 */
        STEP(a0); STEP(a1); STEP(a2); STEP(a3); STEP(a4); STEP(a5);
        STEP(a6); STEP(a7); STEP(a8); STEP(a9); STEP(a10); STEP(a11);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    return _mm512_reduce_add_ps(s);
}
"""
# name -> (source, compiler flag sets to try, FLOPs per loop iteration)
_KERNELS = {
    "fp32": (_SOURCE, (["-O2", "-march=native", "-ffp-contract=fast"], ["-O2", "-ffp-contract=fast"]), 12 * 16 * 2),
    "bf16": (_BF16_SOURCE, (["-O2", "-mavx512f", "-mavx512bf16"],), 12 * 32 * 2),
}


@dataclass(frozen=True)
class Peak:
    """Measured peak throughput in GFLOP/s (best runs), or why it is missing."""

    per_thread: float | None
    total: float | None
    threads: int
    note: str = ""


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fabrec"


def _cpu_has(flag: str) -> bool:
    try:
        return any(flag in line.split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("flags"))
    except OSError:
        return False


def _compile(kind: str) -> ctypes.CDLL | None:
    """Compile a kernel once per source, compiler and machine; None without a compiler."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        return None
    src, flag_sets, _ = _KERNELS[kind]
    key = hashlib.sha256((src + cc + platform.machine() + platform.node()).encode()).hexdigest()[:16]
    for d in (_cache_dir(), Path(tempfile.gettempdir()) / "fabrec-cache"):
        lib = d / f"{kind}-peak-{key}.so"
        if lib.exists():
            try:
                return ctypes.CDLL(str(lib))
            except OSError:
                pass
        try:
            d.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=d) as tmp:
                c_file = Path(tmp) / "fma.c"
                c_file.write_text(src)
                out = Path(tmp) / "fma.so"
                for flags in flag_sets:
                    r = subprocess.run([cc, *flags, "-shared", "-fPIC", str(c_file), "-o", str(out)],
                                       capture_output=True, timeout=60)
                    if r.returncode == 0:
                        os.replace(out, lib)
                        return ctypes.CDLL(str(lib))
        except (OSError, subprocess.SubprocessError):
            continue
    return None


def _run(fn: ctypes._CFuncPtr, threads: int, iters: int, flop_per_iter: int) -> float:
    """GFLOP/s of ``threads`` threads each running ``iters`` iterations at once."""
    ts = [threading.Thread(target=fn, args=(iters,)) for _ in range(threads)]
    t = time.perf_counter()
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    return flop_per_iter * iters * threads / (time.perf_counter() - t) / 1e9


def fma_peak(threads: int, kind: str = "fp32", seconds: float = 0.1, reps: int = 5) -> Peak:
    """Measure the ``fp32`` FMA peak (or the ``bf16`` dot-product peak, AVX-512 BF16 CPUs only)
    with one thread and with ``threads`` threads: the best of ``reps`` runs of about ``seconds``
    each (a peak is an upper bound: anything else running can only lower a run, e.g. another
    library's pool threads still spinning on a core)."""
    if kind == "bf16" and not _cpu_has("avx512_bf16"):
        return Peak(None, None, threads, "this CPU has no AVX-512 BF16 instructions")
    lib = _compile(kind)
    if lib is None:
        return Peak(None, None, threads, f"no C compiler (cc) that builds the {kind} kernel: peak not measured")
    fn = lib.fabrec_fma
    fn.restype, fn.argtypes = ctypes.c_double, [ctypes.c_int64]
    flop = _KERNELS[kind][2]
    probe = _run(fn, 1, 200_000, flop)  # warm up and size the runs
    iters = max(10_000, int(seconds * probe * 1e9 / flop))
    one = max(_run(fn, 1, iters, flop) for _ in range(reps))
    every = max(_run(fn, threads, iters, flop) for _ in range(reps)) if threads > 1 else one
    return Peak(one, every, threads)
