"""Framing: rolled crops, the five-point frame, the bundled YuNet detector, orientation search,
and the same crop for every point scheme."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from fabrec.cli import main
from fabrec.datasets.landmarks import read_folder
from fabrec.demo import SAMPLE_IMAGE
from fabrec.faces.detectors import DetectorOptions, get_detector
from fabrec.faces.yunet import YuNet
from fabrec.registry import DETECTORS
from fabrec.errors import FabrecError
from fabrec.faces.framing import Framing, box_from_five, box_from_shape, fit_similarity, mean_shape
from fabrec.io import read_image
from fabrec.faces.framing import frame_labels
from fabrec.transforms import crop_to_image
from fabrec.predict import LandmarkPredictor
from fabrec.schemes import BUILTIN, Scheme
from fabrec.transforms import Box, crop_matrix, transform_points

_ROT = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def rotate_points(p: np.ndarray, deg: int, w: int, h: int) -> np.ndarray:
    x, y = p[..., 0], p[..., 1]
    return {90: lambda: np.stack([h - 1 - y, x], -1), 180: lambda: np.stack([w - 1 - x, h - 1 - y], -1),
            270: lambda: np.stack([y, w - 1 - x], -1)}[deg]()


def test_rolled_crop_matrix_maps_points_back_exactly() -> None:
    box = Box(120.0, 80.0, 64.0, math.radians(37))
    m = crop_matrix(box, 128)
    pts = np.random.default_rng(0).uniform(0, 200, (10, 2))
    np.testing.assert_allclose(crop_to_image(transform_points(pts, m), m), pts, atol=1e-9)
    # the crop centre is the box centre; the face's x axis becomes the crop's x axis
    np.testing.assert_allclose(transform_points(np.array([[120.0, 80.0]]), m), [[63.5, 63.5]], atol=1e-9)
    ax = transform_points(np.array([[120 + math.cos(box.angle), 80 + math.sin(box.angle)]]), m) - 63.5
    assert ax[0, 1] == pytest.approx(0.0, abs=1e-9) and ax[0, 0] == pytest.approx(2.0)


def test_rolled_landmark_box_is_the_paper_rule_at_zero_and_turns_with_the_face() -> None:
    pts = np.random.default_rng(1).uniform(50, 150, (68, 2))
    assert Box.from_landmarks_rolled(pts, 0.0, 0.18, 0.01) == Box.from_landmarks(pts, 0.18, 0.01)
    a = math.radians(90)
    c = np.array([100.0, 100.0])
    rot = (pts - c) @ np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]]) + c
    b0, b1 = Box.from_landmarks(pts, 0.18, 0.01), Box.from_landmarks_rolled(rot, a, 0.18, 0.01)
    centre = (np.array([b0.cx, b0.cy]) - c) @ np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]]) + c
    np.testing.assert_allclose([b1.cx, b1.cy], centre, atol=1e-9)
    assert b1.side == pytest.approx(b0.side) and b1.angle == a


def test_similarity_fit_and_mean_shape_round_trip() -> None:
    src = np.random.default_rng(2).normal(size=(7, 2))
    a = 3.0 * complex(math.cos(0.4), math.sin(0.4))
    z = a * (src[:, 0] + 1j * src[:, 1]) + (5 - 2j)
    got, t = fit_similarity(src, np.stack([z.real, z.imag], 1))
    assert abs(got - a) < 1e-9 and np.allclose(t, [5, -2])
    box = Box(60.0, 70.0, 90.0, 0.3)
    pts = np.random.default_rng(3).uniform(30, 100, (9, 2))
    shape = mean_shape([pts], [box])
    back = box_from_shape(pts, shape)
    assert back.cx == pytest.approx(60) and back.cy == pytest.approx(70) and back.side == pytest.approx(90)
    assert back.angle == pytest.approx(0.3)
    assert box_from_shape(pts, shape, keep_angle=0.3).side == pytest.approx(90)


def test_five_point_frame_turns_exactly_with_the_photo() -> None:
    pts = np.array([[100.0, 120.0], [160.0, 118.0], [131.0, 150.0], [108.0, 180.0], [152.0, 178.0]])
    box = (80.0, 80.0, 100.0, 130.0)
    up = box_from_five(pts, box, 0.18, 0.01)
    w, h = 300, 260
    x, y, bw, bh = box
    for deg in (90, 180, 270):
        q = rotate_points(pts, deg, w, h)
        corners = rotate_points(np.array([[x, y], [x + bw - 1, y + bh - 1]]), deg, w, h)
        (qx0, qy0), (qx1, qy1) = corners.min(0), corners.max(0)
        b = box_from_five(q, (qx0, qy0, qx1 - qx0 + 1, qy1 - qy0 + 1), 0.18, 0.01)
        c = rotate_points(np.array([up.cx, up.cy]), deg, w, h)
        assert b.cx == pytest.approx(c[0]) and b.cy == pytest.approx(c[1]) and b.side == pytest.approx(up.side)
        assert math.degrees(b.angle - up.angle) % 360 == pytest.approx(deg)


def test_yunet_is_bundled_and_finds_the_demo_face_upright_and_turned() -> None:
    img = read_image(SAMPLE_IMAGE)
    (d,) = YuNet().detect(img)
    assert d.score > 0.8 and d.points.shape == (5, 2)
    assert abs(math.degrees(box_from_five(d.points, d.box, 0.18, 0.01).angle)) < 15
    h, w = img.shape[:2]
    search = YuNet(DetectorOptions(rotations=(0, 90, 180, 270)))
    for deg in (90, 180):
        dets = search.detect(cv2.rotate(img, _ROT[deg]))
        assert len(dets) == 1
        pts = [c.points for c in dets[0].candidates]
        # the candidate from the orientation that made the face upright is the upright detection, exactly
        assert any(np.abs(rotate_points(d.points, deg, w, h) - p).max() < 1e-3 for p in pts)
    assert YuNet().detect(np.full((200, 300, 3), 127, np.uint8)) == []
    assert YuNet(DetectorOptions(min_face=1000)).detect(img) == []


@pytest.mark.parametrize("deg", [90, 180])
def test_predict_on_a_turned_photo_matches_the_upright_result(deg: int) -> None:
    img = read_image(SAMPLE_IMAGE)
    h, w = img.shape[:2]
    p = LandmarkPredictor.from_pretrained("default", device="cpu", rotations=(0, 90, 180, 270), quality=False)
    (up,) = p.predict(img)
    (turned,) = p.predict(np.ascontiguousarray(cv2.rotate(img, _ROT[deg])))
    back = rotate_points(turned.points, 360 - deg, h, w) if deg != 180 else rotate_points(turned.points, 180, w, h)
    iod = np.linalg.norm(up.points[36] - up.points[45])
    assert np.linalg.norm(back - up.points, axis=1).mean() / iod * 100 < 0.5
    assert math.degrees(turned.crop.angle - up.crop.angle) % 360 == pytest.approx(deg, abs=1)


def test_detectors_are_a_registry_with_a_clear_error_for_the_unknown() -> None:
    assert list(DETECTORS)[0] == "yunet"
    assert get_detector("opencv").detect(read_image(SAMPLE_IMAGE))
    with pytest.raises(FabrecError, match="unknown detector 'haar'"):
        get_detector("haar")
    with pytest.raises(FabrecError, match="multiples of 90"):
        YuNet(DetectorOptions(rotations=(45,)))


def test_predict_detector_options_on_the_command_line(tmp_path: Path, capsys) -> None:
    out = tmp_path / "o"
    assert main(["predict", str(SAMPLE_IMAGE), "--out", str(out), "--no-progress", "--no-images", "--device", "cpu",
                 "--detector", "opencv"]) == 0
    faces = json.loads((out / "astronaut.json").read_text())["faces"]
    assert len(faces) == 1 and faces[0]["score"] is None
    assert main(["predict", str(SAMPLE_IMAGE), "--out", str(tmp_path / "y"), "--no-progress", "--no-images",
                 "--device", "cpu", "--min-face", "5000"]) == 0
    assert json.loads((tmp_path / "y" / "astronaut.json").read_text())["faces"] == []
    assert main(["predict", str(SAMPLE_IMAGE), "--out", str(tmp_path / "z"), "--rotations", "45"]) == 2
    assert "--rotations expects multiples of 90" in capsys.readouterr().err


def helen(shared_data: Path, n: int) -> list:
    return read_folder(shared_data / "300w" / "helen" / "trainset", BUILTIN["68"]).samples[:n]


def test_labelled_faces_are_framed_the_same_whatever_the_scheme(shared_data: Path) -> None:
    """The crop of a labelled face comes from the detector, not from the scheme's points."""
    samples = helen(shared_data, 6)
    five = Scheme.from_dict({"name": "five", "points": ["a", "b", "c", "d", "e"]})
    idx = [36, 45, 30, 48, 54]
    five_samples = [type(s)(s.path, s.points[idx], None, s.key) for s in samples]
    det = get_detector("yunet", rotations=(0, 90, 180, 270))
    a = frame_labels(samples, det, Framing("detector", 0.18, 0.01))
    b = frame_labels(five_samples, det, Framing("detector", 0.18, 0.01))
    assert a.detected == b.detected == 6 and a.boxes == b.boxes
    assert a.shape.shape == (68, 2) and b.shape.shape == (5, 2)
    assert five.num_points == 5


