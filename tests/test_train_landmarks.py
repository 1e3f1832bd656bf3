import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from factories import lm_cfg, make_300w, tiny_cfg

from fabrec.checkpoint import load_checkpoint
from fabrec.config import LMTrainConfig
from fabrec.errors import FabrecError
from fabrec.evaluate import evaluate
from fabrec.landmark_model import load_landmark_model
from fabrec.model import FabRec
from fabrec.train_autoencoder import train_autoencoder
from fabrec.train_landmarks import (
    lm_step,
    make_optimizer,
    parse_count,
    train_landmarks,
)
from fabrec.transforms import Box


@pytest.fixture
def tiny_ae(face_folder: Path, tmp_path: Path) -> Path:
    train_autoencoder(tiny_cfg(face_folder, max_steps=1), tmp_path / "ae", device="cpu", progress=False)
    return tmp_path / "ae" / "last.pt"


def batch(k: int = 5, n: int = 2, size: int = 64) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"image": torch.randn(n, 3, size, size, generator=g), "heatmaps": torch.rand(n, k, size, size, generator=g)}


@pytest.mark.parametrize("stage", [2, 3])
def test_trainable_parameters_get_gradients_and_frozen_ones_do_not(stage: int) -> None:
    net = FabRec(64, 5, width=0.125, itl=(2, 3))
    cfg = LMTrainConfig()
    opt = make_optimizer(net, cfg, stage)
    bn_before = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    gen_before = {k: v.clone() for k, v in net.generator.state_dict().items()}
    enc_before = {k: v.clone() for k, v in net.encoder.state_dict().items()}
    lm_step(net, opt, batch(), cfg)
    for name, p in net.named_parameters():
        trains = (name.startswith("itl.layers.1.") or name.startswith("itl.layers.2.")
                  or name.startswith("itl.heatmap") or (stage == 3 and name.startswith("encoder.")))
        assert p.requires_grad == trains, name
        if trains:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name
    # BatchNorm statistics never move, in either stage; the generator never changes
    for k, v in net.state_dict().items():
        if k in bn_before:
            torch.testing.assert_close(v, bn_before[k], rtol=0, atol=0)
    for k, v in net.generator.state_dict().items():
        torch.testing.assert_close(v, gen_before[k], rtol=0, atol=0)
    changed = any(not torch.equal(v, enc_before[k]) for k, v in net.encoder.state_dict().items())
    assert changed == (stage == 3)


def test_finetune_learning_rates() -> None:
    net = FabRec(64, 5, width=0.125)
    opt = make_optimizer(net, LMTrainConfig(), 3)
    assert [g["lr"] for g in opt.param_groups] == [1e-4, 2e-5]
    assert opt.defaults["betas"][0] == 0.9
    assert make_optimizer(net, LMTrainConfig(), 2).param_groups[0]["lr"] == 1e-3
    net.trainable(2)
    assert not net.encoder.training and not net.generator.training


def test_parse_count() -> None:
    assert parse_count("all") == 1.0 and parse_count("20%") == 0.2 and parse_count("50") == 50
    for bad in ("0", "abc", "150%", "-3"):
        with pytest.raises(FabrecError):
            parse_count(bad)


