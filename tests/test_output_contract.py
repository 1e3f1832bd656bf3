"""What a user can rely on: one result schema for every output kind, one-line errors for output
paths, inputs checked before the model loads, every option documented with its default, an
explicit colour order, and shards that cover every input exactly once."""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from fabrec.cli import build_parser, main
from fabrec.inputs import parse_shard, shard_index, shard_of
from fabrec.predict import LandmarkPredictor
from fabrec.results import csv_row_record, json_schema
from fabrec.sample_photo import SAMPLE_IMAGE
from fabrec.schemes import Scheme

jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A real photo, a face-less picture, an unreadable file and a short real video."""
    d = tmp_path_factory.mktemp("in")
    (d / "astronaut.jpg").write_bytes(SAMPLE_IMAGE.read_bytes())
    cv2.imwrite(str(d / "wall.png"), np.full((120, 160, 3), 200, np.uint8))
    (d / "broken.jpg").write_bytes(b"not a jpeg")
    bgr = cv2.imread(str(SAMPLE_IMAGE))
    vw = cv2.VideoWriter(str(d / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 256))
    for t in range(4):
        vw.write(cv2.resize(np.roll(bgr, 3 * t, axis=1), (256, 256)))
    vw.release()
    return d


def validate(rec: dict) -> None:
    jsonschema.validate(rec, json_schema())


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_every_output_kind_validates_against_the_schema(inputs: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "o"
    assert main(["predict", str(inputs), "--out", str(out), "--format", fmt, "--no-progress", "--device", "cpu",
                 "--no-images"]) == 0
    if fmt == "json":
        records = [json.loads(p.read_text()) for p in out.rglob("*.json")]
    elif fmt == "jsonl":
        records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    else:
        rows = list(csv.reader((out / "predictions.csv").open()))
        header = rows[0]
        assert header[:5] == ["schema", "kind", "file", "frame", "face"] and header[-3:] == ["x67", "y67", "c67"]
        records = [csv_row_record(header, r) for r in rows[1:]]
    frames = [json.loads(line) for line in (out / "clip_frames.jsonl").read_text().splitlines()]
    assert len(frames) == 4 and all(f["kind"] == "frame" and f["frame"] == i for i, f in enumerate(frames))
    for rec in records + frames:
        validate(rec)
    kinds = {(r["file"], r["kind"]) for r in records}
    assert kinds == {("astronaut.jpg", "image"), ("wall.png", "image"), ("broken.jpg", "image"), ("clip.avi", "video")}
    by = {r["file"]: r for r in records}
    assert len(by["astronaut.jpg"]["faces"]) == 1 and by["astronaut.jpg"]["model"] == "default"
    assert by["wall.png"]["faces"] == [] and "error" in by["broken.jpg"]
    assert by["clip.avi"]["frames"] == 4 and "faces" not in by["clip.avi"]


def test_the_schema_rejects_what_it_should() -> None:
    face = {"box": [0, 0, 1, 1], "score": None, "points": [[1, 2]], "confidence": [0.5], "mean_confidence": 0.5,
            "quality": None, "reconstruction_error": None, "source": "detector", "roll_degrees": 0.0}
    good = {"schema": "fabrec-result/1", "kind": "image", "file": "a.jpg", "model": "default", "scheme": "68",
            "width": 10, "height": 10, "faces": [face]}
    validate(good)
    for bad in ({**good, "faces_found": 1}, {**good, "kind": "frame"}, {**good, "schema": "fabrec-result/0"},
                {**good, "faces": [{**face, "box": [0, 0, 1]}]}, {**good, "error": "x"}):
        with pytest.raises(jsonschema.ValidationError):
            validate(bad)


def test_output_path_mistakes_are_one_line_errors_before_any_work(tmp_path: Path, capsys) -> None:
    existing = tmp_path / "existing.jpg"
    existing.write_bytes(b"x")
    assert main(["predict", str(SAMPLE_IMAGE), "--out", str(existing)]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "is a file" in err and str(existing) in err and out == ""
    assert main(["export", "--model", "default", "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "missing.jpg"), "--out", str(tmp_path / "o")]) == 2
    out, err = capsys.readouterr()
    assert "no such file" in err and out == ""  # the model was not loaded (no banner)
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert main(["predict", str(SAMPLE_IMAGE), "--out", str(locked / "o")]) == 2
        assert "permission denied" in capsys.readouterr().err


def test_every_option_of_every_command_has_a_sentence_and_shows_its_default() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for cmd, sp in sub.choices.items():
        fmt = sp._get_formatter()
        for act in sp._actions:
            if isinstance(act, argparse._HelpAction) or not act.option_strings:
                continue
            assert act.help and len(act.help) > 10, (cmd, act.option_strings)
            text = fmt._get_help_string(act)
            assert "default" in text or "required" in text, (cmd, act.option_strings, text)
    assert "(default: 16, from the config)" in " ".join(sub.choices["train-landmarks"].format_help().split())
    assert "(default: 0.6)" in " ".join(sub.choices["predict"].format_help().split())


def test_the_normaliser_is_named_from_the_scheme() -> None:
    five = Scheme.from_dict({"name": "five", "points": ["left_eye", "right_eye", "nose"], "norm_points": [0, 1]})
    assert five.normaliser == "distance between left_eye and right_eye (points 0 and 1, 0-based)"


def test_bgr_and_rgb_arrays_give_the_same_points_when_declared() -> None:
    p = LandmarkPredictor.from_pretrained("default", device="cpu", quality=False)
    bgr = cv2.imread(str(SAMPLE_IMAGE))
    (a,) = p.predict(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    (b,) = p.predict(bgr, channels="bgr")
    np.testing.assert_array_equal(a.points, b.points)
    wrong = p.predict(bgr)  # BGR passed as RGB: a different picture to the model
    assert not wrong or not np.array_equal(wrong[0].points, a.points)
    with pytest.raises(Exception, match="channels must be"):
        p.predict(bgr, channels="brg")


def test_shards_cover_every_input_exactly_once(tmp_path: Path) -> None:
    names = [Path(f"dir{i % 7}/photo_{i:05d}.jpg") for i in range(2000)]
    files = [(n, n) for n in names]
    for n_shards in (1, 3, 8):
        got = [f for k in range(1, n_shards + 1) for f in shard_of(files, k, n_shards)]
        assert sorted(got) == sorted(files)
        sizes = [len(shard_of(files, k, n_shards)) for k in range(1, n_shards + 1)]
        assert min(sizes) > 0.7 * len(files) / n_shards  # roughly even
    assert shard_of(list(reversed(files)), 2, 3) == list(reversed(shard_of(files, 2, 3)))  # order-free
    assert shard_index("a/b.jpg", 5) == shard_index("a/b.jpg", 5)
    for bad in ("0/3", "4/3", "x", "1/0"):
        with pytest.raises(Exception, match="--shard"):
            parse_shard(bad)


def test_shard_runs_split_a_folder_between_processes(inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    for k in (1, 2, 3):
        assert main(["predict", str(inputs), "--out", str(out), "--shard", f"{k}/3", "--no-progress",
                     "--device", "cpu", "--no-images", "--skip-existing"]) in (0, 1)
    written = sorted(p.name for p in out.glob("*.json"))
    assert written == ["astronaut.json", "broken.json", "clip.json", "wall.json"]


def test_every_command_that_computes_takes_threads_and_no_progress() -> None:
    from fabrec.cli import COMPUTING

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) - set(COMPUTING) == {"boxes"}  # converts .pts text to a CSV, nothing more
    for name in COMPUTING:
        flags = {o for a in sub.choices[name]._actions for o in a.option_strings}
        assert {"--threads", "--no-progress"} <= flags, name


def test_eval_takes_no_progress_and_threads(tmp_path: Path) -> None:
    """Once refused; a real eval on a few 300-W-format faces."""
    from fabrec.sample_photo import SAMPLE_IMAGE as img

    d = tmp_path / "faces"
    d.mkdir()
    (d / "a.jpg").write_bytes(img.read_bytes())
    pred = LandmarkPredictor.from_pretrained("default", device="cpu", quality=False)
    (face,) = pred.predict(str(img))
    pts = "\n".join(f"{x:.2f} {y:.2f}" for x, y in face.points)
    (d / "a.pts").write_text(f"version: 1\nn_points: 68\n{{\n{pts}\n}}\n")
    assert main(["eval", "--model", "default", "--dataset", "folder", "--root", str(d), "--out", str(tmp_path / "e"),
                 "--no-progress", "--threads", "1", "--device", "cpu"]) == 0
    assert json.loads((tmp_path / "e" / "metrics.json").read_text())["count"] == 1


def test_inference_options_are_one_surface_for_predict_serve_eval_bench_and_the_api() -> None:
    from dataclasses import replace

    from fabrec.errors import FabrecError
    from fabrec.faces.detectors import ALL_ROTATIONS
    from fabrec.inference_options import options_from_args, with_overrides

    parser = build_parser()
    flags = ["--dtype", "bf16", "--rotations", "all", "--no-face-filter", "--min-score", "0.5", "--flip"]
    o = options_from_args(parser.parse_args(["predict", "x.jpg", *flags]))
    assert (o.precision, o.rotations, o.face_filter, o.min_score, o.flip) == ("bf16", ALL_ROTATIONS, False, 0.5, True)
    assert options_from_args(parser.parse_args(["serve", *flags])) == o
    e = options_from_args(parser.parse_args(["eval", "--model", "m", "--out", "o", "--dtype", "bf16", "--flip"]))
    assert e == replace(type(o)(), precision="bf16", flip=True, threads=None)
    assert options_from_args(parser.parse_args(["bench", "--dtype", "fp16"])).batch_size == 1
    p = LandmarkPredictor.from_pretrained("default", o, device="cpu", quality=False)
    assert p.face_filter is None and p.model.precision == "bf16" and p.model.flip_average
    assert p.detector.rotations == ALL_ROTATIONS and p.detector.score == 0.5
    with pytest.raises(FabrecError, match="unknown inference option"):
        with_overrides(None, rotation=(0,))
