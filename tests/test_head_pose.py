"""Head pose from the 68 points: the angle convention, the fitted mean face on real annotated
faces, the model file's correction (fitted, kept, applied in the crop's frame), and through
predict on a photo and the same photo turned."""

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fabrec.faces.detectors import ALL_ROTATIONS
from fabrec.errors import FabrecError
from fabrec.head_pose import (PoseCorrection, angles, face_pose, fit_correction, head_pose, mean_face,
                              pose_features, rotation, turned)
from fabrec.io import read_image
from fabrec.predict import LandmarkPredictor
from fabrec.sample_photo import SAMPLE_IMAGE
from fabrec.schemes import BUILTIN, get_scheme

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_angles_invert_rotation_and_a_posed_mean_face_is_read_back() -> None:
    for y, p, r in ((10, 20, 30), (-70, 5, -15), (45, -30, 60), (0, 0, 0)):
        np.testing.assert_allclose(angles(rotation(y, p, r)), (y, p, r), atol=1e-9)
        pts = 80.0 * (mean_face() @ rotation(y, p, r).T)[:, :2] + 225.0  # a far camera's view
        np.testing.assert_allclose(head_pose(pts, (450, 450)), (y, p, r), atol=1.0)
    assert head_pose(np.full((68, 2), np.nan), (450, 450)) is None
    assert head_pose(np.zeros((5, 2)), (450, 450)) is None


def _view(y: float, p: float, r: float, scale: float = 80.0, centre: float = 225.0) -> np.ndarray:
    return scale * (mean_face() @ rotation(y, p, r).T)[:, :2] + centre  # a far camera's view


def test_the_correction_is_applied_in_the_crops_frame_and_turned_back() -> None:
    """A face rolled 30 degrees in the photo, cropped level: with a correction that adds
    nothing, the pose is the photo's own PnP; with one that adds 5 degrees of yaw in the
    crop, the head turns 5 degrees from it (about the crop's vertical axis, so the photo's yaw
    grows by most of it)."""
    pts = _view(20, 10, 30)
    th = np.radians(30)
    c, s = np.cos(th), np.sin(th)
    crop = (pts - 225.0) @ np.array([[c, -s], [s, c]]) * 0.5 + 63.5  # rotated by -30 degrees, halved
    feats = pose_features(np.array([[20.0, 10.0, 0.0]]), crop[None])
    assert feats.shape == (1, 15 + 136)
    zero = PoseCorrection(feats, np.zeros((1, 3)), np.zeros(3), np.zeros(feats.shape[1]), np.ones(feats.shape[1]),
                          1.0, {})
    plain = head_pose(pts, (450, 450))
    assert face_pose(pts, (450, 450), crop, 128, th, None) == plain
    np.testing.assert_allclose(face_pose(pts, (450, 450), crop, 128, th, zero), plain, atol=0.5)
    more_yaw = PoseCorrection(feats, np.zeros((1, 3)), np.array([5.0, 0, 0]), zero.mean, zero.scale, 1.0, {})
    got = face_pose(pts, (450, 450), crop, 128, th, more_yaw)
    turn = rotation(*plain).T @ rotation(*got)
    assert abs(np.degrees(np.arccos((np.trace(turn) - 1) / 2)) - 5.0) < 0.5
    assert 3.0 < got.yaw - plain.yaw < 6.0


def test_a_fitted_correction_learns_what_pnp_gets_wrong_and_survives_its_dict() -> None:
    """Faces whose PnP is off by a pose-dependent bias (|yaw| / 10 degrees of pitch): fitted on
    80 of them, the correction removes most of it on 40 others."""
    rng = np.random.default_rng(0)
    poses = np.c_[rng.uniform(-80, 80, 120), rng.uniform(-30, 30, 120), rng.uniform(-20, 20, 120)]
    crops = np.stack([_view(*p, scale=40.0, centre=63.5) for p in poses])
    feats = pose_features(poses, crops)
    bias = np.c_[np.zeros(120), np.abs(poses[:, 0]) / 10.0, np.zeros(120)]
    corr = fit_correction(feats[:80], bias[:80], lam=0.1, gamma=1.0, measured={"what": "test"})
    left = np.abs(corr.residual(feats[80:]) - bias[80:]).mean()
    assert left < 0.4 * np.abs(bias[80:]).mean(), left
    back = PoseCorrection.from_dict(json.loads(json.dumps(corr.to_dict())))
    np.testing.assert_allclose(back.residual(feats[80:]), corr.residual(feats[80:]), atol=1e-3)
    assert back.measured == {"what": "test"}
    with pytest.raises(FabrecError, match="not a head-pose correction"):
        PoseCorrection.from_dict({**corr.to_dict(), "alpha": [[0.0, 0.0]]})


