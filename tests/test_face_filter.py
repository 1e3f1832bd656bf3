"""The face filter: fitted for one model file and found by that file's content; keeps the real
face, drops face-like non-faces in ``predict`` and ``prepare-faces``."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fabrec.faces.detectors import Detection, get_detector
from fabrec.errors import FabrecError
from fabrec.face_filter import FaceFilter, face_features, fit_logistic
from fabrec.io import read_image
from fabrec.model_file import with_face_filter, with_values
from fabrec.predict import LandmarkPredictor
from fabrec.prepare_faces import PrepareConfig, prepare_faces
from fabrec.sample_photo import SAMPLE_IMAGE
from fabrec.weights import bundled


@pytest.fixture(scope="module")
def predictor() -> LandmarkPredictor:
    return LandmarkPredictor.from_pretrained("default", device="cpu")


def test_logistic_fit_separates_and_the_filter_round_trips() -> None:
    rng = np.random.default_rng(0)
    codes = np.r_[rng.normal(1, 1, (200, 5)), rng.normal(-1, 1, (200, 5))]
    conf = np.r_[rng.uniform(0.5, 0.9, (200, 3)), rng.uniform(0.1, 0.5, (200, 3))]
    y = np.r_[np.ones(200), np.zeros(200)]
    w, b, m, s = fit_logistic(face_features(codes, conf), y, 1.0)
    flt = FaceFilter(w, b, m, s, 0.5, "x" * 64, {})
    p = flt.score(codes, conf)
    assert ((p >= 0.5) == (y == 1)).mean() > 0.95
    again = FaceFilter.from_dict(json.loads(json.dumps(flt.to_dict())))
    np.testing.assert_allclose(again.score(codes, conf), p)
    with pytest.raises(FabrecError, match="not a face filter"):
        FaceFilter.from_dict({"format": "other"})
    with pytest.raises(FabrecError, match="made for 5-D codes"):
        flt.score(codes[:, :4], conf)


def test_the_filter_and_the_cut_live_in_the_model_file_and_follow_it(tmp_path: Path) -> None:
    """Inside the weights: a copy loaded by any path behaves like ``default``; the file written
    without a filter has none; the cut without a filter is the file's own."""
    default = LandmarkPredictor.from_pretrained("default", quality=False)
    assert default.face_filter is not None and default.min_confidence == 0.0
    copy = tmp_path / "mine.safetensors"
    shutil.copy(bundled("default"), copy)
    mine = LandmarkPredictor.from_pretrained(copy, quality=False)
    np.testing.assert_array_equal(mine.face_filter.weights, default.face_filter.weights)
    assert LandmarkPredictor.from_pretrained(copy, face_filter=False).min_confidence == 0.0  # the bundled file's
    cut = tmp_path / "cut.safetensors"
    with_values(copy, cut, min_confidence=0.35)
    assert LandmarkPredictor.from_pretrained(cut, face_filter=False).min_confidence == 0.35
    assert LandmarkPredictor.from_pretrained(cut).min_confidence == 0.0  # with its filter the filter decides
    bare = tmp_path / "bare.safetensors"
    with_face_filter(copy, None, bare, min_confidence=0.0)
    p = LandmarkPredictor.from_pretrained(bare, quality=False)
    assert p.face_filter is None and p.min_confidence == 0.0
    again = tmp_path / "again.safetensors"
    with_face_filter(bare, default.face_filter, again)
    assert LandmarkPredictor.from_pretrained(again).face_filter.threshold == default.face_filter.threshold
    assert LandmarkPredictor.from_pretrained("default", face_filter=False).face_filter is None


def test_predict_keeps_the_face_and_drops_face_like_non_faces(predictor: LandmarkPredictor) -> None:
    rgb = read_image(SAMPLE_IMAGE)
    (face,) = predictor.predict(rgb)
    assert face.face_score >= predictor.face_filter.threshold
    assert face.to_dict()["face_score"] == round(face.face_score, 4)
    det = get_detector("yunet").detect(rgb)[0]
    flat = np.full_like(rgb, 128)
    stripes = (np.indices(rgb.shape[:2]).sum(0) // 6 % 2 * 200 + 30).astype(np.uint8)[..., None].repeat(3, -1)
    fake = Detection(det.box, 0.7, det.points)  # a "detection" where there is no face
    got = predictor.detected_faces(rgb, [fake])
    assert got[0] is not None and got[0].face_score >= predictor.face_filter.threshold
    for non_face in (flat, stripes):
        assert predictor.detected_faces(non_face, [fake]) == [None]


def test_prepare_faces_drops_what_the_filter_rejects(tmp_path: Path, monkeypatch) -> None:
    """A photo and a striped image the detector is made to fire on: the face is written, the
    stripes are skipped as not a face (and kept with ``face_filter=None``)."""
    src = tmp_path / "src"
    src.mkdir()
    rgb = read_image(SAMPLE_IMAGE)
    shutil.copy(SAMPLE_IMAGE, src / "face.jpg")
    stripes = (np.indices(rgb.shape[:2]).sum(0) // 6 % 2 * 200 + 30).astype(np.uint8)
    import cv2

    cv2.imwrite(str(src / "stripes.png"), stripes)
    det = get_detector("yunet").detect(rgb)[0]
    from fabrec.faces.yunet import YuNet

    real = YuNet.detect
    monkeypatch.setattr(YuNet, "detect", lambda self, im: real(self, im) or [Detection(det.box, 0.7, det.points)])
    s = prepare_faces(src, tmp_path / "out", PrepareConfig(), progress=None)
    assert s["faces_kept"] == 1 and s["faces_skipped"] == {"not a face (face filter)": 1}
    s = prepare_faces(src, tmp_path / "all", PrepareConfig(face_filter=None), progress=None)
    assert s["faces_kept"] == 2


def test_face_score_is_in_every_output_format(tmp_path: Path) -> None:
    from fabrec.cli import main
    from fabrec.results import csv_header

    for fmt in ("json", "csv"):
        out = tmp_path / fmt
        assert main(["predict", str(SAMPLE_IMAGE), "--out", str(out), "--format", fmt, "--no-images",
                     "--no-progress"]) == 0
    rec = json.loads((tmp_path / "json" / "astronaut.json").read_text())
    assert 0 < rec["faces"][0]["face_score"] <= 1
    header, row = (tmp_path / "csv" / "predictions.csv").read_text().splitlines()[:2]
    assert header.split(",") == csv_header(68)
    assert float(row.split(",")[header.split(",").index("face_score")]) == rec["faces"][0]["face_score"]
