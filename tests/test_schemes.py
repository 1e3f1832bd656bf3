import json

import numpy as np
import pytest

from fabrec.errors import FabrecError
from fabrec.schemes import BUILTIN, flip_points, get_scheme


@pytest.mark.parametrize("name,k", [("68", 68), ("98", 98), ("19", 19)])
def test_builtin_flips_are_involutions(name: str, k: int) -> None:
    s = BUILTIN[name]
    assert s.num_points == k
    assert sorted(s.flip) == list(range(k))
    assert all(s.flip[s.flip[i]] == i for i in range(k))


def test_68_pairs() -> None:
    f = BUILTIN["68"].flip
    assert (f[0], f[36], f[39], f[48], f[60], f[65], f[30], f[8]) == (16, 45, 42, 54, 64, 67, 30, 8)
    assert BUILTIN["68"].norm_points == (36, 45) and BUILTIN["98"].norm_points == (60, 72)
    assert BUILTIN["19"].norm_points is None


def test_flip_of_a_symmetric_face_matches_mirroring() -> None:
    # a left-right symmetric 68-point face: mirroring x then reordering reproduces it
    s = BUILTIN["68"]
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 100, (68, 2))
    for i, j in enumerate(s.flip):
        if i < j:
            pts[j] = [100 - pts[i, 0], pts[i, 1]]
        elif i == j:
            pts[i, 0] = 50
    mirrored = pts.copy()
    mirrored[:, 0] = 100 - mirrored[:, 0]
    np.testing.assert_allclose(flip_points(mirrored, s), pts)


def test_custom_scheme_files(tmp_path) -> None:
    y = tmp_path / "five.yaml"
    y.write_text("name: five\npoints: [le, re, nose, lm, rm]\nflip_pairs: [[le, re], [lm, rm]]\nnorm_points: [le, re]\n")
    s = get_scheme(y)
    assert s.num_points == 5 and s.flip == (1, 0, 2, 4, 3) and s.norm_points == (0, 1)
    j = tmp_path / "three.json"
    j.write_text(json.dumps({"points": 3}))
    s3 = get_scheme(j)
    assert s3.flip is None and s3.norm_points is None
    bad = tmp_path / "bad.yaml"
    bad.write_text("points: [a, b]\nflip_pairs: [[a, c]]\n")
    with pytest.raises(FabrecError, match="unknown point"):
        get_scheme(bad)
    with pytest.raises(FabrecError, match="unknown scheme"):
        get_scheme("77")
