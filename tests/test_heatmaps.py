import numpy as np
import pytest
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


def _full_reference(hm: torch.Tensor) -> torch.Tensor:
    """Blur every pixel of every map (the paper's decoder, no shortcut) and take the argmax."""
    import torch.nn.functional as F

    n, k, h, w = hm.shape
    b = F.avg_pool2d(hm.reshape(n * k, 1, h, w).double(), 9, 1, 4, count_include_pad=False)
    i = b.reshape(n, k, -1).argmax(-1)
    return torch.stack([i % w, i // w], -1).float()


def _hard_maps(size: int) -> torch.Tensor:
    """Maps that stress the windowed decoder: peaks on borders and corners, two far peaks of
    nearly equal height, a narrow spike next to a broad peak, flat and zero maps, pure noise.
    (Peaks sit off the half-pixel grid: a peak exactly between pixels ties two blurred values,
    and which wins then depends on float rounding in any implementation.)"""
    g = torch.Generator().manual_seed(3)
    s = size - 1
    pts = torch.tensor([[0.0, 0.0], [s, s], [0.0, s], [s / 2 + 0.2, 0.0], [3.4, s - 2.2], [s / 2 - 0.3, s / 2 + 0.1]])
    maps = [make_heatmaps(pts[None], size)[0]]
    a = make_heatmaps(torch.tensor([[[10.0, 12.0]]]), size)[0, 0]
    far = make_heatmaps(torch.tensor([[[s - 9.0, s - 11.0]]]), size)[0, 0]
    maps.append(torch.stack([a + 0.999 * far, 0.999 * a + far, a + 0.5 * far]))
    spike = torch.zeros(size, size)
    spike[size // 2, size // 3] = 1.5  # highest raw pixel, but a low blurred value
    broad = make_heatmaps(torch.tensor([[[s - 5.0, 6.0]]]), size, sigma=9)[0, 0]
    maps.append(torch.stack([spike + broad, torch.full((size, size), 0.25), torch.zeros(size, size)]))
    maps.append(torch.rand(3, size, size, generator=g))
    real = make_heatmaps(torch.rand(1, 40, 2, generator=g) * s, size)[0]
    maps.append(0.8 * real + 0.1 * torch.rand(real.shape, generator=g))
    return torch.cat(maps)[None]


def test_windowed_reference_decoder_equals_the_full_blur() -> None:
    for size in (128, 64, 40, 36, 30):  # 36 and 30: not tiled, the full blur runs
        hm = _hard_maps(size)
        pts, conf = decode_reference(hm)
        assert torch.equal(pts, _full_reference(hm)), size
        assert torch.equal(conf, hm.flatten(2).amax(-1))


def test_windowed_decoder_blurs_only_the_block_for_clean_peaks() -> None:
    from fabrec.heatmaps import _MAX_EXTRA, _blur_argmax_windowed, _tile_max

    g = torch.Generator().manual_seed(5)
    hm = 0.9 * make_heatmaps(torch.rand(4, 68, 2, generator=g) * 127, 128)
    hm = hm + 0.05 * torch.rand(hm.shape, generator=g)
    pts, extra = _blur_argmax_windowed(hm, 9, _tile_max(hm))
    assert int(extra.sum()) == 0  # the bound rules out every tile outside the first block...
    assert torch.equal(pts.float(), _full_reference(hm))  # ...and the points are the paper's
    noise = torch.rand(1, 4, 128, 128, generator=g)
    pts, extra = _blur_argmax_windowed(noise, 9, _tile_max(noise))
    assert (extra > _MAX_EXTRA).all()  # no useful bound: the whole map is blurred
    assert torch.equal(pts.float(), _full_reference(noise))


def test_decoder_with_non_finite_maps_keeps_the_others_right() -> None:
    g = torch.Generator().manual_seed(6)
    hm = make_heatmaps(torch.rand(1, 5, 2, generator=g) * 120 + 4, 128)
    hm[0, 1, 10, 10] = float("nan")
    hm[0, 3, 50, 60] = float("inf")
    pts, conf = decode_reference(hm)
    ok = [0, 2, 4]
    assert torch.equal(pts[0, ok], _full_reference(hm[:, ok])[0])
    assert torch.isnan(conf[0, 1]) and torch.isinf(conf[0, 3])


def test_sample_face_crops_are_real_varied_faces() -> None:
    from fabrec.sample_photo import face_crops

    x = face_crops(64, 3, seed=1)
    assert x.shape == (3, 3, 64, 64) and torch.isfinite(x).all()
    assert x.std() > 0.1  # photo content, not a blank canvas
    assert (x[0] - x[1]).abs().mean() > 0.01  # each crop has its own shift / scale / rotation
    assert torch.equal(x, face_crops(64, 3, seed=1))  # seeded


def test_decoder_reads_channels_last_maps_in_place_with_the_same_points() -> None:
    from fabrec.heatmaps import _channels_last

    hm = torch.cat([_hard_maps(128), _hard_maps(128).flip(-1)])
    cl = hm.contiguous(memory_format=torch.channels_last)
    assert _channels_last(cl) and not _channels_last(hm)
    pts, conf = decode_reference(cl)
    assert torch.equal(pts, _full_reference(hm))
    assert torch.equal(conf, hm.flatten(2).amax(-1))
    # a non-finite map in a channels-last batch
    cl = cl.clone()
    cl[1, 2, 5, 7] = float("nan")
    pts, conf = decode_reference(cl)
    assert torch.equal(pts[0], _full_reference(hm[:1])[0]) and torch.isnan(conf[1, 2])


def _stress_batches() -> list[torch.Tensor]:
    """Hard maps, their flips, channels-last copies, quantised maps (many exact ties), maps
    whose side is not 128 and noise maps (every tile a candidate: the full-blur branch)."""
    g = torch.Generator().manual_seed(11)
    out = []
    for size in (128, 64, 48):
        hm = torch.cat([_hard_maps(size), _hard_maps(size).flip(-1).flip(-2)])
        out += [hm, hm.contiguous(memory_format=torch.channels_last), (hm * 8).round() / 8]
    out.append(torch.rand(2, 3, 56, 72, generator=g) ** 6)
    out.append(torch.rand(1, 2, 64, 64, generator=g))
    return out


def test_compiled_decoder_kernel_gives_the_torch_decoders_exact_points() -> None:
    from fabrec.heatmaps import native_decoder_available

    if not native_decoder_available():
        pytest.skip("numba is not installed")
    for hm in _stress_batches():
        pts_native, conf_native = decode_reference(hm, native=True)
        pts_torch, conf_torch = decode_reference(hm, native=False)
        assert torch.equal(pts_native, pts_torch), hm.shape
        assert torch.equal(conf_native, conf_torch)
    for size in (128, 64, 40):
        assert torch.equal(decode_reference(_hard_maps(size), native=True)[0], _full_reference(_hard_maps(size)))


def test_compiled_decoder_kernel_counts_candidates_like_the_torch_search() -> None:
    from fabrec.heatmap_kernels import AVAILABLE, windowed_argmax
    from fabrec.heatmaps import _BLOCK, _MAX_EXTRA, _TILE, _blur_argmax_windowed, _tile_max

    if not AVAILABLE:
        pytest.skip("numba is not installed")
    for hm in _stress_batches():
        tm = _tile_max(hm.float())
        pts, count = _blur_argmax_windowed(hm.float(), 9, tm)
        kp, kc, many = windowed_argmax(hm.float().numpy(), tm.numpy(), 9, _TILE, _BLOCK, _MAX_EXTRA)
        assert torch.equal(torch.from_numpy(kc), count)
        assert torch.equal(torch.from_numpy(many), count > _MAX_EXTRA)
        assert torch.equal(torch.from_numpy(kp), pts)  # incl. the maps blurred in full


def test_decoding_leaves_pytorchs_thread_count_alone() -> None:
    """The compiled kernel must not change torch's OpenMP thread count (numba's OpenMP layer
    shares PyTorch's runtime: it did)."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        decode_reference(torch.rand(4, 68, 64, 64))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
