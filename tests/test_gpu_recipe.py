"""The GPU recipe's dry run: the whole flow (pack, train, export, install) on the CPU, tiny,
on a synthetic copy of the shared data layout (so it runs where ../shared is absent)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from factories import blob_image, face_points

from fabrec.datasets.pts import read_pts, write_pts
from fabrec.model_file import read_model_file
from fabrec.weights import sha256

ROOT = Path(__file__).resolve().parents[1]


def fake_shared(root: Path) -> Path:
    rng = np.random.default_rng(0)
    (root / "utkface").mkdir(parents=True)
    for i in range(30):
        cv2.imwrite(str(root / "utkface" / f"{20 + i}_0_0_2017{i:04d}.jpg.chip.jpg"), blob_image(rng, 200))
    for folder, n in (("300w/helen/trainset", 16), ("300w/afw", 6)):
        d = root / folder
        d.mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(d / f"{i:03d}_1.jpg"), blob_image(rng, 400))
            write_pts(d / f"{i:03d}_1.pts", face_points(68, rng, 400))
    return root


def test_dry_run_writes_what_a_gpu_call_returns_and_installs_it(tmp_path: Path) -> None:
    shared = fake_shared(tmp_path / "shared")
    out = tmp_path / "dry"
    env = {**os.environ, "FABREC_SHARED": str(shared), "PYTHON": sys.executable}
    p = subprocess.run(["bash", str(ROOT / "tools/gpu/default_model.sh"), "--dry-run", str(out)],
                       env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    back = out / "returned"
    assert {f.name for f in back.iterdir()} == {"ae.safetensors", "lm.safetensors", "extras.tar.gz", "log.txt"}
    assert all(f.stat().st_size < 16_000_000 for f in back.iterdir())  # what one GPU call can return
    assert read_model_file(back / "ae.safetensors").kind == "autoencoder"
    lm = read_model_file(back / "lm.safetensors")
    assert lm.kind == "landmarks" and "ae_encoder" not in lm.nets
    # the packed HELEN points were rescaled with their images (pixel centres kept)
    packed = sorted((out / "work" / "data" / "300w" / "helen" / "trainset").glob("*.pts"))
    assert packed
    src = read_pts(shared / "300w/helen/trainset" / packed[0].name)
    np.testing.assert_allclose((src + 0.5) * (288 / 400) - 0.5, read_pts(packed[0]), atol=2e-3)
    # install: one file with the autoencoder's encoder, its checksum, and an AFW evaluation
    installed = out / "pretrained" / "default.safetensors"
    full = read_model_file(installed)
    assert "ae_encoder" in full.nets
    assert (out / "pretrained" / "default.sha256").read_text().split()[0] == sha256(installed)
    summary = json.loads((out / "install" / "summary.json").read_text())
    assert summary["installed"] and summary["new"]["count"] == 6


def test_face_parts_travel_in_separate_calls_and_are_all_unpacked(tmp_path: Path) -> None:
    """The transfer design: prepared faces packed into parts under a size limit; a first call
    carries and unpacks some parts, the training call the rest; the data on the machine is whole."""
    sys.path.insert(0, str(ROOT / "tools" / "gpu"))
    import pack as packing
    import run_recipe

    src = tmp_path / "prepared"
    rng = np.random.default_rng(1)
    for name in ("celeba", "lfw"):
        for i in range(6):
            d = src / name / "faces" / f"id{i % 2}"
            d.mkdir(parents=True, exist_ok=True)
            ok, buf = cv2.imencode(".webp", blob_image(rng, 128))
            (d / f"p{i}_0.webp").write_bytes(buf.tobytes())
    full = tmp_path / "pack_full"
    full.mkdir()
    sizes = packing.pack_faces({"celeba": src / "celeba", "lfw": src / "lfw"}, full, part_bytes=6000)
    assert len(sizes) >= 2 and all(v < 6000 + 2000 for v in sizes.values())
    call1, call2 = tmp_path / "call1", tmp_path / "call2"
    call1.mkdir()
    call2.mkdir()
    parts = sorted(sizes)
    for p in parts[:1]:
        (call1 / p).write_bytes((full / p).read_bytes())
    for p in parts[1:]:
        (call2 / p).write_bytes((full / p).read_bytes())
    work = tmp_path / "work"
    log = run_recipe.Log(tmp_path / "log.txt")
    with pytest.raises(SystemExit, match="utk.zip is not on this machine"):
        run_recipe.unpack(call1, work, log)  # the first call: its part unpacked, no training data yet
    shared = fake_shared(tmp_path / "shared")
    packing.pack(shared, call2, limit=4)
    data, _ = run_recipe.unpack(call2, work, log)
    got = sorted(str(p.relative_to(data)) for p in (data / "faces").rglob("*.webp"))
    assert len(got) == 12 and {Path(g).parts[1] for g in got} == {"celeba", "lfw"}
    assert "2 lfw faces" not in (tmp_path / "log.txt").read_text() and "6 lfw faces" in (tmp_path / "log.txt").read_text()
