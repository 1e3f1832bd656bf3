"""Input naming for ``fabrec predict``: no two inputs of a run share an output, the full relative
path in ``file``; input mistakes fail before PyTorch loads."""

import json
import subprocess
import sys
from pathlib import Path, PurePath

import pytest

from fabrec.cli import main
from fabrec.errors import FabrecError
from fabrec.inputs import expand_inputs
from fabrec.sample_photo import SAMPLE_IMAGE


def _tree(root: Path, names: list[str]) -> None:
    for n in names:
        (root / n).parent.mkdir(parents=True, exist_ok=True)
        (root / n).write_bytes(Path(SAMPLE_IMAGE).read_bytes())


def test_names_are_relative_to_the_inputs_common_folder(tmp_path: Path) -> None:
    _tree(tmp_path, ["coll/a/x.jpg", "coll/b/x.jpg", "coll/b/sub/y.jpg", "p.jpg"])
    one = expand_inputs([str(tmp_path / "coll")])
    assert [i.name.as_posix() for i in one] == ["a/x.jpg", "b/sub/y.jpg", "b/x.jpg"]
    two = expand_inputs([str(tmp_path / "coll/a"), str(tmp_path / "coll/b")])
    assert [i.name.as_posix() for i in two] == ["a/x.jpg", "b/sub/y.jpg", "b/x.jpg"]
    files = expand_inputs([str(tmp_path / "coll/a/x.jpg"), str(tmp_path / "p.jpg")])
    assert [i.name.as_posix() for i in files] == ["coll/a/x.jpg", "p.jpg"]
    assert [i.out for i in expand_inputs([str(tmp_path / "p.jpg")])] == [PurePath("p")]


def test_shared_stems_keep_their_extension_and_a_file_given_twice_runs_once(tmp_path: Path) -> None:
    _tree(tmp_path, ["d/x.jpg", "d/x.png", "d/x.jpg.png", "d/z.jpg"])
    got = expand_inputs([str(tmp_path / "d"), str(tmp_path / "d" / "z.jpg")])
    outs = [i.out.as_posix() for i in got]
    assert len(got) == 4 and len(set(outs)) == 4
    assert set(outs) >= {"x.png", "z"}  # x.jpg, x.png and x.jpg.png would all be x*.json


def test_predict_with_colliding_names_writes_every_input(tmp_path: Path) -> None:
    """``predict coll/a coll/b`` where both hold ``x.jpg``, and ``x.png`` beside one: three
    records, none overwritten, ``file`` the full relative path."""
    _tree(tmp_path, ["coll/a/x.jpg", "coll/b/x.jpg", "coll/b/x.png"])
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "coll/a"), str(tmp_path / "coll/b"), "--out", str(out),
                 "--no-progress", "--no-quality"]) == 0
    recs = {p.relative_to(out).as_posix(): json.loads(p.read_text())["file"] for p in out.rglob("*.json")}
    assert recs == {"a/x.json": "a/x.jpg", "b/x.jpg.json": "b/x.jpg", "b/x.png.json": "b/x.png"}
    assert len(list(out.rglob("*_landmarks.jpg"))) == 3
    assert main(["predict", str(tmp_path / "coll/a"), str(tmp_path / "coll/b"), "--out", str(out), "--format",
                 "jsonl", "--no-progress", "--no-quality", "--no-images"]) == 0
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert sorted(json.loads(s)["file"] for s in lines) == ["a/x.jpg", "b/x.jpg", "b/x.png"]


@pytest.mark.parametrize("args", [["nothere.jpg"], ["notes.txt"], [".", "--rotations", "45"],
                                  [".", "--boxes", "missing.csv"]])
def test_input_mistakes_fail_before_pytorch_loads(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "notes.txt").write_text("not a photo")
    _tree(tmp_path, ["a.jpg"])
    code = ("import sys; from fabrec.cli import main; rc = main(['predict', *sys.argv[1:]]); "
            "print(rc, 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path, capture_output=True, text=True)
    assert r.stdout.split() == ["2", "False"], r.stderr
    assert r.stderr.count("\n") == 1 and "error:" in r.stderr


def test_missing_input_is_named() -> None:
    with pytest.raises(FabrecError, match="nothere.jpg: no such file"):
        expand_inputs(["nothere.jpg"])