def test_train_resume_and_evaluate(tiny_ae: Path, tmp_path: Path) -> None:
    data = tmp_path / "300w"
    make_300w(data)
    cfg = lm_cfg(data, max_steps=4, finetune_encoder=True, finetune_steps=2)
    one = train_landmarks(cfg, tiny_ae, tmp_path / "one", device="cpu", progress=False)
    assert one.step == 6
    train_landmarks(replace(cfg, max_steps=4, finetune_encoder=False), tiny_ae, tmp_path / "two", device="cpu", progress=False)
    two = train_landmarks(cfg, tiny_ae, tmp_path / "two", device="cpu", resume=True, progress=False)
    assert two.step == 6
    a, b = load_checkpoint(tmp_path / "one" / "last.pt"), load_checkpoint(tmp_path / "two" / "last.pt")
    for net in ("encoder", "itl"):
        for k, v in a["nets"][net].items():
            torch.testing.assert_close(v, b["nets"][net][k], rtol=0, atol=0, msg=k)
    recs = [json.loads(x) for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    assert any("val_nme" in r for r in recs) and {r["stage"] for r in recs} == {2, 3}
    # the validation images are never training images, and they are the hash rule's choice
    from fabrec.datasets.landmarks import read_dataset
    from fabrec.schemes import BUILTIN
    from fabrec.train_landmarks import split_pool

    assert a["val_keys"] and not set(a["train_keys"]) & set(a["val_keys"])
    _, val = split_pool(read_dataset("300w", data, "train", BUILTIN["68"]).samples, cfg.val_permille, cfg.val_max)
    assert a["val_keys"] == [s.key for s in val]
    assert set(a["train_keys"]) | set(a["val_keys"]) == {s.key for s in read_dataset("300w", data, "train", BUILTIN["68"]).samples}
    model = load_landmark_model(tmp_path / "one" / "best.pt")
    m = evaluate(model, "300w", data, "full", tmp_path / "eval", device="cpu", grid_count=2)
    assert m["count"] == 6 and set(m["subsets"]) == {"common", "challenging"}
    assert 0 <= m["auc_10"] <= 1 and m["nme"] > 0
    for f in ("metrics.json", "predictions.npz", "ced.png", "grid.png"):
        assert (tmp_path / "eval" / f).exists()
    pred = np.load(tmp_path / "eval" / "predictions.npz")
    assert pred["points"].shape == (6, 68, 2) and pred["confidence"].shape == (6, 68)


def test_bf16_training_says_so_resumes_exactly_and_differs_from_fp32(tiny_ae: Path, tmp_path: Path, caplog) -> None:
    import logging

    from fabrec.runtime import cpu_bf16_units, resolve_amp

    assert resolve_amp("auto", torch.device("cpu")) == ("bf16" if "AMX" in cpu_bf16_units() else "none")
    assert resolve_amp("auto", torch.device("cuda")) == "none" and resolve_amp("bf16", torch.device("cpu")) == "bf16"
    data = tmp_path / "300w"
    make_300w(data)
    cfg = lm_cfg(data, max_steps=4, amp="bf16")
    with caplog.at_level(logging.INFO, logger="fabrec"):
        train_landmarks(cfg, tiny_ae, tmp_path / "one", device="cpu", progress=False)
    assert "bf16 autocast" in caplog.text
    train_landmarks(replace(cfg, max_steps=2), tiny_ae, tmp_path / "two", device="cpu", progress=False)
    train_landmarks(cfg, tiny_ae, tmp_path / "two", device="cpu", resume=True, progress=False)
    train_landmarks(replace(cfg, amp="none"), tiny_ae, tmp_path / "fp32", device="cpu", progress=False)
    a, b, f = (load_checkpoint(tmp_path / d / "last.pt")["nets"]["itl"] for d in ("one", "two", "fp32"))
    for k, v in a.items():
        torch.testing.assert_close(v, b[k], rtol=0, atol=0, msg=k)
    assert any(not torch.equal(v, f[k]) for k, v in a.items())  # the forward pass really ran in bf16


def test_a_model_learns_to_place_points(tiny_ae: Path, tmp_path: Path) -> None:
    """On a fixed synthetic face whose points never move, the ITLs learn them."""
    import cv2
    from factories import blob_image

    d = tmp_path / "same"
    d.mkdir()
    rng = np.random.default_rng(0)
    img = blob_image(rng)
    pts = np.array([[30.0, 35.0], [50.0, 35.0], [40.0, 45.0], [32.0, 55.0], [48.0, 55.0]])
    for i in range(8):
        cv2.imwrite(str(d / f"f{i}.png"), img)
        (d / f"f{i}.json").write_text(json.dumps({"points": pts.tolist()}))
    scheme = tmp_path / "five.yaml"
    scheme.write_text("points: 5\nnorm_points: [0, 1]\n")
    from fabrec.config import AugmentConfig

    cfg = lm_cfg(d, dataset="folder", scheme=str(scheme), max_steps=120, augment=AugmentConfig(flip=0, rotate=0, translate=0, scale_min=1, scale_max=1, shear=0),
                 val_every=1000, checkpoint_every=1000, lr=3e-3)
    r = train_landmarks(cfg, tiny_ae, tmp_path / "lm", device="cpu", progress=False)
    m = evaluate(load_landmark_model(tmp_path / "lm" / "last.pt"), "folder", d, "train", tmp_path / "ev",
                 device="cpu", grid_count=0, decoder="subpixel")
    assert r.step == 120
    assert m["nme"] < 10.0  # of the 20 px eye distance: under 2 px
    # published weights carry the custom scheme; the predictor returns its 5 points
    from fabrec.model_file import export_weights
    from fabrec.predict import LandmarkPredictor

    export_weights(tmp_path / "lm" / "last.pt", tmp_path / "five.safetensors")
    pred = LandmarkPredictor.from_pretrained(tmp_path / "five.safetensors", device="cpu", decoder="subpixel")
    (face,) = pred.predict(img, boxes=[Box.from_landmarks(pts, 0.25, 0.15).to_xywh()])
    assert pred.scheme.num_points == 5 and face.points.shape == (5, 2)
    assert np.abs(face.points - pts).max() < 3.0


@pytest.mark.parametrize("lr,kept", [(0.0, True), (1e-3, None)])
def test_cross_validation_keeps_the_start_model_unless_training_helps(tiny_ae: Path, tmp_path: Path, lr, kept) -> None:
    """Adapting a model of the same scheme with no validation images: k folds decide. A run that
    cannot learn (lr 0) must keep the start model bit for bit; either way the decision is recorded."""
    data = tmp_path / "300w"
    make_300w(data)
    start = tmp_path / "start"
    train_landmarks(lm_cfg(data, max_steps=2), tiny_ae, start, device="cpu", progress=False)
    cfg = lm_cfg(data, max_steps=3, val_permille=0, transfer_lr=lr, cv_folds=3)
    r = train_landmarks(cfg, tiny_ae, tmp_path / "adapt", device="cpu", progress=False, init_from=start / "best.pt")
    st = load_checkpoint(tmp_path / "adapt" / "best.pt")
    cv = st["cv"]
    assert cv["folds"] == 3 and len(cv["start_nme"]) == len(cv["trained_nme"]) == 3
    assert cv["kept"] == (not all(b < a for a, b in zip(cv["start_nme"], cv["trained_nme"])))
    if kept is not None:
        assert cv["kept"] is kept
    src = load_checkpoint(start / "best.pt")
    if cv["kept"]:
        assert r.step == 0
        for k, v in src["nets"]["itl"].items():
            torch.testing.assert_close(st["nets"]["itl"][k], v, rtol=0, atol=0)
    else:
        assert r.step == 3
    none = train_landmarks(replace(cfg, select="none"), tiny_ae, tmp_path / "plain", device="cpu", progress=False,
                           init_from=start / "best.pt")
    assert none.step == 3 and load_checkpoint(tmp_path / "plain" / "best.pt")["cv"] is None


def test_train_count_means_the_labelled_images_to_learn_from(tiny_ae: Path, tmp_path: Path, caplog) -> None:
    """Six labelled images and ``--train-count 6``: all six train, validation is left empty and
    the log says so; ``--train-count 7`` names the fix."""
    data = tmp_path / "300w"
    make_300w(data)
    cfg = lm_cfg(data, max_steps=2, train_count="6", val_permille=500)
    with caplog.at_level("INFO", logger="fabrec"):
        r = train_landmarks(cfg, tiny_ae, tmp_path / "six", device="cpu", progress=False)
    assert r.train_count == 6 and r.val_count == 0
    assert "go to training to give 6 training images; 0 left for validation" in caplog.text
    assert "no validation images (label more images than --train-count" in caplog.text
    assert (tmp_path / "six" / "best.pt").exists()
    r = train_landmarks(replace(cfg, train_count="4"), tiny_ae, tmp_path / "four", device="cpu", progress=False)
    assert r.train_count == 4 and r.val_count >= 1  # enough left over: validation as the hash split chose
    with pytest.raises(FabrecError, match=r"the data has 6; give --train-count 6 \(or all\)"):
        train_landmarks(replace(cfg, train_count="7"), tiny_ae, tmp_path / "seven", device="cpu", progress=False)
