from pathlib import Path

import numpy as np
import pytest

from fabrec.datasets.faces import (
    FaceDataset,
    collate_skip,
    collect_faces,
    read_boxes,
    split_items,
)
from fabrec.datasets.pts import parse_pts
from fabrec.errors import FabrecError
from fabrec.io import read_image


def test_collect_is_recursive_and_sorted(face_folder: Path) -> None:
    items = collect_faces([str(face_folder)])
    assert len(items) == 24
    assert any("sub" in it.key for it in items)


def test_list_file(face_folder: Path, tmp_path: Path) -> None:
    lst = face_folder / "list.txt"
    lst.write_text("face_00.png\n# comment\nsub/face_01.jpg\n")
    assert [it.key for it in collect_faces([str(lst)])] == ["face_00.png", "sub/face_01.jpg"]


def test_missing_and_empty_sources(tmp_path: Path) -> None:
    with pytest.raises(FabrecError, match="no such"):
        collect_faces([str(tmp_path / "nope")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FabrecError, match="no images"):
        collect_faces([str(tmp_path / "empty")])


def test_split_is_stable_and_disjoint(face_folder: Path) -> None:
    items = collect_faces([str(face_folder)])
    tr, va = split_items(items, 300, 100)
    tr2, va2 = split_items(list(reversed(items)), 300, 100)
    assert {i.key for i in va} == {i.key for i in va2}
    assert not {i.key for i in tr} & {i.key for i in va}
    assert 0 < len(va) < len(items)


def test_corrupt_and_empty_images_are_skipped_and_counted(face_folder: Path) -> None:
    good = (face_folder / "face_02.jpg").read_bytes()
    (face_folder / "truncated.jpg").write_bytes(good[: len(good) // 3][:200])
    (face_folder / "zero.jpg").write_bytes(b"")
    (face_folder / "text.png").write_text("not an image")
    ds = FaceDataset(collect_faces([str(face_folder)]), 64)
    batch, skipped = collate_skip([ds[i] for i in range(len(ds))])
    assert skipped == 3
    assert batch.shape == (24, 3, 64, 64)


def test_read_image_errors_name_the_file(tmp_path: Path) -> None:
    p = tmp_path / "bad.jpg"
    p.write_bytes(b"\xff\xd8garbage")
    with pytest.raises(FabrecError, match="bad.jpg"):
        read_image(p)


def test_generic_box_csv(face_folder: Path) -> None:
    csv = face_folder / "boxes.csv"
    csv.write_text("path,x,y,w,h\nface_00.png,10,10,40,60\nface_02.jpg,5,5,-3,10\n")
    items = read_boxes(csv)
    assert len(items) == 1 and items[0].box.side == 60


def test_vggface2_loose_boxes(tmp_path: Path) -> None:
    (tmp_path / "train" / "n000002").mkdir(parents=True)
    csv = tmp_path / "loose_bb_train.csv"
    csv.write_text('NAME_ID,X,Y,W,H\n"n000002/0001_01",161,140,224,324\n"n000002/0002_01",10,10,20,30\n')
    items = read_boxes(csv, min_face_size=50)
    assert len(items) == 1
    it = items[0]
    assert it.path == tmp_path / "train" / "n000002" / "0001_01.jpg"
    # +5% top, +10% bottom: height 324 * 1.15, top at 140 - 16.2
    assert it.box.side == pytest.approx(324 * 1.15)
    assert it.box.cy == pytest.approx(140 - 16.2 + 324 * 1.15 / 2 - 0.5)


def test_affectnet_boxes(tmp_path: Path) -> None:
    csv = tmp_path / "training.csv"
    csv.write_text(
        "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal\n"
        "689/737db2483489148d783ef278f43f486c0a97e140fc4b6b61b84363ca.jpg,134,134,899,899,1;2,1,0.785714,-0.055556\n"
    )
    (it,) = read_boxes(csv)
    assert it.path.parent == tmp_path / "Manually_Annotated_Images" / "689"
    assert it.box.side == pytest.approx(899 * 1.30)


def test_pts_parser() -> None:
    pts = parse_pts("version: 1\nn_points: 2\n{\n1 1\n10.5 20\n}\n")
    np.testing.assert_allclose(pts, [[0, 0], [9.5, 19]])
    np.testing.assert_allclose(parse_pts("3 4\n5 6\n"), [[2, 3], [4, 5]])
    for bad in ["version: 1\nn_points: 3\n{\n1 1\n2 2\n}\n", "1 nan\n", "version: 1\nn_points: 1\n1 1\n", "hello\n"]:
        with pytest.raises(FabrecError):
            parse_pts(bad, "x.pts")
