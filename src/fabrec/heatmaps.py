"""Heatmap targets and decoders.

Crop coordinates (``S x S`` crop) and heatmap coordinates (``H x H``) are both 0-based pixel
centres; ``h = (p + 0.5) * H / S - 0.5``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fabrec.registry import DECODERS, resolve


def heatmap_size(image_size: int) -> int:
    """Side of the heatmaps for a model of ``image_size`` px: 128 (64 for 64-px models)."""
    return min(image_size, 128)

def crop_to_heatmap(points: torch.Tensor, crop_size: int, hm_size: int) -> torch.Tensor:
    """Crop-pixel points ``(..., 2)`` -> heatmap-pixel points."""
    return (points + 0.5) * (hm_size / crop_size) - 0.5


def heatmap_to_crop(points: torch.Tensor, crop_size: int, hm_size: int) -> torch.Tensor:
    """Heatmap-pixel points ``(..., 2)`` -> crop-pixel points (the authors' "x2" at 256/128)."""
    return (points + 0.5) * (crop_size / hm_size) - 0.5


def make_heatmaps(points: torch.Tensor, size: int, sigma: float = 7.0) -> torch.Tensor:
    """Gaussian targets exp(-d^2 / 2 sigma^2), peak 1, centred at the exact sub-pixel point.

    Args:
        points: ``(N, K, 2)`` x, y in heatmap pixels (non-finite points give all-zero maps).
        size: heatmap side H.
    Returns: ``(N, K, H, H)`` float32.
    """
    ax = torch.arange(size, dtype=torch.float32, device=points.device)
    p = points.float()
    ok = torch.isfinite(p).all(-1, keepdim=True)
    p = torch.where(ok, p, torch.full_like(p, -1e4))
    gx = torch.exp(-((ax - p[..., 0:1]) ** 2) / (2 * sigma**2))  # (N, K, H)
    gy = torch.exp(-((ax - p[..., 1:2]) ** 2) / (2 * sigma**2))
    return gy[..., :, None] * gx[..., None, :]


def _box_1d(x: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """Mean over a centred window of ``size`` along ``dim`` (window clipped at the borders,
    dividing by the valid count), by cumulative sums: O(1) per element."""
    r = size // 2
    n = x.shape[dim]
    pads = [0, 0] * (x.dim() - 1 - dim % x.dim()) + [r + 1, r]
    c = torch.cumsum(F.pad(x, pads), dim)
    sums = c.narrow(dim, 2 * r + 1, n) - c.narrow(dim, 0, n)
    idx = torch.arange(n, device=x.device)
    count = (torch.clamp(idx + r, max=n - 1) - torch.clamp(idx - r, min=0) + 1).to(x.dtype)
    shape = [1] * x.dim()
    shape[dim] = n
    return sums / count.view(shape)


def box_blur(heatmaps: torch.Tensor, size: int = 9) -> torch.Tensor:
    """``size x size`` mean filter of ``(N, K, H, W)`` maps, borders averaged over valid pixels
    only (= ``avg_pool2d(..., count_include_pad=False)``), separable and cumulative."""
    return _box_1d(_box_1d(heatmaps, size, -1), size, -2)


def _argmax2d(hm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n, k, h, w = hm.shape
    flat = hm.reshape(n, k, h * w)
    val, idx = flat.max(-1)
    return (idx % w), (idx // w), val


def _blur_argmax_full(x: torch.Tensor, blur: int) -> torch.Tensor:
    """Argmax of the whole blurred maps: ``(N, K, H, W)`` -> points ``(N, K, 2)`` (long)."""
    px, py, _ = _argmax2d(box_blur(x, blur))
    return torch.stack([px, py], -1)


_TILE = 8  # tile side of the windowed decoder
_BLOCK = 5  # first pass: a block of BLOCK x BLOCK tiles around each map's peak tile


def _channels_last(x: torch.Tensor) -> bool:
    """True for ``(N, K, H, W)`` maps stored pixel-major (``N, H, W, K``), as a channels-last
    network writes them."""
    return not x.is_contiguous() and x.permute(0, 2, 3, 1).is_contiguous()


def _tile_max(x: torch.Tensor) -> torch.Tensor:
    """Max over ``8 x 8`` tiles: ``(N, K, H, W)`` -> ``(N, K, H/8, W/8)``, contiguous or
    channels-last input. The rows of a tile are reduced first (an elementwise max of whole
    contiguous rows, vectorised), then the 8 columns of the 8x smaller result: several times
    faster than either other order."""
    n, k, h, w = x.shape
    t = _TILE
    if _channels_last(x):  # memory (N, H, W, K): reduce over whole (W, K) rows, then over x
        p = x.permute(0, 2, 3, 1).reshape(n, h // t, t, w, k).amax(2)
        return p.reshape(n, h // t, w // t, t, k).amax(3).permute(0, 3, 1, 2)
    x = x.contiguous()
    return x.reshape(n, k, h // t, t, w).amax(3).reshape(n, k, h // t, w // t, t).amax(-1)


def _max3x3(t: torch.Tensor) -> torch.Tensor:
    """Max over each cell's 3x3 neighbourhood (borders: valid cells only) of ``(..., H, W)``;
    separable, and much cheaper than max_pool2d on tiny maps."""
    p = F.pad(t, [1, 1, 1, 1], value=float("-inf"))
    r = torch.maximum(torch.maximum(p[..., :-2], p[..., 1:-1]), p[..., 2:])
    return torch.maximum(torch.maximum(r[..., :-2, :], r[..., 1:-1, :]), r[..., 2:, :])


def _window_max(patch: torch.Tensor, vy: torch.Tensor, vx: torch.Tensor, blur: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Blur the inner part of raw patches and take the first maximum.

    Args:
        patch: ``(P, A + 2r, B + 2r)`` raw values (zero where ``vy``/``vx`` say the pixel is
            outside the map), ``r = blur // 2``; ``vy`` ``(P, A + 2r)``, ``vx`` ``(P, B + 2r)``.
    Returns: max blurred value ``(P,)`` and its row-major index in the ``A x B`` inner part.
    """
    b = 2 * (blur // 2) + 1
    c = F.pad(patch, [1, 0, 1, 0]).cumsum(-1).cumsum(-2)
    sums = c[:, b:, b:] - c[:, :-b, b:] - c[:, b:, :-b] + c[:, :-b, :-b]
    # window sums over valid pixels divided by the valid count (as box_blur does)
    cy = F.pad(vy.to(patch.dtype), [1, 0]).cumsum(-1)
    cx = F.pad(vx.to(patch.dtype), [1, 0]).cumsum(-1)
    cnt = (cy[:, b:] - cy[:, :-b]).unsqueeze(-1) * (cx[:, b:] - cx[:, :-b]).unsqueeze(-2)
    return (sums / cnt).flatten(1).max(-1)


def _blur_region(x: torch.Tensor, m: torch.Tensor, ty: torch.Tensor, tx: torch.Tensor, tiles: int,
                 blur: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Best blurred value in a ``tiles x tiles`` block of 8-pixel tiles of the given maps.

    Args:
        x: ``(N, K, H, W)`` maps, contiguous or channels-last; ``m``, ``ty``, ``tx``: ``(P,)``
            map index ``n * K + k`` and top-left tile of each block.
    Returns: the maximum ``(P,)`` and its flat index ``y * W + x`` (first in row-major order
        among equal values, like ``argmax`` of the whole map).
    """
    _, k, h, w = x.shape
    r, side = blur // 2, tiles * _TILE
    n = side + 2 * r  # the raw rows (and columns) the windows read
    ar = torch.arange(n, device=x.device)
    y0, x0 = ty * _TILE - r, tx * _TILE - r
    ys, xs = y0.unsqueeze(-1) + ar, x0.unsqueeze(-1) + ar  # (P, n)
    vy, vx = (ys >= 0) & (ys < h), (xs >= 0) & (xs < w)
    if h >= n and w >= n:
        # read an n x n window that lies inside the map (strided views, one gather), then shift
        # it by at most r so that it starts at (y0, x0), zeros where that leaves the map: the
        # same values, in the same places, as reading pixel by pixel
        py, px = y0.clamp(0, h - n), x0.clamp(0, w - n)
        inner = x.unfold(2, n, 1).unfold(3, n, 1)[m // k, m % k, py, px]
        padded = F.pad(inner, [r, r, r, r]).unfold(1, n, 1).unfold(2, n, 1)
        patch = padded[torch.arange(len(m), device=x.device), y0 - py + r, x0 - px + r]
    else:
        yc, xc = ys.clamp(0, h - 1), xs.clamp(0, w - 1)
        patch = x[(m // k).view(-1, 1, 1), (m % k).view(-1, 1, 1), yc.unsqueeze(-1), xc.unsqueeze(-2)]
        patch = patch * (vy.unsqueeze(-1) & vx.unsqueeze(-2))
    val, at = _window_max(patch, vy, vx, blur)
    return val, (ty * _TILE + at // side) * w + tx * _TILE + at % side


_MAX_EXTRA = 24  # more candidate tiles than this outside the block: blur the whole map


def _blur_argmax_windowed(x: torch.Tensor, blur: int, tmax: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Argmax of the blurred maps, blurring only the tiles that can hold it.

    A blurred value is a mean of raw values within ``blur // 2 < 8`` pixels, so it is at most
    the raw maximum over its tile and the 8 neighbouring tiles. First a block of tiles around
    each map's peak tile is blurred; its best value is a lower bound on the answer, and every
    other tile whose bound reaches it is blurred too (the whole map when there are many). The
    argmax over the blurred tiles is then the argmax of the whole blurred map.

    Args:
        x: ``(N, K, H, W)`` finite float maps, contiguous or channels-last, ``H`` and ``W``
            multiples of 8 and at least 40.
        tmax: ``_tile_max(x)``, ``(N, K, H/8, W/8)``.
    Returns: points ``(N, K, 2)`` (long, x y) and the number of tiles blurred beyond the
        first block ``(N, K)``.
    """
    n, k, h, w = x.shape
    th, tw = tmax.shape[-2:]
    mk = n * k
    tm = tmax.reshape(mk, th, tw)
    peak = tm.flatten(1).argmax(-1)
    ty0 = (peak // tw - _BLOCK // 2).clamp(0, th - _BLOCK)
    tx0 = (peak % tw - _BLOCK // 2).clamp(0, tw - _BLOCK)
    m = torch.arange(mk, device=x.device)
    val, pos = _blur_region(x, m, ty0, tx0, _BLOCK, blur)
    # other tiles that could reach the block's best (slack: blurred values carry rounding)
    gy = torch.arange(th, device=x.device).view(1, th, 1)
    gx = torch.arange(tw, device=x.device).view(1, 1, tw)
    ty, tx = ty0.view(-1, 1, 1), tx0.view(-1, 1, 1)
    inside = (gy >= ty) & (gy < ty + _BLOCK) & (gx >= tx) & (gx < tx + _BLOCK)
    extra = (_max3x3(tm) >= (val - 1e-5 * val.abs() - 1e-12).view(-1, 1, 1)) & ~inside
    count = extra.flatten(1).sum(-1)
    many = count > _MAX_EXTRA
    extra &= ~many.view(-1, 1, 1)
    em, ey, ex = extra.nonzero(as_tuple=True)
    if em.numel():
        v2, p2 = _blur_region(x, em, ey, ex, 1, blur)
        m, val, pos = torch.cat([m, em]), torch.cat([val, v2]), torch.cat([pos, p2])
    top = torch.full((mk,), float("-inf"), device=x.device).scatter_reduce(0, m, val, "amax")
    hit = val == top[m]
    first = torch.full((mk,), h * w, device=x.device).scatter_reduce(0, m[hit], pos[hit], "amin")
    pts = torch.stack([first % w, first // w], -1)
    if many.any():
        sel = many.nonzero().squeeze(-1)
        pts[sel] = _blur_argmax_full(x[sel // k, sel % k].unsqueeze(0), blur)[0]
    return pts.view(n, k, 2), count.view(n, k)


def _blur_argmax_native(x: torch.Tensor, blur: int, tmax: torch.Tensor) -> torch.Tensor:
    """``_blur_argmax_windowed``'s points (and the full blur's where it falls back to it) from
    the compiled kernel: CPU maps, all finite."""
    from fabrec.heatmap_kernels import windowed_argmax

    threads = torch.get_num_threads()
    pts, _, _ = windowed_argmax(x.numpy(), tmax.numpy(), blur, _TILE, _BLOCK, _MAX_EXTRA, threads)
    if torch.get_num_threads() != threads:  # numba's OpenMP pool started: keep the caller's count
        torch.set_num_threads(threads)
    return torch.from_numpy(pts)


def native_decoder_available() -> bool:
    """True when the compiled reference-decoder kernel (numba) can be used."""
    from fabrec.heatmap_kernels import AVAILABLE

    return AVAILABLE


def decode_reference(heatmaps: torch.Tensor, blur: int = 9, native: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' decoder: ``blur x blur`` box filter, then the integer argmax.

    Only the tiles that can hold the argmax are blurred (see ``_blur_argmax_windowed``), read
    in place from contiguous or channels-last maps; maps with non-finite values and maps not
    tiled by 8 get the full blur. Same points as blurring
    every map in full (tested), up to float rounding in exact ties. On the CPU the windowed
    search runs in a compiled kernel (:mod:`fabrec.heatmap_kernels`) when numba is installed
    (``native=None``: if available; ``False``: torch operations only): bit-identical points.

    Returns points ``(N, K, 2)`` in heatmap pixels and confidence ``(N, K)`` (the raw
    heatmap's peak value).
    """
    n, k, h, w = heatmaps.shape
    x = heatmaps.float()
    if native is None:
        native = native_decoder_available()
    if not (x.is_contiguous() or _channels_last(x)):
        x = x.contiguous()
    if h % _TILE or w % _TILE or min(h, w) < _TILE * _BLOCK or blur // 2 >= _TILE or n * k == 0:
        return _blur_argmax_full(x, blur).float(), x.reshape(n, k, -1).amax(-1)
    tmax = _tile_max(x)
    conf = tmax.flatten(2).amax(-1)
    bad = ~torch.isfinite(conf)
    if bad.all():
        return _blur_argmax_full(x, blur).float(), conf
    if not bad.any():
        if native and x.device.type == "cpu":
            return _blur_argmax_native(x, blur, tmax).float(), conf
        return _blur_argmax_windowed(x, blur, tmax)[0].float(), conf
    keep = bad[..., None, None]  # NaN/Inf maps: windowed pass on zeros, then the full blur
    pts, _ = _blur_argmax_windowed(torch.where(keep, 0.0, x), blur, torch.where(keep, 0.0, tmax))
    sel = bad.nonzero(as_tuple=True)
    pts[sel] = _blur_argmax_full(x[sel].unsqueeze(0), blur)[0]
    return pts.float(), conf


def decode_subpixel(heatmaps: torch.Tensor, blur: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference argmax, moved to the nearby raw maximum, refined by a per-axis quadratic fit
    of the log-heatmap values around it.

    For a Gaussian peak the log is exactly quadratic, so the fit recovers the sub-pixel
    centre. Falls back to the integer position where neighbours are not positive.
    Returns points ``(N, K, 2)`` in heatmap pixels and confidence ``(N, K)``.
    """
    pts, conf = decode_reference(heatmaps, blur)
    n, k, h, w = heatmaps.shape
    x = heatmaps.float()
    flat = x.reshape(n, k, h * w)
    ix, iy = pts[..., 0].long(), pts[..., 1].long()
    # climb to the raw maximum next to the blurred argmax (the blur can shift it near borders)
    offs = [(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    for _ in range(3):
        cand_x = torch.stack([(ix + dx).clamp(0, w - 1) for dx, _ in offs], -1)
        cand_y = torch.stack([(iy + dy).clamp(0, h - 1) for _, dy in offs], -1)
        vals = flat.gather(-1, (cand_y * w + cand_x).reshape(n, k, -1)).reshape(n, k, 9)
        best = vals.argmax(-1, keepdim=True)
        ix, iy = cand_x.gather(-1, best).squeeze(-1), cand_y.gather(-1, best).squeeze(-1)
    pts = torch.stack([ix, iy], -1).float()
    ix, iy = ix.clamp(1, w - 2), iy.clamp(1, h - 2)

    def at(dx: int, dy: int) -> torch.Tensor:
        return flat.gather(-1, ((iy + dy) * w + (ix + dx)).unsqueeze(-1)).squeeze(-1)

    c, l, r, u, d = at(0, 0), at(-1, 0), at(1, 0), at(0, -1), at(0, 1)
    eps = 1e-6
    ok = (c > eps) & (l > eps) & (r > eps) & (u > eps) & (d > eps)
    lc, ll, lr, lu, ld = (torch.log(v.clamp_min(eps)) for v in (c, l, r, u, d))

    def offset(a: torch.Tensor, m: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        den = a - 2 * m + b
        off = torch.where(den < -1e-9, 0.5 * (a - b) / den, torch.zeros_like(den))
        return off.clamp(-1.0, 1.0)

    ox = torch.where(ok, offset(ll, lc, lr), torch.zeros_like(c))
    oy = torch.where(ok, offset(lu, lc, ld), torch.zeros_like(c))
    refined = torch.stack([ix.float() + ox, iy.float() + oy], -1)
    # keep the integer estimate where the clamp moved the window (peak on the border)
    on_edge = (pts[..., 0].long() != ix) | (pts[..., 1].long() != iy)
    refined = torch.where(on_edge.unsqueeze(-1), pts, refined)
    return refined, conf


def decode_heatmaps(hm: torch.Tensor, decoder: str, crop_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Heatmaps ``(N, K, H, H)`` -> points ``(N, K, 2)`` in crop pixels of a ``crop_size`` crop
    and confidence ``(N, K)`` (the peak value), with decoder ``reference`` or ``subpixel``."""
    pts, conf = resolve(DECODERS, decoder, "decoder")(hm)
    return heatmap_to_crop(pts, crop_size, hm.shape[-1]), conf
