import numpy as np
import torch

from fabrec.heatmaps import (
    crop_to_heatmap,
    decode_reference,
    decode_subpixel,
    heatmap_to_crop,
    make_heatmaps,
)


def test_targets_peak_at_the_exact_subpixel_point() -> None:
    p = torch.tensor([[[40.3, 70.8]]])
    hm = make_heatmaps(p, 128, sigma=7)
    assert hm.shape == (1, 1, 128, 128)
    assert hm.max() <= 1.0
    # value at a pixel equals the analytic Gaussian (no rounding of the centre)
    assert abs(hm[0, 0, 70, 40].item() - np.exp(-(0.3**2 + 0.8**2) / 98)) < 1e-6


def test_subpixel_round_trip_within_half_a_pixel() -> None:
    g = torch.Generator().manual_seed(0)
    p = torch.rand(4, 30, 2, generator=g) * 100 + 14  # away from the borders
    back, conf = decode_subpixel(make_heatmaps(p, 128))
    assert (back - p).abs().max() < 0.5
    assert (back - p).abs().mean() < 0.05
    assert torch.allclose(conf, torch.ones_like(conf), atol=0.02)


def test_reference_decoder_is_integer_argmax() -> None:
    p = torch.tensor([[[30.2, 50.7]]])
    ref, _ = decode_reference(make_heatmaps(p, 128))
    assert ref.tolist() == [[[30.0, 51.0]]]


def test_coordinate_frames_round_trip() -> None:
    p = torch.tensor([[0.0, 255.0], [127.5, 3.25]])
    h = crop_to_heatmap(p, 256, 128)
    assert torch.allclose(h[0], torch.tensor([-0.25, 127.25]))
    assert torch.allclose(heatmap_to_crop(h, 256, 128), p)


def test_separable_blur_matches_the_2d_box_filter() -> None:
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    hm = torch.rand(2, 3, 40, 40, generator=g)
    ref = F.avg_pool2d(hm.reshape(6, 1, 40, 40), 9, 1, 4, count_include_pad=False).reshape(2, 3, 40, 40)
    flat = ref.reshape(2, 3, -1).argmax(-1)
    pts, _ = decode_reference(hm)
    assert torch.equal(pts[..., 1].long() * 40 + pts[..., 0].long(), flat)


def test_box_blur_equals_avg_pool_without_padding_counts() -> None:
    import torch.nn.functional as F

    from fabrec.heatmaps import box_blur

    x = torch.rand(2, 3, 17, 23, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ref = F.avg_pool2d(x.reshape(6, 1, 17, 23), 9, 1, 4, count_include_pad=False).reshape(2, 3, 17, 23)
    torch.testing.assert_close(box_blur(x, 9), ref)
