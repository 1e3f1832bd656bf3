import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from factories import blob_image, face_points, make_300w
from scipy.io import savemat

from fabrec.config import landmark_augment
from fabrec.datasets.landmarks import (
    LandmarkDataset,
    choose_training,
    collate_landmarks,
    read_dataset,
)
from fabrec.datasets.pts import write_pts
from fabrec.errors import FabrecError
from fabrec.schemes import BUILTIN


def test_300w_splits_and_points_are_zero_based(tmp_path: Path) -> None:
    make_300w(tmp_path)
    s68 = BUILTIN["68"]
    tr = read_dataset("300w", tmp_path, "train", s68)
    assert len(tr.samples) == 6 and not tr.problems
    full = read_dataset("300w", tmp_path, "full", s68)
    assert sum("challenging" in s.subsets for s in full.samples) == 2
    assert sum("common" in s.subsets for s in full.samples) == 4
    one = read_dataset("300w", tmp_path, "afw", s68).samples[0]
    raw = (tmp_path / "afw" / "afw_0.pts").read_text().splitlines()[3].split()
    assert one.points[0, 0] == pytest.approx(float(raw[0]) - 1)
    assert one.box is None  # no .mat here: crops come from the landmarks


def test_300w_uses_ground_truth_boxes_from_mat(tmp_path: Path) -> None:
    make_300w(tmp_path, with_mat=True)
    s = read_dataset("300w", tmp_path, "challenging", BUILTIN["68"]).samples[0]
    assert s.box is not None
    x0, y0 = s.points.min(0)
    x1, y1 = s.points.max(0)
    h = y1 - y0
    assert s.box.side == pytest.approx(max(x1 - x0, 1.32 * h), abs=0.01)
    assert s.box.cy == pytest.approx((y0 - 0.2 * h + y1 + 0.12 * h) / 2, abs=0.01)


def test_300w_missing_split_folders_are_named(tmp_path: Path) -> None:
    (tmp_path / "afw").mkdir()
    with pytest.raises(FabrecError, match="helen/trainset, lfpw/trainset"):
        read_dataset("300w", tmp_path, "train", BUILTIN["68"])
    with pytest.raises(FabrecError, match="300W/01_Indoor"):
        read_dataset("300w", tmp_path, "private", BUILTIN["68"])


def test_bad_pts_files_are_reported_by_name(tmp_path: Path) -> None:
    make_300w(tmp_path)
    d = tmp_path / "afw"
    (d / "afw_0.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")
    write_pts(d / "afw_1.pts", np.zeros((5, 2)))
    cv2.imwrite(str(d / "extra.jpg"), blob_image(np.random.default_rng(1)))
    (d / "extra.pts").write_text("version: 1\nn_points: 68\n{\n" + "nan 1\n" * 68 + "}\n")
    with pytest.raises(FabrecError, match="no annotated images"):
        read_dataset("300w", tmp_path, "afw", BUILTIN["68"])
    res = read_dataset("300w", tmp_path, "helen/trainset", BUILTIN["68"])
    assert len(res.samples) == 2


