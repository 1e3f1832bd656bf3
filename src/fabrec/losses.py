"""Losses of the autoencoder stage (L1, SSIM contrast-structure, GAN) and the heatmap stage."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fabrec.config import AELossConfig, AEScheduleConfig


def l1_loss_255(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Reconstruction loss: mean absolute error in 0-255 units (images in [0,1]-scaled space).

    Shapes: ``(N, C, H, W)`` twice -> scalar (mean over images of the per-image MAE).
    """
    return (x - y).abs().flatten(1).mean(1).mean() * 255.0


def gaussian_window(size: int, sigma: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian of ``size`` taps, ``(size,)``."""
    coords = torch.arange(size, dtype=dtype) - (size - 1) / 2.0
    g = torch.exp(-(coords**2) / (2.0 * sigma**2))
    return g / g.sum()


def _ssim_maps(
    x: torch.Tensor, y: torch.Tensor, window: int, sigma: float, data_range: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel luminance and contrast-structure maps, valid convolution, per channel.

    Shapes: ``(N, C, H, W)`` -> two ``(N, C, H-w+1, W-w+1)`` maps (``w`` clipped to the image).

    The statistics are always computed in at least float32 with autocast switched off: under
    bf16 autocast ``blur(x*x) - mu_x**2`` cancels catastrophically on smooth skin (8 mantissa
    bits against variances ~1e-4 of a squared mean ~0.1), which turns ``cs`` into noise and
    wrecked bf16 GPU training the epoch L_cs switched on. Variances and covariance are taken
    about each image's per-channel mean (exact: they are shift-invariant), which keeps the
    cancellation small in float32 too.
    """
    dt = torch.promote_types(torch.promote_types(x.dtype, y.dtype), torch.float32)
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, y = x.to(dt), y.to(dt)
        c = x.shape[1]
        w = min(window, x.shape[-1], x.shape[-2])
        g = gaussian_window(w, sigma, dt).to(x.device)
        kh = g.view(1, 1, w, 1).expand(c, 1, w, 1)
        kw = g.view(1, 1, 1, w).expand(c, 1, 1, w)

        def blur(t: torch.Tensor) -> torch.Tensor:
            return F.conv2d(F.conv2d(t, kh, groups=c), kw, groups=c)

        c1 = (0.01 * data_range) ** 2
        c2 = (0.03 * data_range) ** 2
        mx = x.mean((2, 3), keepdim=True).detach()
        my = y.mean((2, 3), keepdim=True).detach()
        xc, yc = x - mx, y - my  # blur(xc) = mu_x - mx: the window sums to one
        mu_xc, mu_yc = blur(xc), blur(yc)
        var_x = blur(xc * xc) - mu_xc**2
        var_y = blur(yc * yc) - mu_yc**2
        cov = blur(xc * yc) - mu_xc * mu_yc
        mu_x, mu_y = mu_xc + mx, mu_yc + my
        lum = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
        cs = (2 * cov + c2) / (var_x + var_y + c2)
    return lum, cs


def cs_loss(
    x: torch.Tensor,
    y: torch.Tensor,
    window: int = 31,
    sigma: float = 1.5,
    data_range: float = 2.0,
) -> torch.Tensor:
    """SSIM contrast-structure loss ``1 - mean(cs)`` (no luminance term).

    ``cs = (2 s_xy + C2) / (s_x^2 + s_y^2 + C2)`` over Gaussian windows (sigma 1.5, ``window``
    taps, valid convolution, per channel), ``C2 = (0.03 * data_range)^2``.
    Shapes: ``(N, C, H, W)`` twice -> scalar. Zero for identical images.
    """
    _, cs = _ssim_maps(x, y, window, sigma, data_range)
    return 1.0 - cs.mean()


def ssim(
    x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5, data_range: float = 1.0
) -> torch.Tensor:
    """Full SSIM (luminance * contrast-structure) per image, ``(N,)``; for validation reports."""
    lum, cs = _ssim_maps(x, y, window, sigma, data_range)
    return (lum * cs).flatten(1).mean(1)


def gan_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss: BCE(real -> 1) + BCE(fake -> 0), each a mean over the batch."""
    return F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def gan_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: BCE(fake -> 1) = -log D(fake)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def heatmap_loss(pred: torch.Tensor, target: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Mean squared error over all heatmap elements, times ``scale`` (authors: 300).

    Shapes: ``(N, L, H, W)`` twice -> scalar.
    """
    return F.mse_loss(pred, target) * scale


AE_TERMS = ("rec", "cs", "enc", "adv")  # the autoencoder's generator-side terms, in summation order


def ae_terms_on(it: int, epoch: int, loss: AELossConfig, schedule: AEScheduleConfig) -> tuple[str, ...]:
    """Which of :data:`AE_TERMS` iteration ``it`` (0-based) of 1-based ``epoch`` adds: ``rec``
    always; ``cs`` and ``adv`` once the curriculum reaches them (``cs_from_epoch``,
    ``adv_from_epoch``; from the start without a curriculum); ``enc`` every ``enc_every``
    iterations; a term with weight 0 never."""
    curriculum = schedule.curriculum
    on = ["rec"]
    if loss.w_cs > 0 and (not curriculum or epoch >= schedule.cs_from_epoch):
        on.append("cs")
    if loss.w_enc > 0 and it % schedule.enc_every == 0:
        on.append("enc")
    if loss.w_adv > 0 and (not curriculum or epoch >= schedule.adv_from_epoch):
        on.append("adv")
    return tuple(on)


def mix_ae_losses(terms: dict[str, torch.Tensor], loss: AELossConfig) -> torch.Tensor:
    """The encoder/generator objective ``w_rec*L_rec + w_cs*L_cs + w_enc*L_enc + w_adv*L_adv``
    over the terms given (scalars), summed in :data:`AE_TERMS` order."""
    weights = {"rec": loss.w_rec, "cs": loss.w_cs, "enc": loss.w_enc, "adv": loss.w_adv}
    unknown = set(terms) - set(AE_TERMS)
    if unknown or "rec" not in terms:
        raise ValueError(f"terms must include rec and be among {AE_TERMS}, got {sorted(terms)}")
    total = weights["rec"] * terms["rec"]
    for name in AE_TERMS[1:]:
        if name in terms:
            total = total + weights[name] * terms[name]
    return total
