import subprocess
import sys
from pathlib import Path

import pytest
from factories import make_300w

from fabrec.cli import main
from fabrec.sample_photo import SAMPLE_IMAGE

TINY = ["--image-size", "64", "--width", "0.125", "--batch-size", "4", "--workers", "0", "--no-progress",
        "--set", "schedule.curriculum=false", "--set", "data.val_permille=150", "--device", "cpu"]


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fabrec", *args], capture_output=True, text=True, timeout=300)


def one_line_error(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_user_mistakes_give_one_line_errors(tmp_path: Path, face_folder: Path) -> None:
    one_line_error(run(["train-ae", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]), "missing", "no such")
    (tmp_path / "empty").mkdir()
    one_line_error(run(["train-ae", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r")]), "empty", "no images")
    one_line_error(run(["train-ae", "--data", str(face_folder), "--out", str(tmp_path / "r"), "--image-size", "100"]), "invalid choice")
    one_line_error(run(["train-ae", "--data", str(face_folder), "--out", str(tmp_path / "r"), "--set", "model.colour=1"]), "colour")
    one_line_error(run(["generate", "--model", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "g.png")]), "nope.pt", "not found")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    one_line_error(run(["generate", "--model", str(tmp_path / "junk.pt"), "--out", str(tmp_path / "g.png")]), "junk.pt")
    one_line_error(run(["eval", "--model", str(tmp_path / "junk.pt"), "--dataset", "300w", "--root", str(tmp_path), "--out", str(tmp_path / "e")]), "junk.pt")
    one_line_error(run(["eval", "--model", str(tmp_path / "junk.pt"), "--dataset", "300w", "--root", str(tmp_path / "x"), "--out", str(tmp_path / "e")]), "--root", "no such folder")
    one_line_error(run(["predict", str(tmp_path / "junk.pt"), "--flip-from", "sideways", "--out", str(tmp_path / "p")]), "--flip-from", "sideways")
    one_line_error(run(["predict", str(SAMPLE_IMAGE), "--model", str(SAMPLE_IMAGE), "--out", str(tmp_path / "p")]),
                   SAMPLE_IMAGE.name, "not a model file")
    one_line_error(run(["predict", str(SAMPLE_IMAGE), "--min-score", "2", "--out", str(tmp_path / "p")]), "--min-score")
    one_line_error(run(["serve", "--port", "70000"]), "--port 70000")


def test_train_generate_interpolate_grow_and_size_mismatch(tmp_path: Path, face_folder: Path, capsys) -> None:
    out = tmp_path / "r64"
    assert main(["train-ae", "--data", str(face_folder), "--out", str(out), "--max-steps", "2", *TINY]) == 0
    ckpt = out / "last.pt"
    assert main(["generate", "--model", str(ckpt), "--out", str(tmp_path / "g.png"), "--count", "6"]) == 0
    imgs = sorted(face_folder.glob("*.jpg"))
    assert main(["interpolate", "--model", str(ckpt), "--a", str(imgs[0]), "--b", str(imgs[1]), "--steps", "4",
                 "--out", str(tmp_path / "i.png")]) == 0
    import cv2

    g, i = cv2.imread(str(tmp_path / "g.png")), cv2.imread(str(tmp_path / "i.png"))
    assert g.shape == (2 + 1 * 66, 2 + 6 * 66, 3) and i.shape == (68, 2 + 4 * 66, 3)
    # same run folder, other size, no --init-from: a clear error
    tiny128 = [*TINY]
    tiny128[1] = "128"
    capsys.readouterr()
    assert main(["train-ae", "--data", str(face_folder), "--out", str(out), "--max-steps", "3", "--resume", *tiny128]) == 2
    err = capsys.readouterr().err
    assert "--init-from" in err and len(err.strip().splitlines()) == 1
    # growth 64 -> 128 reports the new tensors
    assert main(["train-ae", "--data", str(face_folder), "--out", str(tmp_path / "r128"), "--max-steps", "1",
                 "--init-from", str(ckpt), *tiny128]) == 0
    err = capsys.readouterr().err
    assert "new tensors" in err and "generator.blocks.3" in err


def test_landmark_cli_and_sweep(tmp_path: Path, face_folder: Path) -> None:
    ae = tmp_path / "ae"
    assert main(["train-ae", "--data", str(face_folder), "--out", str(ae), "--max-steps", "1", *TINY]) == 0
    data = tmp_path / "300w"
    make_300w(data)
    common = ["--autoencoder", str(ae / "last.pt"), "--dataset", "300w", "--root", str(data), "--split", "train",
              "--batch-size", "2", "--max-steps", "2", "--no-progress", "--device", "cpu", "--set", "num_workers=0",
              "--set", "framing=landmarks"]  # synthetic faces: no detector finds them
    assert main(["train-landmarks", *common, "--train-count", "2", "--out", str(tmp_path / "lm"), "--itl", "2,3"]) == 0
    assert main(["eval", "--model", str(tmp_path / "lm" / "best.pt"), "--dataset", "300w", "--root", str(data),
                 "--split", "challenging", "--out", str(tmp_path / "ev"), "--device", "cpu"]) == 0
    assert main(["sweep", *common, "--counts", "1,50%", "--seeds", "2", "--eval-split", "full",
                 "--out", str(tmp_path / "sw")]) == 0
    table = (tmp_path / "sw" / "table.md").read_text()
    assert "| NME % | " in table and "±" in table and "(challenging)" in table
    with pytest.raises(SystemExit):
        main(["train-landmarks", *common, "--out", str(tmp_path / "x"), "--sample", "sideways"])
    assert main(["train-landmarks", *common, "--out", str(tmp_path / "x"), "--itl", "1,9"]) == 2


def test_predict_exits_non_zero_when_every_input_fails(tmp_path, capsys) -> None:
    bad = tmp_path / "in"
    bad.mkdir()
    for i in range(2):
        (bad / f"broken{i}.jpg").write_bytes(b"not a jpeg")
    code = main(["predict", str(bad), "--out", str(tmp_path / "out"), "--no-progress", "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 1 and "every input failed" in err
    assert "2 failed; 2 x " in out  # the cause, counted


def test_missing_optional_detector_is_one_error_before_any_work(tmp_path, capsys, monkeypatch) -> None:
    import sys

    from fabrec.sample_photo import SAMPLE_IMAGE

    monkeypatch.setitem(sys.modules, "dlib", None)  # as if dlib were not installed
    code = main(["predict", str(SAMPLE_IMAGE), "--detector", "dlib", "--out", str(tmp_path / "out"),
                 "--no-progress", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'fabrec[dlib]'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_threads_flag_sets_and_reports_the_thread_count(capsys) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        assert main(["bench", "--threads", "1", "--reps", "2"]) == 0
        assert "1 thread(s)" in capsys.readouterr().out
        assert main(["bench", "--threads", "0", "--reps", "2"]) == 2
        assert "--threads must be at least 1" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)


def test_default_threads_leave_busy_cores_alone(monkeypatch) -> None:
    import os

    import torch

    import fabrec.runtime as rt
    from fabrec.runtime import default_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(rt, "_CORES", 4)
        monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.0, 0.0))
        assert default_threads() == 4
        monkeypatch.setattr(os, "getloadavg", lambda: (2.2, 0.0, 0.0))
        assert default_threads() == 2
        monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 0.0, 0.0))
        assert default_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_predict_says_how_it_runs_and_takes_the_speed_options(tmp_path, capsys) -> None:
    import json

    from fabrec.sample_photo import SAMPLE_IMAGE

    from fabrec.runtime import cpu_bf16_units

    runs = {}
    for name, extra in (("plain", ["--dtype", "fp32", "--no-fold-bn", "--flip-from", "off"]),
                        ("fast", ["--dtype", "bf16", "--flip-from", "45"]), ("auto", [])):
        out = tmp_path / name
        assert main(["predict", str(SAMPLE_IMAGE), "--out", str(out), "--no-progress", "--device", "cpu",
                     "--no-images", "--no-quality", *extra]) == 0
        runs[name] = capsys.readouterr().out
        face = json.loads(next(out.glob("*.json")).read_text())["faces"][0]
        runs[name + "_pts"] = face["points"]
    assert "torch fp32 on cpu" in runs["plain"] and "reference decoder" in runs["plain"]
    assert "BatchNorm folded" not in runs["plain"] and "test-time flip" not in runs["plain"]
    assert "test-time flip for heads turned 45 degrees" in runs["fast"]
    assert "test-time flip for heads turned 30 degrees" in runs["auto"]  # the default
    assert "torch bf16 on cpu" in runs["fast"] and "BatchNorm folded" in runs["fast"]
    # the default: bf16 where the CPU has bf16 units, and the line names them
    units = cpu_bf16_units()
    assert (f"torch {'bf16' if units else 'fp32'} on cpu") in runs["auto"] and "BatchNorm folded" in runs["auto"]
    assert all(u in runs["auto"] for u in units) and (units or "no bf16 units" in runs["auto"])
    import numpy as np

    d = np.linalg.norm(np.array(runs["plain_pts"]) - np.array(runs["fast_pts"]), axis=1)
    assert d.mean() < 1.5  # original-image pixels: the options move points by rounding only


def test_the_script_leaves_fast_and_keeps_its_output(tmp_path: Path) -> None:
    """`python -m fabrec predict` leaves with os._exit (FAST_EXIT) after flushing: the status,
    the summary line and every result line are all there; in-process `main` returns instead."""
    from fabrec.cli import FAST_EXIT
    from fabrec.sample_photo import SAMPLE_IMAGE

    assert "predict" in FAST_EXIT and "train-landmarks" not in FAST_EXIT and "serve" not in FAST_EXIT
    (tmp_path / "junk.jpg").write_bytes(b"not a photo")
    r = run(["predict", str(SAMPLE_IMAGE), str(tmp_path / "junk.jpg"), "--format", "jsonl",
             "--no-images", "--out", str(tmp_path / "p"), "--threads", "1", "--no-progress"])
    assert r.returncode == 0, r.stderr
    assert "1 image(s) with 1 face(s)" in r.stdout and "1 failed" in r.stdout  # a pipe: block-buffered, flushed
    lines = (tmp_path / "p" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(line.endswith("}") for line in lines)


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path: Path) -> None:
    """`fabrec predict ... | head -1`: the pipe closes before anything is printed; the work
    goes on and its results are all written, the status is the command's, no traceback."""
    from fabrec.sample_photo import SAMPLE_IMAGE

    p = subprocess.Popen([sys.executable, "-m", "fabrec", "predict", str(SAMPLE_IMAGE), "--no-images", "--out",
                          str(tmp_path / "p"), "--threads", "1", "--no-progress"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()  # the reader is gone before anything is printed
    err = p.stderr.read()
    assert p.wait(300) == 0, err
    assert "Traceback" not in err
    assert (tmp_path / "p" / f"{SAMPLE_IMAGE.stem}.json").is_file()
