"""A dataset format, a face detector and a backbone each join fabrec through one registry entry
(``fabrec.registry``) plus their own module (``plugin_example.py``): commands, the model file
and the predictor take them with no other change."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from factories import blob_image, face_points

from fabrec import registry
from fabrec.cli import build_parser, main
from fabrec.config import ModelConfig
from fabrec.datasets.landmarks import read_dataset
from fabrec.landmark_model import LandmarkModel, load_landmark_model
from fabrec.model import FabRec
from fabrec.model_file import ModelFile, export_weights
from fabrec.predict import LandmarkPredictor
from fabrec.schemes import BUILTIN


def _choices(cmd: str, dest: str) -> list[str]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return list(next(a for a in sub.choices[cmd]._actions if a.dest == dest).choices)


def test_a_dataset_format(tmp_path: Path, monkeypatch, tiny_lm: Path) -> None:
    monkeypatch.setitem(registry.DATASETS, "tsv", "plugin_example:read_tsv")
    rng = np.random.default_rng(1)
    rows = []
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"f{i}.jpg"), blob_image(rng))
        pts = face_points(68 if i < 2 else 5, rng)
        rows.append(f"f{i}.jpg\t" + ";".join(f"{x:.2f},{y:.2f}" for x, y in pts))
    (tmp_path / "points.tsv").write_text("\n".join(rows) + "\n")
    res = read_dataset("tsv", tmp_path, "train", BUILTIN["68"])
    assert len(res.samples) == 2 and "f2.jpg: 5 points" in res.problems[0]
    assert "tsv" in _choices("eval", "dataset") and "tsv" in _choices("train-landmarks", "dataset")
    out = tmp_path / "ev"
    assert main(["eval", "--model", str(tiny_lm), "--dataset", "tsv", "--root", str(tmp_path), "--out", str(out),
                 "--device", "cpu"]) == 0
    assert json.loads((out / "metrics.json").read_text())["count"] == 2


def test_a_face_detector(monkeypatch, tiny_lm: Path) -> None:
    monkeypatch.setitem(registry.DETECTORS, "whole-photo", "plugin_example:WholePhoto")
    assert "whole-photo" in _choices("predict", "detector")
    p = LandmarkPredictor.from_pretrained(str(tiny_lm), detector="whole-photo", device="cpu", quality=False)
    faces = p.predict(blob_image(np.random.default_rng(2), 120))
    assert len(faces) == 1 and np.asarray(faces[0].points).shape == (68, 2)


def test_a_backbone(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(registry.ARCHITECTURES, "wide", "plugin_example:WIDE")
    torch.manual_seed(0)
    mc = ModelConfig(image_size=64, width=0.125, num_landmarks=5, arch="wide")
    net = FabRec(config=mc).eval()
    paper = FabRec(config=ModelConfig(image_size=64, width=0.125, num_landmarks=5)).eval()
    assert net.itl.layers[0].weight.shape[0] == 2 * paper.itl.layers[0].weight.shape[0]  # type: ignore[union-attr]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = net(x, reconstruct=True)
    assert out.heatmaps.shape == paper(x).heatmaps.shape and out.reconstruction.shape == x.shape  # type: ignore[union-attr]
    # the model file carries the arch: written, read back and rebuilt through the registry
    nets = {n: getattr(net, n).state_dict() for n in ("encoder", "generator", "itl")}
    scheme = {"name": "five", "points": ["a", "b", "c", "d", "e"]}
    export_weights(ModelFile("landmarks", mc, nets, scheme, list(net.itl.active)), tmp_path / "wide.safetensors")  # type: ignore[union-attr]
    back = load_landmark_model(tmp_path / "wide.safetensors")
    assert isinstance(back, LandmarkModel) and back.config.arch == "wide"
    with torch.no_grad():
        torch.testing.assert_close(back.heatmaps(x), net.heatmaps(x), atol=2e-2, rtol=2e-2)  # fp16 weights
    monkeypatch.delitem(registry.ARCHITECTURES, "wide")
    with pytest.raises(Exception, match="unknown architecture 'wide'"):
        load_landmark_model(tmp_path / "wide.safetensors")
