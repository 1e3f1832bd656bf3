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
