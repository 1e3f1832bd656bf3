"""The machine's floating-point ceiling, measured: fp32 fused multiply-add peak per thread and
for all threads (and the bf16 peak: AVX-512 BF16's dot product, or AMX's tile multiply where
the CPU has AMX, whichever is higher), from tiny C kernels compiled on first use.

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

from fabrec.runtime import cpu_flags

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
_AMX_SOURCE = r"""
#include <immintrin.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
/* AMX: four independent 16x16 float32 accumulator tiles (0-3), each updated every step with
   the products of two 16x32 bf16 tiles (4-7); one TDPBF16PS is 16*16*32*2 FLOPs. */
typedef struct { uint8_t palette, start; uint8_t reserved[14]; uint16_t colsb[16]; uint8_t rows[16]; } cfg_t;
double fabrec_fma(int64_t iters) {
    if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */)) return -1;
    cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) { cfg.colsb[i] = 64; cfg.rows[i] = 16; }
    static uint16_t src[16 * 32];
    float out[16 * 16];
    for (int i = 0; i < 16 * 32; i++) src[i] = 0x3f80;  /* bf16 1.0 */
    _tile_loadconfig(&cfg);
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    _tile_loadd(4, src, 64); _tile_loadd(5, src, 64); _tile_loadd(6, src, 64); _tile_loadd(7, src, 64);
    for (int64_t t = 0; t < iters; t++) {
        _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7); _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, out, 64);
    _tile_release();
    return out[0];
}
"""
# name -> (source, compiler flag sets to try, FLOPs per loop iteration)
_KERNELS = {
    "fp32": (_SOURCE, (["-O2", "-march=native", "-ffp-contract=fast"], ["-O2", "-ffp-contract=fast"]), 12 * 16 * 2),
    "bf16": (_BF16_SOURCE, (["-O2", "-mavx512f", "-mavx512bf16"],), 12 * 32 * 2),
    "amx": (_AMX_SOURCE, (["-O2", "-mamx-tile", "-mamx-bf16"],), 4 * 16 * 16 * 32 * 2),
}
#: what each kernel measures, for reports
KINDS = {"fp32": "fp32 FMA", "bf16": "bf16 dot product (AVX-512 BF16)", "amx": "bf16 AMX tiles"}
#: the CPU flag each kernel needs
_NEEDS = {"bf16": "avx512_bf16", "amx": "amx_bf16"}


@dataclass(frozen=True)
class Peak:
    """Measured peak throughput in GFLOP/s (best runs), or why it is missing."""

    per_thread: float | None
    total: float | None
    threads: int
    note: str = ""
    kind: str = "fp32 FMA"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fabrec"


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
    """Measure the ``fp32`` FMA peak, the ``bf16`` dot-product peak (AVX-512 BF16 CPUs) or the
    ``amx`` bf16 tile peak (AMX CPUs) with one thread and with ``threads`` threads: the best of
    ``reps`` runs of about ``seconds`` each (a peak is an upper bound: anything else running
    can only lower a run, e.g. another library's pool threads still spinning on a core)."""
    if kind in _NEEDS and _NEEDS[kind] not in cpu_flags():
        return Peak(None, None, threads, f"this CPU has no {_NEEDS[kind]} instructions", KINDS[kind])
    lib = _compile(kind)
    if lib is None:
        return Peak(None, None, threads, f"no C compiler (cc) that builds the {kind} kernel: peak not measured",
                    KINDS[kind])
    fn = lib.fabrec_fma
    fn.restype, fn.argtypes = ctypes.c_double, [ctypes.c_int64]
    flop = _KERNELS[kind][2]
    if fn(1) < 0:
        return Peak(None, None, threads, f"the kernel could not run ({kind}: the system refused the unit)", KINDS[kind])
    probe = _run(fn, 1, 200_000 if kind != "amx" else 20_000, flop)  # warm up and size the runs
    iters = max(1_000, int(seconds * probe * 1e9 / flop))
    one = max(_run(fn, 1, iters, flop) for _ in range(reps))
    every = max(_run(fn, threads, iters, flop) for _ in range(reps)) if threads > 1 else one
    return Peak(one, every, threads, kind=KINDS[kind])


def precision_peak(threads: int, precision: str = "fp32", seconds: float = 0.1, reps: int = 5) -> Peak:
    """The ceiling of ``precision`` (``fp32`` or ``bf16``) on this CPU: for bf16 the higher of
    the AVX-512 BF16 dot product and the AMX tile multiply, the units oneDNN picks from."""
    if precision != "bf16":
        return fma_peak(threads, "fp32", seconds, reps)
    peaks = [fma_peak(threads, k, seconds, reps) for k in ("bf16", "amx")]
    measured = [p for p in peaks if p.total]
    if not measured:
        return Peak(None, None, threads, "; ".join(p.note for p in peaks), KINDS["bf16"])
    return max(measured, key=lambda p: p.total or 0.0)
