"""`fabrec prepare-faces` on real photos: upright crops, a manifest and a summary, resumable,
shardable; and the autoencoder continuing from the bundled one on what it prepared."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fabrec.cli import main
from fabrec.faces.yunet import YuNet
from fabrec.io import read_image
from fabrec.sample_photo import SAMPLE_IMAGE


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    d = tmp_path / "photos"
    (d / "sub").mkdir(parents=True)
    bgr = cv2.imread(str(SAMPLE_IMAGE))
    cv2.imwrite(str(d / "astronaut.jpg"), bgr)
    cv2.imwrite(str(d / "sub" / "turned.png"), cv2.rotate(bgr, cv2.ROTATE_90_CLOCKWISE))
    cv2.imwrite(str(d / "sub" / "wall.png"), np.full((200, 200, 3), 180, np.uint8))
    (d / "broken.jpg").write_bytes(b"not a jpeg")
    return d


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for m in sorted(out.glob("manifest*.jsonl")) for line in m.read_text().splitlines()]


def test_prepare_faces_writes_upright_crops_a_manifest_and_a_summary(photos: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "prepared"
    assert main(["prepare-faces", str(photos), str(out), "--rotations", "all", "--no-progress"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["photos"] == 4 and s["faces_kept"] == 2 and s["photos_without_a_face"] == 1
    assert sum(s["photos_unreadable"].values()) == 1 and s["crop"]["size"] == 128
    entries = {e["source"]: e for e in manifest(out)}
    turned = entries[str(Path("sub") / "turned.png")]["faces"][0]
    assert abs(abs(turned["roll_degrees"]) - 90) < 15  # found sideways, cropped upright
    a = read_image(out / entries["astronaut.jpg"]["faces"][0]["file"])
    b = read_image(out / turned["file"])
    assert a.shape == b.shape == (128, 128, 3)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 8  # the same upright face from both photos
    (d,) = YuNet().detect(a)  # and a detector finds an upright face in the crop
    assert d.size > 60
    assert "2 face(s) kept" in capsys.readouterr().out


def test_prepare_faces_resumes_where_it_stopped_and_shards_split_the_work(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    assert main(["prepare-faces", str(photos), str(out), "--no-progress"]) == 0
    m = out / "manifest.jsonl"
    lines = m.read_text().splitlines(keepends=True)
    m.write_text("".join(lines[:-1]) + lines[-1][:20])  # a crash in the middle of the last line
    assert main(["prepare-faces", str(photos), str(out), "--no-progress"]) == 0
    again = manifest(out)
    assert sorted(e["source"] for e in again) == sorted(json.loads(x)["source"] for x in lines)
    assert json.loads((out / "summary.json").read_text())["photos"] == 4
    sharded = tmp_path / "sharded"
    for k in (1, 2):
        assert main(["prepare-faces", str(photos), str(sharded), "--shard", f"{k}/2", "--no-progress"]) == 0
    assert sorted(e["source"] for e in manifest(sharded)) == sorted(e["source"] for e in again)
    assert main(["prepare-faces", str(tmp_path / "nowhere"), str(tmp_path / "x")]) == 2


def test_the_autoencoder_continues_from_the_bundled_one_on_prepared_faces(photos: Path, tmp_path: Path) -> None:
    """The recipe end to end on the CPU, tiny: prepare faces, continue the bundled autoencoder on
    them (its encoder and generator are the start), train landmarks on it."""
    from fabrec.checkpoint import load_checkpoint
    from fabrec.model_file import read_autoencoder

    out = tmp_path / "prepared"
    for i in range(3):  # a few more real faces: shifted copies of the photo
        bgr = cv2.imread(str(SAMPLE_IMAGE))
        cv2.imwrite(str(photos / f"shifted_{i}.jpg"), np.roll(bgr, 15 * (i + 1), axis=1))
    assert main(["prepare-faces", str(photos), str(out), "--no-progress"]) == 0
    ae = tmp_path / "ae"
    assert main(["train-ae", "--data", str(out / "faces"), "--init-from", "default", "--image-size", "128",
                 "--width", "0.5", "--max-steps", "2", "--batch-size", "4", "--workers", "0",
                 "--set", "data.val_permille=0", "--out", str(ae), "--no-progress", "--device", "cpu"]) == 0
    st = load_checkpoint(ae / "last.pt")
    base = read_autoencoder("default").nets["generator"]
    moved = [k for k, v in st["nets"]["generator"].items() if v.is_floating_point() and not np.allclose(
        v.numpy(), base[k].numpy(), atol=1e-6)]
    assert st["step"] == 2 and moved  # started from the bundled weights, and trained on
    learnt = [k for k in base if base[k].is_floating_point() and "running" not in k]
    assert all(np.allclose(st["nets"]["generator"][k].numpy(), base[k].numpy(), atol=0.05) for k in learnt)
