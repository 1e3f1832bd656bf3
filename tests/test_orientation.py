"""The orientation rule: the plain score, the margin that keeps a photo's own orientation, and
a fitted rule carried by the model file."""

from __future__ import annotations

import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fabrec.errors import FabrecError
from fabrec.face_filter import FaceFilter
from fabrec.model_file import export_weights, read_model_file
from fabrec.orientation import OrientationChooser, choose, is_upright, plain_score
from fabrec.predict import LandmarkPredictor
from fabrec.sample_photo import SAMPLE_IMAGE
from fabrec.weights import bundled


def test_choose_keeps_the_upright_candidate_unless_another_beats_it_by_the_margin() -> None:
    assert choose([0.50, 0.55], [True, False]) == 1  # no margin: the best
    assert choose([0.50, 0.55], [True, False], margin=0.06) == 0  # within the margin: upright
    assert choose([0.30, 0.55], [True, False], margin=0.06) == 1  # a sideways photo is still righted
    assert choose([0.3, 0.4], [False, False], margin=0.5) == 1
    assert is_upright(math.radians(30)) and not is_upright(math.radians(90)) and is_upright(math.radians(350))
    assert plain_score(np.array([0.5, 0.7]), float("nan")) == pytest.approx(0.6)


def test_a_fitted_rule_travels_in_the_model_file_and_rights_a_turned_photo(tmp_path: Path) -> None:
    """A rule that (wrongly) prefers nothing but the margin still finds the turned face."""
    import cv2

    flt = LandmarkPredictor.from_pretrained("default", quality=False).face_filter
    upright = replace(flt, weights=np.zeros_like(flt.weights), bias=0.0)
    rule = OrientationChooser(upright, 0.2, 0.06, {"note": "test"})
    again = OrientationChooser.from_dict(rule.to_dict())
    assert again.weight == 0.2 and again.margin == 0.06
    with pytest.raises(FabrecError, match="not an orientation rule"):
        OrientationChooser.from_dict({"format": "x"})
    out = tmp_path / "m.safetensors"
    export_weights(replace(read_model_file("default"), orientation=rule.to_dict()), out)
    p = LandmarkPredictor.from_pretrained(out, rotations=(0, 90, 180, 270), quality=False, device="cpu")
    assert p.model.orientation is not None
    rgb = cv2.cvtColor(cv2.imread(str(SAMPLE_IMAGE)), cv2.COLOR_BGR2RGB)
    (up,) = p.predict(rgb)
    (turned,) = p.predict(np.ascontiguousarray(np.rot90(rgb)))  # turned 90 degrees anticlockwise
    assert abs(math.degrees(turned.crop.angle) - math.degrees(up.crop.angle) + 90) % 360 < 20
    shutil.copy(bundled("default"), tmp_path / "copy.safetensors")  # the bundled file's own rule travels too
    assert LandmarkPredictor.from_pretrained(tmp_path / "copy.safetensors").model.orientation is not None
    export_weights(replace(read_model_file("default"), orientation=None), tmp_path / "plain.safetensors")
    assert LandmarkPredictor.from_pretrained(tmp_path / "plain.safetensors").model.orientation is None
    assert isinstance(FaceFilter.from_dict(rule.to_dict()["upright"]), FaceFilter)