def test_a_face_the_detector_misses_is_framed_by_the_mean_shape(shared_data: Path, tmp_path: Path) -> None:
    samples = helen(shared_data, 4)
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((300, 300, 3), 90, np.uint8))
    miss = type(samples[0])(blank, samples[0].points, None, "blank")
    fr = frame_labels([*samples, miss], get_detector("yunet"), Framing("detector", 0.18, 0.01))
    assert fr.detected == 4 and fr.boxes[-1] is not None
    with pytest.raises(FabrecError, match="found none of the 1 labelled faces"):
        frame_labels([miss], get_detector("yunet"), Framing("detector", 0.18, 0.01))


def test_a_custom_scheme_trained_by_detector_framing_predicts_like_it_evaluates(shared_data: Path,
                                                                               tmp_path: Path) -> None:
    """5 points from 8 HELEN photos: the model records its framing and mean shape; `eval`
    crops with the detector like `predict`, so both give the same points on the same photos."""
    five = tmp_path / "five"
    five.mkdir()
    for s in helen(shared_data, 8):
        (five / s.path.name).write_bytes(s.path.read_bytes())
        (five / f"{s.path.stem}.json").write_text(json.dumps({"points": s.points[[36, 45, 30, 48, 54]].tolist()}))
    scheme = tmp_path / "five.yaml"
    scheme.write_text("name: five\npoints: 5\nnorm_points: [0, 1]\n")
    out = tmp_path / "run"
    assert main(["train-landmarks", "--autoencoder", "default", "--init-from", "default", "--dataset", "folder",
                 "--root", str(five), "--scheme", str(scheme), "--max-steps", "2", "--out", str(out),
                 "--workers", "0", "--no-progress", "--device", "cpu", "--set", "val_permille=0"]) == 0
    from fabrec.checkpoint import load_checkpoint

    st = load_checkpoint(out / "last.pt")
    assert st["model"]["framing"] == "detector" and np.asarray(st["mean_shape"]).shape == (5, 2)
    assert main(["eval", "--model", str(out / "last.pt"), "--dataset", "folder", "--root", str(five),
                 "--out", str(tmp_path / "ev"), "--device", "cpu"]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["framing"].startswith("yunet detector") and "8 of 8 found" in metrics["framing"]
    ev = np.load(tmp_path / "ev" / "predictions.npz")
    assert main(["predict", str(five), "--model", str(out / "last.pt"), "--out", str(tmp_path / "pr"),
                 "--no-images", "--no-progress", "--device", "cpu"]) == 0
    for key, pts in zip(ev["keys"], ev["points"]):
        faces = json.loads((tmp_path / "pr" / f"{Path(str(key)).stem}.json").read_text())["faces"]
        best = min(np.abs(np.asarray(f["points"]) - pts).max() for f in faces)
        assert best < 0.05  # the same crop, the same points


def test_the_confidence_cut_is_the_model_files_and_gives_way_to_its_face_filter(tmp_path: Path) -> None:
    from fabrec.model_file import with_values

    MIN_CONFIDENCE = 0.35  # noqa: N806
    cut = tmp_path / "cut.safetensors"
    with_values("default", cut, min_confidence=MIN_CONFIDENCE)
    img = read_image(SAMPLE_IMAGE)
    assert LandmarkPredictor.from_pretrained(cut, quality=False).min_confidence == 0.0  # the filter decides
    p = LandmarkPredictor.from_pretrained(cut, device="cpu", quality=False, face_filter=False)
    assert p.min_confidence == MIN_CONFIDENCE > 0
    (face,) = p.predict(img)
    assert face.confidence.mean() > MIN_CONFIDENCE and face.source == "detector"
    strict = LandmarkPredictor(p.model, min_confidence=0.99, quality=False)
    assert strict.predict(img) == []
    assert len(strict.predict(img, boxes=[face.box])) == 1  # given boxes are never filtered
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert LandmarkPredictor(p.model, quality=False).predict(noise) == []


def test_small_faces_in_a_large_photo_are_found_at_a_second_scale() -> None:
    """126 copies of the photo's face, about 28 px each, in a 1260 x 810 picture: shrunk to
    640 px alone they are 14 px and mostly missed; the second pass finds every one."""
    tile = cv2.resize(read_image(SAMPLE_IMAGE), (90, 90), interpolation=cv2.INTER_AREA)
    mosaic = np.ascontiguousarray(np.tile(tile, (9, 14, 1)))
    det = YuNet()
    small = cv2.resize(mosaic, (640, round(640 * 810 / 1260)), interpolation=cv2.INTER_AREA)
    assert len(det._raw(np.ascontiguousarray(small[..., ::-1]))) < 100
    found = det.detect(mosaic)
    assert len(found) == 126
    centres = sorted((round((d.box[1] + d.box[3] / 2) // 90), round((d.box[0] + d.box[2] / 2) // 90)) for d in found)
    assert centres == sorted((r, c) for r in range(9) for c in range(14))  # one per tile


def test_the_predictor_is_safe_to_call_from_several_threads() -> None:
    """Eight threads predicting at once (quality on and off per call) give exactly the serial
    results; nothing on the predictor changes."""
    from concurrent.futures import ThreadPoolExecutor

    img = read_image(SAMPLE_IMAGE)
    turned = np.ascontiguousarray(cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE))
    p = LandmarkPredictor.from_pretrained("default", device="cpu", rotations=(0, 90, 180, 270))
    jobs = [(img, True), (turned, False), (img, False), (turned, True)] * 4
    serial = [p.predict(im, quality=q) for im, q in jobs]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda j: p.predict(j[0], quality=j[1]), jobs))
    for a, b, (_, q) in zip(serial, parallel, jobs):
        assert len(a) == len(b) == 1
        np.testing.assert_array_equal(a[0].points, b[0].points)
        assert np.isnan(b[0].quality) != q
    assert p.quality is True


def test_each_track_smooths_with_its_own_filter() -> None:
    from fabrec.predict import OneEuro

    img = read_image(SAMPLE_IMAGE)
    p = LandmarkPredictor.from_pretrained("default", device="cpu", quality=False)
    template = OneEuro(min_cutoff=0.5)
    a = [f.points for f in p.track([img, np.roll(img, 3, 1)], smoothing=template)]
    b = [f.points for f in p.track([img, np.roll(img, 3, 1)], smoothing=template)]
    np.testing.assert_array_equal(a[1], b[1])  # the second video does not start from the first's state
    assert template.x is None