def test_folder_with_json_and_csv(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    five = tmp_path / "five.yaml"
    five.write_text("points: 5\n")
    from fabrec.schemes import get_scheme

    s5 = get_scheme(five)
    d = tmp_path / "imgs"
    d.mkdir()
    import json

    for i in range(3):
        cv2.imwrite(str(d / f"f{i}.png"), blob_image(rng))
        (d / f"f{i}.json").write_text(json.dumps({"points": face_points(5, rng).tolist()}))
    (d / "f9.png").write_bytes(b"")
    (d / "f9.json").write_text(json.dumps({"points": [[1, 2]] * 4}))
    res = read_dataset("folder", d, "train", s5)
    assert len(res.samples) == 3 and len(res.problems) == 1 and "f9.json" in res.problems[0]
    c = tmp_path / "csvset"
    c.mkdir()
    cv2.imwrite(str(c / "a.jpg"), blob_image(rng))
    rows = ["path," + ",".join(f"x{i},y{i}" for i in range(5)), "a.jpg," + ",".join("30" for _ in range(10)), "b.jpg,1,2"]
    (c / "points.csv").write_text("\n".join(rows) + "\n")
    res = read_dataset("folder", c, "train", s5)
    assert len(res.samples) == 1 and "expected 10" in res.problems[0]


def test_wflw_list_and_subsets(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    (tmp_path / "WFLW_images" / "0--Parade").mkdir(parents=True)
    ann = tmp_path / "WFLW_annotations" / "list_98pt_rect_attr_train_test"
    ann.mkdir(parents=True)
    lines = []
    for i in range(3):
        name = f"0--Parade/img_{i}.jpg"
        cv2.imwrite(str(tmp_path / "WFLW_images" / name), blob_image(rng))
        pts = face_points(98, rng)
        attrs = [1, 0, 0, 0, 0, 0] if i == 0 else [0, 0, 0, 0, 1, 1]
        vals = list(pts.reshape(-1)) + [10, 12, 70, 72] + attrs
        lines.append(" ".join(f"{v:g}" for v in vals) + " " + name)
    lines.append("1 2 3 0--Parade/short.jpg")
    (ann / "list_98pt_rect_attr_test.txt").write_text("\n".join(lines) + "\n")
    s98 = BUILTIN["98"]
    res = read_dataset("wflw", tmp_path, "test", s98)
    assert len(res.samples) == 3 and len(res.problems) == 1 and ":4:" in res.problems[0]
    assert len(read_dataset("wflw", tmp_path, "pose", s98).samples) == 1
    assert len(read_dataset("wflw", tmp_path, "blur", s98).samples) == 2
    b = res.samples[0].box
    assert b.side == pytest.approx(60 * 1.1)  # +10% at the bottom, squared
    with pytest.raises(FabrecError, match="train.txt not found"):
        read_dataset("wflw", tmp_path, "train", s98)


def test_aflw_mat(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    (tmp_path / "flickr" / "0").mkdir(parents=True)
    n = 4
    names = np.empty((n, 1), dtype=object)
    data = np.zeros((n, 38))
    for i in range(n):
        names[i, 0] = np.array([f"0/image{i:05d}.jpg"])
        cv2.imwrite(str(tmp_path / "flickr" / "0" / f"image{i:05d}.jpg"), blob_image(rng))
        p = face_points(19, rng) + 1
        data[i, :19], data[i, 19:] = p[:, 0], p[:, 1]
    mask = np.ones((n, 19))
    mask[3, 5] = 0
    bbox = np.tile([11, 71, 11, 71], (n, 1)).astype(float)
    savemat(str(tmp_path / "AFLWinfo_release.mat"), {
        "bbox": bbox, "data": data, "mask_new": mask, "ra": np.array([[2, 1, 4, 3]]), "name_list": names})
    s19 = BUILTIN["19"]
    with pytest.raises(FabrecError):
        read_dataset("aflw", tmp_path, "train", BUILTIN["68"])
    test = read_dataset("aflw", tmp_path, "test", s19).samples
    assert len(test) == 0  # all 4 fall in the first 20,000 of ra
    tr = read_dataset("aflw", tmp_path, "train", s19).samples
    assert [s.key for s in tr] == ["0/image00001.jpg", "0/image00000.jpg", "0/image00003.jpg", "0/image00002.jpg"]
    assert tr[0].box_side == pytest.approx(60.0)
    assert tr[0].points[0, 0] == pytest.approx(data[1, 0] - 1)


def test_crop_dataset_points_follow_augmentation(tmp_path: Path) -> None:
    make_300w(tmp_path)
    res = read_dataset("300w", tmp_path, "train", BUILTIN["68"])
    ds = LandmarkDataset(res.samples, BUILTIN["68"], 64, 64, augment=landmark_augment())
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["heatmaps"].shape == (68, 64, 64)
    # heatmap peaks sit at the (transformed, flip-permuted) crop points
    from fabrec.heatmaps import crop_to_heatmap, decode_subpixel

    peaks, _ = decode_subpixel(item["heatmaps"][None])
    inside = ((item["points"] > 3) & (item["points"] < 60)).all(-1)
    err = (peaks[0] - crop_to_heatmap(item["points"], 64, 64)).abs()[inside]
    assert err.max() < 0.5
    batch, skipped = collate_landmarks([ds[i] for i in range(len(ds))])
    assert batch["image"].shape[0] == 6 and skipped == 0


def test_few_shot_selection() -> None:
    items = list(range(100))
    a = choose_training(items, 10, "random", 0)
    assert len(a) == 10 and a == choose_training(items, 10, "random", 0) and a != choose_training(items, 10, "random", 1)
    assert choose_training(items, 10, "first", 0) == list(range(10))
    assert len(choose_training(items, 0.2, "random", 0)) == 20
    with pytest.raises(FabrecError):
        choose_training(items, 101, "random", 0)


def _five_scheme(tmp_path: Path) -> Path:
    p = tmp_path / "five.yaml"
    p.write_text("name: five\npoints: [left_eye, right_eye, nose, mouth_left, mouth_right]\n"
                 "flip_pairs: [[left_eye, right_eye], [mouth_left, mouth_right]]\nnorm_points: [0, 1]\n")
    return p


def test_labelme_files_are_read_by_label_with_pixel_centres(tmp_path: Path) -> None:
    from fabrec.datasets.labelme import write_labelme
    from fabrec.schemes import get_scheme

    scheme = get_scheme(_five_scheme(tmp_path))
    d = tmp_path / "labelme"
    d.mkdir()
    rng = np.random.default_rng(3)
    truth = {}
    for i in range(3):
        cv2.imwrite(str(d / f"face{i}.jpg"), blob_image(rng))
        pts = face_points(5, rng)
        truth[f"face{i}.jpg"] = pts
        order = [4, 2, 0, 3, 1]  # shapes in any order; labels decide
        write_labelme(d / f"face{i}.json", f"face{i}.jpg", pts[order], [scheme.names[j] for j in order], 80, 80)
    doc = json.loads((d / "face0.json").read_text())
    assert abs(doc["shapes"][2]["points"][0][0] - (truth["face0.jpg"][0, 0] + 0.5)) < 1e-9  # corner origin
    doc["shapes"].append({"label": "box", "points": [[1, 2], [5, 6]], "shape_type": "rectangle"})
    (d / "face0.json").write_text(json.dumps(doc))
    res = read_dataset("folder", d, "", scheme)
    assert len(res.samples) == 3 and not res.problems
    for s in res.samples:
        np.testing.assert_allclose(s.points, truth[s.key], atol=1e-9)
    # a missing and a foreign label are reported by file name, the rest still read
    bad = json.loads((d / "face1.json").read_text())
    bad["shapes"] = bad["shapes"][1:]
    (d / "face1.json").write_text(json.dumps(bad))
    bad["shapes"].append({"label": "ear", "points": [[1, 1]], "shape_type": "point"})
    (d / "face2.json").write_text(json.dumps(bad))
    res = read_dataset("folder", d, "", scheme)
    assert len(res.samples) == 1
    assert any("face1.json" in p and "1 of 5 points missing" in p for p in res.problems)
    assert any("face2.json" in p and "'ear'" in p for p in res.problems)


def test_coco_keypoints_file_with_many_images(tmp_path: Path) -> None:
    from fabrec.schemes import get_scheme

    scheme = get_scheme(_five_scheme(tmp_path))
    d = tmp_path / "coco"
    (d / "images").mkdir(parents=True)
    rng = np.random.default_rng(4)
    file_order = ["nose", "left_eye", "right_eye", "mouth_left", "mouth_right"]
    images, anns, truth = [], [], []
    for i in range(3):
        cv2.imwrite(str(d / "images" / f"img{i}.png"), blob_image(rng))
        pts = face_points(5, rng)
        truth.append(pts)
        kp = []
        for n in file_order:
            x, y = pts[scheme.names.index(n)]
            kp += [float(x), float(y), 2]
        images.append({"id": 10 + i, "file_name": f"img{i}.png", "width": 80, "height": 80})
        anns.append({"id": i, "image_id": 10 + i, "keypoints": kp, "num_keypoints": 5, "category_id": 1})
    anns.append({"id": 9, "image_id": 10, "keypoints": [0, 0, 0] * 5, "num_keypoints": 0, "category_id": 1})
    doc = {"images": images, "annotations": anns,
           "categories": [{"id": 1, "name": "face", "keypoints": file_order, "skeleton": []}]}
    (d / "keypoints.json").write_text(json.dumps(doc))
    res = read_dataset("folder", d, "", scheme)
    assert len(res.samples) == 3
    assert any("5 unlabelled keypoint(s)" in p for p in res.problems)
    for s, pts in zip(sorted(res.samples, key=lambda s: s.key), truth):
        np.testing.assert_allclose(s.points, pts)
        assert s.path.parent.name == "images"
