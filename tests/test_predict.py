import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from factories import blob_image

from fabrec.checkpoint import load_checkpoint
from fabrec.cli import main
from fabrec.errors import FabrecError
from fabrec.landmark_model import LandmarkModel, load_landmark_model
from fabrec.model_file import ModelFile, export_weights
from fabrec.predict import LandmarkPredictor, OneEuro
from fabrec.weights import read_weights


def test_weights_round_trip_fp16(tiny_lm: Path, tmp_path: Path) -> None:
    w = tmp_path / "m.safetensors"
    digest = export_weights(tiny_lm, w)
    assert len(digest) == 64
    st = read_weights(w)
    ck = load_checkpoint(tiny_lm)
    for k, v in ck["nets"]["itl"].items():
        torch.testing.assert_close(st["nets"]["itl"][k], v.half().float())
    a = LandmarkModel.from_file(ModelFile.from_state(st))
    b = load_landmark_model(tiny_lm)
    x = torch.randn(2, 3, 64, 64)
    pa, _, _, _ = a.predict_crops(x)
    pb, _, _, _ = b.predict_crops(x)
    assert (pa - pb).abs().max() <= 1.0  # fp16 weights move argmax peaks by at most a pixel


def test_pickle_bearing_files_are_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # would run code on unpickling
            return (print, ("pwned",))

    p = tmp_path / "evil.pt"
    torch.save({"format": "fabrec-checkpoint", "payload": Evil()}, p)
    with pytest.raises(FabrecError, match="refused"):
        load_checkpoint(p)
    q = tmp_path / "plain.pkl"
    q.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(FabrecError):
        load_checkpoint(q)
    with pytest.raises(FabrecError, match="safetensors"):
        read_weights(p.with_suffix(".pt").rename(tmp_path / "evil.safetensors"))


def test_predict_with_boxes_and_no_face(tiny_lm: Path) -> None:
    pred = LandmarkPredictor.from_pretrained(tiny_lm, device="cpu")
    img = blob_image(np.random.default_rng(3), 120)
    faces = pred.predict(img, boxes=[(20, 20, 80, 80)])
    assert len(faces) == 1
    f = faces[0]
    assert f.points.shape == (68, 2) and f.confidence.shape == (68,) and 0 <= f.quality <= 1
    assert f.source == "given"
    d = f.to_dict()
    assert len(d["points"]) == 68 and json.dumps(d)
    # a blank picture: the detector finds nothing, which is an answer, not an error
    assert pred.predict(np.full((200, 200, 3), 128, np.uint8)) == []
    batch = pred.predict_batch([img, img], boxes=[[(20, 20, 80, 80)], [(10, 10, 90, 90), (20, 20, 80, 80)]])
    assert [len(b) for b in batch] == [1, 2]
    np.testing.assert_allclose(batch[0][0].points, f.points, atol=1e-4)
    with pytest.raises(FabrecError, match="bad face box"):
        pred.predict(img, boxes=[(0, 0, -5, 10)])
    refined = pred.predict(img, boxes=[(20, 20, 80, 80)], refine=1)
    assert refined[0].source == "refined"
    crop, rec = pred.reconstruct(img, (20, 20, 80, 80))
    assert crop.shape == rec.shape == (64, 64, 3)


def test_one_euro_reduces_jitter() -> None:
    rng = np.random.default_rng(0)
    truth = np.full((5, 2), 50.0)
    raw = [truth + rng.normal(0, 1.0, truth.shape) for _ in range(60)]
    f = OneEuro(fps=30, min_cutoff=1.0, beta=0.0)
    smooth = [f(x, t) for t, x in enumerate(raw)]

    def jitter(seq):
        return np.mean([np.linalg.norm(b - a, axis=-1).mean() for a, b in zip(seq, seq[1:])])

    assert jitter(smooth) < 0.5 * jitter(raw)


