"""Every subcommand that takes a model accepts the bundled name, a .safetensors export and a
training .pt, through one reader (fabrec.model_file); the loader's, export's, evaluate's and the
detector's own behaviour."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from fabrec.cli import main
from fabrec.errors import FabrecError
from fabrec.landmark_model import load_landmark_model
from fabrec.model_file import export_weights, read_autoencoder, read_model_file
from fabrec.sample_photo import SAMPLE_IMAGE


@pytest.fixture(scope="module")
def specs(tiny_lm: Path) -> dict[str, Path | str]:  # noqa: F811
    """The tiny models of test_predict (autoencoder, landmarks on a 300-W layout) as every kind
    of model spec."""
    tmp = tiny_lm.parent.parent
    export_weights(tmp / "lm" / "last.pt", tmp / "lm.safetensors")
    export_weights(tmp / "ae" / "last.pt", tmp / "ae.safetensors")
    return {"default": "default", "pt": tmp / "lm" / "last.pt", "safetensors": tmp / "lm.safetensors",
            "ae_pt": tmp / "ae" / "last.pt", "ae_safetensors": tmp / "ae.safetensors", "data": tmp / "300w",
            "faces": tmp / "faces", "tmp": tmp}


KINDS = ["default", "pt", "safetensors"]


@pytest.mark.parametrize("kind", KINDS)
def test_predict_eval_export_bench_take_every_kind_of_model(specs, kind: str, tmp_path: Path, capsys) -> None:
    model = str(specs[kind])
    data = specs["data"]
    assert main(["predict", str(SAMPLE_IMAGE), "--model", model, "--out", str(tmp_path / "p"),
                 "--no-progress", "--device", "cpu"]) == 0
    assert (tmp_path / "p" / "astronaut.json").exists()
    assert main(["eval", "--model", model, "--dataset", "300w", "--root", str(data), "--split", "afw",
                 "--out", str(tmp_path / "e"), "--device", "cpu"]) == 0
    assert (tmp_path / "e" / "metrics.json").exists()
    out = tmp_path / "new" / "folder" / "m.safetensors"  # export creates missing folders
    assert main(["export", "--format", "safetensors", "--model", model, "--out", str(out)]) == 0
    a, b = read_model_file(out), read_model_file(model)
    for k, v in b.nets["itl"].items():
        torch.testing.assert_close(a.nets["itl"][k], v.half().float())
    assert main(["bench", "--model", model, "--reps", "2", "--batch-size", "1"]) == 0
    assert "faces/s" in capsys.readouterr().out


@pytest.mark.parametrize("kind", KINDS + ["ae_pt", "ae_safetensors"])
def test_generate_and_interpolate_take_every_kind_of_model(specs, kind: str, tmp_path: Path) -> None:
    model = str(specs[kind])
    assert main(["generate", "--model", model, "--out", str(tmp_path / "g.png"), "--count", "2"]) == 0
    a, b = sorted(specs["faces"].glob("*.jpg"))[:2]
    assert main(["interpolate", "--model", model, "--a", str(a), "--b", str(b), "--steps", "2",
                 "--out", str(tmp_path / "i.png")]) == 0
    assert cv2.imread(str(tmp_path / "g.png")) is not None and cv2.imread(str(tmp_path / "i.png")) is not None


@pytest.mark.parametrize("kind", ["pt", "safetensors", "ae_pt", "ae_safetensors"])
def test_training_commands_take_every_kind_of_model(specs, kind: str, tmp_path: Path) -> None:
    model, data = str(specs[kind]), specs["data"]
    common = ["--dataset", "300w", "--root", str(data), "--split", "train", "--batch-size", "2",
              "--workers", "0", "--no-progress", "--set", "framing=landmarks"]  # synthetic faces
    assert main(["train-landmarks", "--autoencoder", model, "--max-steps", "1", "--out", str(tmp_path / "lm"),
                 *common]) == 0
    assert main(["sweep", "--autoencoder", model, "--counts", "2", "--seeds", "1", "--max-steps", "1",
                 "--eval-split", "afw", "--out", str(tmp_path / "sw"), "--dataset", "300w", "--root", str(data),
                 "--batch-size", "2", "--no-progress", "--set", "framing=landmarks"]) == 0
    assert main(["train-ae", "--data", str(specs["faces"]), "--init-from", model, "--image-size", "64",
                 "--width", "0.125", "--max-steps", "1", "--batch-size", "4", "--workers", "0",
                 "--out", str(tmp_path / "ae"), "--no-progress"]) == 0
    if kind in ("pt", "safetensors"):
        assert main(["train-landmarks", "--autoencoder", str(specs["ae_pt"]), "--init-from", model,
                     "--max-steps", "1", "--out", str(tmp_path / "init"), *common]) == 0


def test_train_landmarks_and_train_ae_accept_the_bundled_default(specs, tmp_path: Path) -> None:
    data = specs["data"]
    assert main(["train-landmarks", "--autoencoder", "default", "--init-from", "default", "--dataset", "300w",
                 "--root", str(data), "--split", "train", "--max-steps", "1", "--batch-size", "2",
                 "--workers", "0", "--out", str(tmp_path / "lm"), "--no-progress", "--framing", "landmarks"]) == 0
    assert main(["train-ae", "--data", str(specs["faces"]), "--init-from", "default", "--image-size", "128",
                 "--width", "0.5", "--max-steps", "1", "--batch-size", "2", "--workers", "0",
                 "--set", "data.val_permille=0", "--out", str(tmp_path / "ae"), "--no-progress"]) == 0


def test_loader_decides_the_kind_in_one_place(specs, tmp_path: Path) -> None:
    assert read_model_file(specs["pt"]).kind == "landmarks" == read_model_file(specs["safetensors"]).kind
    assert read_model_file(specs["ae_pt"]).kind == "autoencoder" == read_model_file(specs["ae_safetensors"]).kind
    with pytest.raises(FabrecError, match="an autoencoder, not a landmark model"):
        load_landmark_model(specs["ae_safetensors"])
    with pytest.raises(FabrecError, match="not a bundled name"):
        load_landmark_model("nonexistent-model")
    with pytest.raises(FabrecError, match="checkpoint not found"):
        load_landmark_model(tmp_path / "missing.pt")
    with pytest.raises(FabrecError, match="random weights"):
        read_autoencoder("paper-256")
    assert load_landmark_model("paper-256").image_size == 256
    # a landmark model gives back the autoencoder it was trained on (generator unchanged)
    ae, lm = read_autoencoder(specs["ae_pt"]), read_autoencoder(specs["pt"])
    for k, v in ae.nets["generator"].items():
        torch.testing.assert_close(lm.nets["generator"][k], v)
    # the bundled default carries its autoencoder's encoder, which differs from the finetuned one
    d = read_model_file("default")
    assert "ae_encoder" in d.nets
    assert any(not torch.equal(d.nets["ae_encoder"][k], v) for k, v in d.nets["encoder"].items()
               if v.is_floating_point())
    # a weights file with a foreign tensor group is refused by name
    bad = read_model_file(specs["safetensors"]).state()
    bad["nets"] = {**bad["nets"], "extra": {"w": torch.zeros(1)}}
    from safetensors.torch import save_file

    tensors = {f"{n}.{k}": v for n, sd in bad["nets"].items() for k, v in sd.items()}
    import json

    meta = {"format": "fabrec-weights", "version": 1, **{k: v for k, v in bad.items() if k != "nets"}}
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata={"fabrec": json.dumps(meta)})
    with pytest.raises(FabrecError, match="unexpected networks \\['extra'\\]"):
        read_model_file(tmp_path / "bad.safetensors")


def test_placed_never_moves_the_callers_model(specs) -> None:
    m = load_landmark_model(specs["pt"])
    w = next(p for p in m.net.parameters() if p.dim() == 4)
    assert w.is_contiguous()  # NCHW as loaded
    p = m.placed(torch.device("cpu"))
    assert p is not m and next(q for q in p.net.parameters() if q.dim() == 4).is_contiguous(
        memory_format=torch.channels_last)
    assert w.is_contiguous() and p.placed(torch.device("cpu")) is p


def test_evaluate_scores_a_perfect_prediction_as_zero(specs, tmp_path: Path, monkeypatch) -> None:
    """evaluate's metric path: feed the ground truth back as the prediction -> NME 0."""
    import fabrec.evaluate as ev

    model = load_landmark_model(specs["pt"])

    def oracle(m, ds, batch=32, progress=False):
        idx = list(range(len(ds)))
        gt = np.stack([ds.samples[i].points for i in idx])
        norms = np.array([np.linalg.norm(s.points[36] - s.points[45]) for s in ds.samples])
        return gt, np.ones(gt.shape[:2]), norms, idx

    monkeypatch.setattr(ev, "predict_dataset", oracle)
    m = ev.evaluate(model, "300w", specs["data"], "full", tmp_path / "ev", device="cpu", grid_count=0)
    assert m["nme"] == 0.0 and m["fr_10"] == 0.0 and m["auc_10"] == 1.0 and m["count"] == 6
    assert set(m["subsets"]) == {"common", "challenging"}


def test_opencv_detector_finds_the_sample_face_and_maps_it_to_the_framing() -> None:
    from fabrec.faces.detectors import get_detector
    from fabrec.faces.framing import crop_box
    from fabrec.io import read_image
    from fabrec.sample_photo import SAMPLE_BOX

    det = get_detector("opencv")
    boxes = det.detect(read_image(SAMPLE_IMAGE))
    assert len(boxes) == 1
    x, y, w, h = boxes[0].box
    sx, sy, sw, sh = SAMPLE_BOX
    assert abs((x + w / 2) - (sx + sw / 2)) < 0.15 * sw and abs(w - sw) < 0.35 * sw
    cb = crop_box(boxes[0].box, det.calibration, (0.18, 0.01))
    assert cb.side > 0 and abs(cb.cx - (x + w / 2)) < 0.3 * w
    assert det.detect(np.zeros((120, 160, 3), np.uint8)) == []
    with pytest.raises(FabrecError, match="unknown detector"):
        get_detector("nope")
