import numpy as np
import pytest

from fabrec.config import AugmentConfig
from fabrec.transforms import Box, augment_matrix, crop_matrix, transform_points, warp


def blob(h: int, w: int, p: tuple[float, float], sigma: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    g = np.exp(-((xx - p[0]) ** 2 + (yy - p[1]) ** 2) / (2 * sigma**2))
    return g.astype(np.float32)[..., None]


def centroid(img: np.ndarray) -> np.ndarray:
    m = img[..., 0].astype(np.float64)
    yy, xx = np.mgrid[0 : m.shape[0], 0 : m.shape[1]]
    return np.array([(m * xx).sum() / m.sum(), (m * yy).sum() / m.sum()])


@pytest.mark.parametrize("seed", range(12))
def test_points_follow_the_image_within_a_tenth_of_a_pixel(seed: int) -> None:
    rng = np.random.default_rng(seed)
    side = rng.uniform(150, 500)  # down-scaling by up to ~4x exercises the area pre-shrink path
    h = w = 600
    p = rng.uniform(260, 340, 2)
    img = blob(h, w, tuple(p), sigma=side / 40)
    box = Box(300.0 + rng.uniform(-5, 5), 300.0 + rng.uniform(-5, 5), side)
    cfg = AugmentConfig(rotate=45, translate=0.04, shear=5, flip=0.5)
    a, _ = augment_matrix(rng, 128, cfg)
    m = a @ crop_matrix(box, 128)
    out = warp(img, m, 128)
    expect = transform_points(p[None], m)[0]
    assert np.abs(centroid(out[..., None] if out.ndim == 2 else out) - expect).max() < 0.1


def test_crop_maps_box_centre_to_crop_centre_and_edges_to_edges() -> None:
    box = Box.from_xywh(10, 20, 100, 50)  # square side 100 around centre (59.5, 44.5)
    assert box.side == 100 and box.cx == 59.5 and box.cy == 44.5
    m = crop_matrix(box, 64)
    np.testing.assert_allclose(transform_points(np.array([[59.5, 44.5]]), m), [[31.5, 31.5]])
    # the box's left edge (x = 10 - 0.5 in pixel-centre coordinates) maps to the crop's edge
    np.testing.assert_allclose(transform_points(np.array([[9.5, 44.5]]), m)[0, 0], -0.5)
    assert Box.from_xywh(*box.to_xywh()) == box


def test_flip_mirrors_points() -> None:
    rng = np.random.default_rng(0)
    cfg = AugmentConfig(flip=1.0, rotate=0, translate=0, shear=0, scale_min=1, scale_max=1)
    a, flipped = augment_matrix(rng, 100, cfg)
    assert flipped
    np.testing.assert_allclose(transform_points(np.array([[10.0, 30.0]]), a), [[89.0, 30.0]])


def test_box_from_landmarks_rule() -> None:
    pts = np.array([[0.0, 0.0], [100.0, 100.0]])
    b = Box.from_landmarks(pts, top=0.25, bottom=0.15)
    assert b.side == 140.0 and b.cx == 50.0 and b.cy == pytest.approx(45.0)
