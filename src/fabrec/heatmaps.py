"""Heatmap targets and decoders.

Crop coordinates (``S x S`` crop) and heatmap coordinates (``H x H``) are both 0-based pixel
centres; ``h = (p + 0.5) * H / S - 0.5``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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


def decode_reference(heatmaps: torch.Tensor, blur: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' decoder: ``blur x blur`` box filter, then the integer argmax.

    Returns points ``(N, K, 2)`` in heatmap pixels and confidence ``(N, K)`` (the raw
    heatmap's peak value).
    """
    n, k, h, w = heatmaps.shape
    x = heatmaps.float()
    blurred = box_blur(x, blur)
    px, py, _ = _argmax2d(blurred)
    conf = x.reshape(n, k, -1).amax(-1)
    return torch.stack([px, py], -1).float(), conf


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


DECODERS = {"reference": decode_reference, "subpixel": decode_subpixel}
