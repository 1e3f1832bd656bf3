"""A new scheme's heatmap layer as fitted combinations of a trained model's channels, and the
few-shot default (--init-from auto)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fabrec.transfer import fit_combination
from fabrec.transfer import FEW_SHOT_MAX, resolve_init_from


def test_a_channel_that_is_a_blend_of_known_ones_is_recovered() -> None:
    g = torch.Generator().manual_seed(0)
    source = torch.rand(6, 8, 16, 16, generator=g)
    truth = torch.zeros(8, 2)
    truth[[1, 2, 3], 0] = 1 / 3  # e.g. an eye centre from three contour points
    truth[5, 1] = 1.0  # a point the source already has
    targets = torch.einsum("nlhw,lk->nkhw", source, truth)
    a = fit_combination(source, targets, ridge=1e-9)
    torch.testing.assert_close(a, truth, atol=1e-4, rtol=0)


def test_the_layer_weight_combination_equals_the_heatmap_combination() -> None:
    """Linear, bias-free transposed conv: combining weight slices == combining output channels."""
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(2, 5, 8, 8, generator=g)
    w = torch.randn(5, 7, 4, 4, generator=g)
    a = torch.randn(7, 3, generator=g)
    heat = F.conv_transpose2d(feats, w, stride=2, padding=1)
    combined = F.conv_transpose2d(feats, torch.einsum("clhw,lk->ckhw", w, a), stride=2, padding=1)
    torch.testing.assert_close(combined, torch.einsum("nlhw,lk->nkhw", heat, a), atol=1e-4, rtol=1e-4)


def test_init_from_auto_transfers_only_for_few_images_on_the_bundled_autoencoder(caplog) -> None:
    with caplog.at_level("INFO", logger="fabrec"):
        assert resolve_init_from("auto", "default", 10) == "default"
    assert "--init-from none" in caplog.records[0].getMessage()
    assert resolve_init_from("auto", "default", FEW_SHOT_MAX + 1) is None
    assert resolve_init_from("auto", "runs/ae/last.pt", 10) is None
    assert resolve_init_from("none", "default", 10) is None
    assert resolve_init_from(None, "default", 10) is None
    assert resolve_init_from("my.safetensors", "default", 500) == "my.safetensors"


def test_flip_averaging_is_mirror_symmetric_and_needs_flip_pairs() -> None:
    """With --flip, a mirrored face gives exactly the mirrored points (swapped by the flip pairs)."""
    import dataclasses

    import numpy as np
    import pytest

    from fabrec.errors import FabrecError
    from fabrec.io import read_image
    from fabrec.landmark_model import load_landmark_model
    from fabrec.normalization import to_tensor
    from fabrec.predict import LandmarkPredictor
    from fabrec.sample_photo import SAMPLE_IMAGE
    from fabrec.schemes import Scheme, flip_points
    from fabrec.transforms import crop_matrix, warp

    model = dataclasses.replace(load_landmark_model("default"), flip_average=True)
    (face,) = LandmarkPredictor(model, device="cpu").predict(str(SAMPLE_IMAGE))
    crop = to_tensor(warp(read_image(SAMPLE_IMAGE), crop_matrix(face.crop, model.image_size), model.image_size))[None]
    pts, _, _ = model.locate(torch.cat([crop, crop.flip(-1)]))
    mirrored = pts[1].numpy().copy()
    mirrored[:, 0] = model.image_size - 1 - mirrored[:, 0]
    np.testing.assert_allclose(flip_points(mirrored, model.scheme), pts[0].numpy(), atol=1e-3)
    no_pairs = Scheme("bare", tuple(f"p{i}" for i in range(68)), None, (36, 45))
    with pytest.raises(FabrecError, match="flip pairs"):
        dataclasses.replace(model, scheme=no_pairs)
