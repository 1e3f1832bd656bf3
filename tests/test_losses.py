import torch

from fabrec.losses import cs_loss, gan_d_loss, gan_g_loss, heatmap_loss, l1_loss_255, ssim


def test_l1_is_in_255_units() -> None:
    x = torch.zeros(2, 3, 4, 4)
    y = torch.full((2, 3, 4, 4), 0.1)
    assert abs(l1_loss_255(x, y).item() - 25.5) < 1e-4


def test_cs_loss_zero_for_identical_and_positive_otherwise() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 40, 40, generator=g) - 0.5
    assert abs(cs_loss(x, x).item()) < 1e-6
    y = x + 0.3 * torch.randn(2, 3, 40, 40, generator=g)
    assert cs_loss(x, y).item() > 0.05
    # luminance is ignored: a constant shift does not change contrast-structure
    assert abs(cs_loss(x, x + 0.2).item()) < 1e-5
    assert abs(ssim(x + 0.5, x + 0.5).mean().item() - 1.0) < 1e-5


def test_cs_loss_gradient_is_correct() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 2, 12, 12, generator=g, dtype=torch.float64)
    y = torch.rand(1, 2, 12, 12, generator=g, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: cs_loss(x, t, window=7), (y,))


def test_gan_losses_match_log_formulas() -> None:
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 0.5])
    sig = torch.sigmoid
    expected_d = -(torch.log(sig(real)).mean() + torch.log(1 - sig(fake)).mean())
    assert torch.allclose(gan_d_loss(real, fake), expected_d)
    assert torch.allclose(gan_g_loss(fake), -torch.log(sig(fake)).mean())


def test_heatmap_loss_is_scaled_mse() -> None:
    a, b = torch.zeros(1, 2, 4, 4), torch.ones(1, 2, 4, 4)
    assert heatmap_loss(a, b, scale=300).item() == 300.0


def _smooth_face_like(seed: int, size: int = 96) -> torch.Tensor:
    """Smooth, low-contrast 'skin' in model space (per-channel offsets like a face crop) with a
    little sensor noise: the regime where local variances are ~1e-4 against means ~0.1."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    phase = float(torch.rand(1, generator=g)) * 0.3
    base = 0.3 + 0.1 * torch.sin(3 * xx + phase) * torch.cos(2 * yy)
    img = torch.stack([base, base - 0.05, base - 0.1])[None]
    return img + 0.003 * torch.randn(img.shape, generator=g)


def test_cs_loss_is_computed_in_fp32_under_bf16_autocast() -> None:
    """Regression: under bf16 autocast the SSIM statistics cancelled catastrophically
    (loss -0.008 instead of +0.005 on these images), which collapsed bf16 GPU training."""
    x = _smooth_face_like(0)
    y = _smooth_face_like(1).requires_grad_(True)
    ref = cs_loss(y, x)
    (g_ref,) = torch.autograd.grad(ref, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = cs_loss(y, x)
        val = ssim(y.detach(), x)
    (g_got,) = torch.autograd.grad(got, y)
    assert got.dtype == torch.float32
    assert ref.item() > 0
    assert abs(got.item() - ref.item()) < 1e-6
    assert torch.allclose(val, ssim(y.detach(), x), atol=1e-6)
    cos = torch.nn.functional.cosine_similarity(g_ref.flatten(), g_got.float().flatten(), dim=0)
    assert cos.item() > 0.99999


def test_cs_loss_is_shift_invariant_in_float32() -> None:
    """A large common offset must not change cs (variances about the mean, not raw moments)."""
    x = _smooth_face_like(2)
    y = _smooth_face_like(3)
    a = cs_loss(y, x)
    b = cs_loss(y + 0.8, x + 0.8)
    assert abs(a.item() - b.item()) < 1e-5
