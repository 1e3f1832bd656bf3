"""Compiled (numba) kernel of the reference decoder's windowed argmax, for CPU heatmaps.

It does per map exactly what :func:`fabrec.heatmaps._blur_argmax_windowed` does with torch
operations -- the same block of tiles around the peak tile, the same candidate tiles, the same
float32 arithmetic (prefix sums accumulated in float64 and stored as float32, as torch's CPU
``cumsum`` does; no fused multiply-adds) and the same first-maximum rule -- so its points are
bit-identical (tested), but without building index tensors and temporaries: two to three
times less time per face (benchmarks/README.md). Used automatically when numba is installed
and the maps are on the CPU.
"""

from __future__ import annotations

import numpy as np

try:
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - numba is a dependency; the torch path stays correct
    numba, njit, prange = None, None, range

AVAILABLE = njit is not None


def _region(x: np.ndarray, n: int, k: int, ty: int, tx: int, tiles: int, r: int, tile: int,
            buf: np.ndarray, c: np.ndarray, acc: np.ndarray) -> tuple[np.float32, int]:
    """Best blurred value in a ``tiles x tiles`` block of tiles of map ``(n, k)`` and its flat
    index ``y * W + x``. ``buf`` and ``c`` are float32 scratch of at least ``(L + 1)^2``,
    ``acc`` float64 scratch of at least ``L + 1``, ``L = tiles * tile + 2r``."""
    h, w = x.shape[2], x.shape[3]
    side = tiles * tile
    L = side + 2 * r
    b = 2 * r + 1
    y0, x0 = ty * tile - r, tx * tile - r
    # buf[j, i] = patch[i, j] (transposed), zeros outside the map
    jlo, jhi = max(-x0, 0), min(w - x0, L)
    for i in range(L):
        y = y0 + i
        for j in range(L):
            buf[j, i] = np.float32(0.0)
        if 0 <= y < h:
            row = x[n, k, y]
            for j in range(jlo, jhi):
                buf[j, i] = row[x0 + j]
    # c = pad(patch, [1, 0, 1, 0]).cumsum(-1).cumsum(-2) with torch's CPU rounding: running
    # sums in float64, each stored as float32. Along x first (kept transposed in c so that
    # the inner loop runs over independent rows), then along y.
    for i in range(L + 1):
        acc[i] = 0.0
        c[0, i] = np.float32(0.0)
    for j in range(L):
        for i in range(L):
            acc[i + 1] += np.float64(buf[j, i])
            c[j + 1, i + 1] = np.float32(acc[i + 1])
        c[j + 1, 0] = np.float32(0.0)
    for j in range(L + 1):  # buf[i, j] = c[j, i]: rows of the x-cumsum, back in place
        for i in range(L + 1):
            buf[i, j] = c[j, i]
    for j in range(L + 1):
        acc[j] = 0.0
    for i in range(L + 1):
        for j in range(L + 1):
            acc[j] += np.float64(buf[i, j])
            c[i, j] = np.float32(acc[j])
    best = np.float32(-np.inf)
    at = 0
    for i in range(side):
        # valid rows and columns among the window's (counts, exact in float32)
        cy = np.float32(min(y0 + i + b, h) - max(y0 + i, 0))
        for j in range(side):
            cx = np.float32(min(x0 + j + b, w) - max(x0 + j, 0))
            s = ((c[i + b, j + b] - c[i, j + b]) - c[i + b, j]) + c[i, j]
            v = s / (cy * cx)
            if v > best:
                best = v
                at = i * side + j
    return best, (ty * tile + at // side) * w + tx * tile + at % side


def _full(x: np.ndarray, n: int, k: int, r: int, rows: np.ndarray, c: np.ndarray) -> int:
    """Flat index ``y * W + x`` of the first maximum of map ``(n, k)`` blurred in full, with
    :func:`fabrec.heatmaps.box_blur`'s arithmetic (separable: along x, then along y; running
    sums in float64 stored as float32; window sums over valid pixels divided by their count).
    ``rows`` is ``(H, W)`` float32 scratch, ``c`` float32 scratch of ``max(H, W) + 1``."""
    h, w = x.shape[2], x.shape[3]
    for y in range(h):
        acc = 0.0
        c[0] = np.float32(0.0)
        for j in range(w):
            acc += np.float64(x[n, k, y, j])
            c[j + 1] = np.float32(acc)
        for j in range(w):
            hi, lo = min(j + r + 1, w), max(j - r, 0)
            rows[y, j] = (c[hi] - c[lo]) / np.float32(hi - lo)
    best = np.float32(-np.inf)
    at = 0
    for j in range(w):
        acc = 0.0
        c[0] = np.float32(0.0)
        for y in range(h):
            acc += np.float64(rows[y, j])
            c[y + 1] = np.float32(acc)
        for y in range(h):
            hi, lo = min(y + r + 1, h), max(y - r, 0)
            rows[y, j] = (c[hi] - c[lo]) / np.float32(hi - lo)
    for y in range(h):
        for j in range(w):
            if rows[y, j] > best:
                best = rows[y, j]
                at = y * w + j
    return at


def _windowed(x: np.ndarray, tmax: np.ndarray, blur: int, tile: int, block: int, max_extra: int,
              pts: np.ndarray, extra_count: np.ndarray, many: np.ndarray) -> None:
    """Fill ``pts (N, K, 2)`` (x, y), ``extra_count (N, K)`` and ``many (N, K)`` (maps with
    more than ``max_extra`` candidate tiles, blurred in full) from finite maps
    ``x (N, K, H, W)`` float32 (any strides) and their tile maxima ``tmax (N, K, H/t, W/t)``."""
    nn, kk, h, w = x.shape
    th, tw = tmax.shape[2], tmax.shape[3]
    r = blur // 2
    side = block * tile + 2 * r + 1
    eps_rel, eps_abs = np.float32(1e-5), np.float32(1e-12)
    for m in prange(nn * kk):  # maps n * K + k
        n, k = m // kk, m % kk
        buf = np.empty((side, side), np.float32)
        c = np.empty((side, side), np.float32)
        acc = np.empty(side, np.float64)
        tm = tmax[n, k]
        peak = 0
        pv = tm[0, 0]
        for i in range(th):
            for j in range(tw):
                if tm[i, j] > pv:
                    pv = tm[i, j]
                    peak = i * tw + j
        ty0 = min(max(peak // tw - block // 2, 0), th - block)
        tx0 = min(max(peak % tw - block // 2, 0), tw - block)
        val, pos = _region(x, n, k, ty0, tx0, block, r, tile, buf, c, acc)
        thr = (val - eps_rel * abs(val)) - eps_abs
        # candidate tiles outside the block: the raw maximum over the tile and its 8
        # neighbours (the bound on its blurred values) reaches the block's best
        cand = np.zeros((th, tw), np.bool_)
        count = 0
        for i in range(th):
            for j in range(tw):
                if ty0 <= i < ty0 + block and tx0 <= j < tx0 + block:
                    continue
                m3 = np.float32(-np.inf)
                for a in range(max(i - 1, 0), min(i + 2, th)):
                    for bb in range(max(j - 1, 0), min(j + 2, tw)):
                        m3 = max(m3, tm[a, bb])
                if m3 >= thr:
                    cand[i, j] = True
                    count += 1
        extra_count[n, k] = count
        if count > max_extra:  # no useful bound: blur the whole map
            many[n, k] = True
            pos = _full(x, n, k, r, np.empty((h, w), np.float32), np.empty(max(h, w) + 1, np.float32))
        elif count:
            for i in range(th):
                for j in range(tw):
                    if cand[i, j]:
                        v2, p2 = _region(x, n, k, i, j, 1, r, tile, buf, c, acc)
                        if v2 > val or (v2 == val and p2 < pos):
                            val, pos = v2, p2
        pts[n, k, 0] = pos % w
        pts[n, k, 1] = pos // w


if AVAILABLE:
    _region = njit(cache=True, nogil=True)(_region)
    _full = njit(cache=True, nogil=True)(_full)
    _windowed = njit(cache=True, nogil=True, parallel=True)(_windowed)


def windowed_argmax(x: np.ndarray, tmax: np.ndarray, blur: int, tile: int, block: int,
                    max_extra: int, threads: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points ``(N, K, 2)`` int64 (x, y), candidate tiles beyond the block ``(N, K)`` and the
    maps that were blurred in full ``(N, K)`` bool; see :func:`_windowed`. The maps are shared
    among ``threads`` threads of numba's pool (with its OpenMP layer, the pool PyTorch uses:
    its threads are the ones already awake after the network ran -- measured faster than
    separate threads, which compete with them for the cores). Starting that pool can reset
    OpenMP's thread count: callers that use PyTorch restore theirs (``fabrec.heatmaps``)."""
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    n, k = x.shape[:2]
    pts = np.zeros((n, k, 2), np.int64)
    count = np.zeros((n, k), np.int64)
    many = np.zeros((n, k), np.bool_)
    _windowed(x, np.ascontiguousarray(tmax), blur, tile, block, max_extra, pts, count, many)
    return pts, count, many