def test_the_default_model_carries_its_correction_and_a_copy_without_it_uses_plain_pnp(tmp_path: Path) -> None:
    from fabrec.model_file import read_model_file, with_values

    rgb = read_image(SAMPLE_IMAGE)
    pred = LandmarkPredictor.from_pretrained("default", quality=False)
    assert pred.model.head_pose is not None and pred.model.head_pose.measured["fitting_faces"] > 500
    (face,) = pred.predict(rgb)
    with_values("default", tmp_path / "plain.safetensors", head_pose=None)
    assert read_model_file(tmp_path / "plain.safetensors").head_pose is None
    (plain,) = LandmarkPredictor.from_pretrained(tmp_path / "plain.safetensors", quality=False).predict(rgb)
    np.testing.assert_array_equal(plain.points, face.points)
    assert plain.head_pose == head_pose(plain.points, rgb.shape[1::-1])
    assert plain.head_pose != face.head_pose and max(abs(a - b) for a, b in zip(plain.head_pose, face.head_pose)) < 15


def test_the_mean_face_poses_annotated_faces_of_the_held_out_part(shared_data: Path) -> None:
    """The held-out AFLW2000-3D photos at 0-30 degrees of yaw, their own points: mean absolute
    error under 4 degrees per angle."""
    from face_crops import aflw_held_out

    from fabrec.datasets.pts import read_pts

    poses = json.loads((shared_data / "aflw2000" / "poses.json").read_text())
    errs = []
    for jpg in sorted((shared_data / "aflw2000").glob("*.jpg")):
        g = poses[jpg.stem]
        if aflw_held_out(jpg.stem) and abs(g["yaw"]) < 30 and max(map(abs, g.values())) <= 99:
            hp = head_pose(read_pts(jpg.with_suffix(".pts")), (450, 450))
            errs.append(np.abs(np.array(hp) - [g["yaw"], g["pitch"], g["roll"]]))
    assert len(errs) > 150
    assert (np.mean(errs, 0) < 4.0).all(), np.mean(errs, 0)


def test_a_turned_photo_gives_the_same_pose_turned() -> None:
    rgb = read_image(SAMPLE_IMAGE)
    (up,) = LandmarkPredictor.from_pretrained("default", quality=False).predict(rgb)
    sideways = cv2.rotate(rgb, cv2.ROTATE_90_CLOCKWISE)
    (side,) = LandmarkPredictor.from_pretrained("default", quality=False, rotations=ALL_ROTATIONS).predict(sideways)
    assert up.head_pose is not None and side.head_pose is not None
    # the same head turned a quarter in the picture's plane (Rz(90) R: roll grows by 90 degrees;
    # in this angle order yaw and pitch trade places)
    np.testing.assert_allclose(side.head_pose, turned(up.head_pose, 90.0), atol=3.0)


def test_head_pose_only_for_the_300w_points(tmp_path: Path) -> None:
    assert BUILTIN["68"].is_ibug68 and not BUILTIN["98"].is_ibug68
    doc = {**BUILTIN["68"].to_dict(), "name": "my68"}
    (tmp_path / "s.json").write_text(json.dumps(doc))
    assert get_scheme(tmp_path / "s.json").is_ibug68


def test_head_pose_is_in_every_output_format(tmp_path: Path) -> None:
    from fabrec.cli import main

    for fmt in ("json", "csv"):
        assert main(["predict", str(SAMPLE_IMAGE), "--out", str(tmp_path / fmt), "--format", fmt, "--no-images",
                     "--no-progress"]) == 0
    pose = json.loads((tmp_path / "json" / "astronaut.json").read_text())["faces"][0]["head_pose"]
    assert set(pose) == {"yaw", "pitch", "roll"} and all(abs(v) < 15 for v in pose.values())  # a frontal portrait
    header, row = (tmp_path / "csv" / "predictions.csv").read_text().splitlines()[:2]
    cells = dict(zip(header.split(","), row.split(",")))
    assert [float(cells[f"head_{k}"]) for k in ("yaw", "pitch", "roll")] == pytest.approx(list(pose.values()), abs=1e-3)