def test_predict_cli_on_folder_and_video(tiny_lm: Path, tmp_path: Path) -> None:
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(d / ("sub" if i else ".") / f"p{i}.jpg"), blob_image(rng, 100))
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("path,x,y,w,h\np0.jpg,10,10,80,80\nsub/p1.jpg,10,10,80,80\nsub/p2.jpg,5,5,90,90\n")
    out = tmp_path / "out"
    assert main(["predict", str(d), "--model", str(tiny_lm), "--out", str(out), "--boxes", str(boxes),
                 "--device", "cpu", "--no-progress", "--save-reconstruction"]) == 0
    rec = json.loads((out / "sub" / "p1.json").read_text())
    assert len(rec["faces"]) == 1 and len(rec["faces"][0]["points"]) == 68
    assert (out / "sub" / "p1_landmarks.jpg").exists() and (out / "p0_reconstruction.png").exists()
    assert "error" in json.loads((out / "broken.json").read_text())
    # jsonl in one file, resumable
    assert main(["predict", str(d), "--model", str(tiny_lm), "--out", str(out / "j"), "--boxes", str(boxes),
                 "--format", "jsonl", "--device", "cpu", "--no-progress", "--no-images"]) == 0
    lines = (out / "j" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 4
    assert main(["predict", str(d), "--model", str(tiny_lm), "--out", str(out / "j"), "--boxes", str(boxes),
                 "--format", "jsonl", "--device", "cpu", "--no-progress", "--skip-existing"]) == 0
    assert len((out / "j" / "predictions.jsonl").read_text().splitlines()) == 4
    # a short video (detector path; blank frames have no face)
    v = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(v), cv2.VideoWriter_fourcc(*"MJPG"), 10, (120, 120))
    for _ in range(5):
        w.write(np.full((120, 120, 3), 90, np.uint8))
    w.release()
    assert main(["predict", str(v), "--model", str(tiny_lm), "--out", str(out / "v"), "--device", "cpu",
                 "--no-progress", "--smooth"]) == 0
    frames = (out / "v" / "clip_frames.jsonl").read_text().splitlines()
    assert len(frames) == 5 and all(json.loads(f)["faces"] == [] for f in frames)
    (tmp_path / "bad.mp4").write_bytes(b"nonsense")
    assert main(["predict", str(tmp_path / "bad.mp4"), "--model", str(tiny_lm), "--out", str(out / "b"),
                 "--device", "cpu", "--no-progress"]) == 1  # every input failed
    assert "error" in json.loads((out / "b" / "bad.json").read_text())


