"""Head pose from the 68 points: the angle convention, the fitted mean face on real annotated
faces, and through predict on a photo and the same photo turned."""

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fabrec.faces.detectors import ALL_ROTATIONS
from fabrec.head_pose import angles, head_pose, mean_face, rotation
from fabrec.io import read_image
from fabrec.predict import LandmarkPredictor
from fabrec.sample_photo import SAMPLE_IMAGE
from fabrec.schemes import BUILTIN, get_scheme, is_ibug68

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_angles_invert_rotation_and_a_posed_mean_face_is_read_back() -> None:
    for y, p, r in ((10, 20, 30), (-70, 5, -15), (45, -30, 60), (0, 0, 0)):
        np.testing.assert_allclose(angles(rotation(y, p, r)), (y, p, r), atol=1e-9)
        pts = 80.0 * (mean_face() @ rotation(y, p, r).T)[:, :2] + 225.0  # a far camera's view
        np.testing.assert_allclose(head_pose(pts, (450, 450)), (y, p, r), atol=1.0)
    assert head_pose(np.full((68, 2), np.nan), (450, 450)) is None
    assert head_pose(np.zeros((5, 2)), (450, 450)) is None


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
    turned = cv2.rotate(rgb, cv2.ROTATE_90_CLOCKWISE)
    (side,) = LandmarkPredictor.from_pretrained("default", quality=False, rotations=ALL_ROTATIONS).predict(turned)
    assert up.head_pose is not None and side.head_pose is not None
    assert abs(side.head_pose.yaw - up.head_pose.yaw) < 5 and abs(side.head_pose.pitch - up.head_pose.pitch) < 5
    assert abs(abs(side.head_pose.roll - up.head_pose.roll) - 90) < 5  # turned a quarter, in the picture's plane


def test_head_pose_only_for_the_300w_points(tmp_path: Path) -> None:
    assert is_ibug68(BUILTIN["68"]) and not is_ibug68(BUILTIN["98"])
    doc = {**BUILTIN["68"].to_dict(), "name": "my68"}
    (tmp_path / "s.json").write_text(json.dumps(doc))
    assert is_ibug68(get_scheme(tmp_path / "s.json"))


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