def test_onnx_parity(tiny_lm: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from fabrec.export import OnnxLandmarks, export_onnx

    m = load_landmark_model(tiny_lm)
    export_onnx(m, tmp_path / "m.onnx")
    r = OnnxLandmarks(tmp_path / "m.onnx", m.image_size)
    x = torch.randn(3, 3, 64, 64)
    p1, c1, _, _ = m.predict_crops(x)
    p2, c2 = r.predict_crops(x.numpy())
    assert (p1 - p2).abs().max() <= 0.5
    assert (c1 - c2).abs().max() < 1e-3


def test_bundled_weights_are_checked_against_their_sha256(tiny_lm: Path, tmp_path: Path, monkeypatch) -> None:
    import fabrec.weights as fw

    d = tmp_path / "pretrained"
    d.mkdir()
    digest = export_weights(tiny_lm, d / "mini.safetensors")
    (d / "mini.sha256").write_text(f"{digest}  mini.safetensors\n")
    monkeypatch.setattr(fw, "WEIGHTS_DIR", d)
    p = LandmarkPredictor.from_pretrained("mini", device="cpu")
    assert p.scheme.num_points == 68
    data = bytearray((d / "mini.safetensors").read_bytes())
    data[-10] ^= 0xFF  # one flipped byte in the tensor data
    (d / "mini.safetensors").write_bytes(bytes(data))
    with pytest.raises(FabrecError, match="does not match its model card"):
        LandmarkPredictor.from_pretrained("mini", device="cpu")
    with pytest.raises(FabrecError, match="no bundled weights named 'nope'"):
        fw.bundled("nope")


def test_predict_cli_batch_size_reaches_the_network(tiny_lm: Path, tmp_path: Path, monkeypatch) -> None:
    seen: list[int] = []
    real = LandmarkModel.read_crops

    def spy(self, crops, batch_size=32, reconstruct=True):  # records what the real method is asked, then runs it
        seen.append(batch_size)
        return real(self, crops, batch_size, reconstruct)

    monkeypatch.setattr(LandmarkModel, "read_crops", spy)
    img = tmp_path / "a.jpg"
    cv2.imwrite(str(img), blob_image(np.random.default_rng(1), 120))
    boxes = tmp_path / "b.csv"
    boxes.write_text("path,x,y,w,h\na.jpg,10,10,80,80\na.jpg,20,20,70,70\n")
    outs = []
    for bs in ("1", "32"):
        out = tmp_path / f"o{bs}"
        seen.clear()
        assert main(["predict", str(img), "--model", str(tiny_lm), "--out", str(out), "--boxes", str(boxes),
                     "--batch-size", bs, "--device", "cpu", "--no-progress", "--no-images"]) == 0
        outs.append(json.loads((out / "a.json").read_text())["faces"])
        assert seen and set(seen) == {int(bs)}  # every network call (the plain pass, the flip of turned heads)
    assert len(outs[0]) == 2
    np.testing.assert_allclose([f["points"] for f in outs[0]], [f["points"] for f in outs[1]], atol=1e-3)


def _cut_clip() -> tuple[list[np.ndarray], list[tuple[float, float]]]:
    """20 frames: the sample face on the left, then a cut to a (mirrored) face on the right,
    then a fast move back; returns the frames and each frame's true face centre."""
    from fabrec.io import read_image
    from fabrec.sample_photo import SAMPLE_BOX, SAMPLE_IMAGE

    img = read_image(SAMPLE_IMAGE)
    x, y, w, h = (int(v) for v in SAMPLE_BOX)
    patch = img[max(0, y - 40): y + h + 60, max(0, x - 60): x + w + 60]
    frames, centres = [], []
    for t in range(20):
        canvas = np.full((360, 720, 3), 90, np.uint8)
        ox = 20 if t < 8 else (420 if t < 14 else 220)
        p = patch if t < 8 else patch[:, ::-1]
        canvas[20:20 + p.shape[0], ox:ox + p.shape[1]] = p
        frames.append(canvas)
        centres.append((ox + p.shape[1] / 2, 20 + 40 + h / 2))
    return frames, centres


def test_tracking_recovers_within_two_frames_after_a_cut() -> None:
    p = LandmarkPredictor.from_pretrained("default", device="cpu")
    frames, centres = _cut_clip()
    wrong = []
    for t, (face, c) in enumerate(zip(p.track(frames), centres)):
        assert face is not None
        wrong.append(bool(np.linalg.norm(face.points.mean(0) - np.array(c)) > 60))
    assert not any(wrong[:8])
    assert sum(wrong[8:14]) <= 2 and not any(wrong[10:14])  # cut at frame 8: at most 2 frames off
    assert sum(wrong[14:]) <= 2 and not any(wrong[16:])  # fast move at frame 14


def test_a_folder_is_batched_across_photos_in_input_order_with_the_same_points(tmp_path: Path) -> None:
    """Photos are read and detected ahead and their faces batched together; a video and an
    unreadable file in between keep their places; every face's points are those of the photo
    predicted alone."""
    from fabrec.sample_photo import SAMPLE_IMAGE

    d = tmp_path / "in"
    d.mkdir()
    bgr = cv2.imread(str(SAMPLE_IMAGE))
    for i in range(5):
        cv2.imwrite(str(d / f"p{i}.jpg"), np.roll(bgr, 7 * i, axis=1))
    (d / "p2b.jpg").write_bytes(b"not a jpeg")
    vw = cv2.VideoWriter(str(d / "p3v.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 256))
    for t in range(3):
        vw.write(cv2.resize(bgr, (256, 256)))
    vw.release()
    out = tmp_path / "o"
    assert main(["predict", str(d), "--out", str(out), "--format", "jsonl", "--batch-size", "2", "--no-images",
                 "--no-progress", "--device", "cpu"]) == 0
    recs = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["file"] for r in recs] == ["p0.jpg", "p1.jpg", "p2.jpg", "p2b.jpg", "p3.jpg", "p3v.avi", "p4.jpg"]
    assert "error" in recs[3] and recs[5]["kind"] == "video"
    pred = LandmarkPredictor.from_pretrained("default", device="cpu")
    for r in recs:
        if r["kind"] == "image" and "error" not in r:
            (alone,) = pred.predict(str(d / r["file"]))
            np.testing.assert_allclose(r["faces"][0]["points"], np.round(alone.points, 2), atol=0.02)


def test_predict_many_takes_any_iterable_and_gives_what_predict_gives() -> None:
    from fabrec.sample_photo import SAMPLE_IMAGE

    rgb = cv2.cvtColor(cv2.imread(str(SAMPLE_IMAGE)), cv2.COLOR_BGR2RGB)
    images = (np.roll(rgb, 9 * i, axis=0) for i in range(5))  # a generator, read once
    pred = LandmarkPredictor.from_pretrained("default", device="cpu", quality=False)
    got = list(pred.predict_many(images, batch_size=2))
    assert len(got) == 5
    for i, faces in enumerate(got):
        (alone,) = pred.predict(np.roll(rgb, 9 * i, axis=0))
        np.testing.assert_allclose(faces[0].points, alone.points, atol=0.02)
    with pytest.raises(FabrecError, match="nothere.jpg"):
        list(pred.predict_many(["nothere.jpg"]))
