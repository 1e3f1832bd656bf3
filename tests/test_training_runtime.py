"""The shared training machinery: batch order, time budgets, workers across epochs, and
models given to train-landmarks as published weights."""

import itertools
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from factories import lm_cfg, make_300w, tiny_cfg

import fabrec.runtime as runtime
from fabrec.batch_order import StepBatches
from fabrec.checkpoint import load_checkpoint
from fabrec.cli import main
from fabrec.config import LMTrainConfig
from fabrec.model_file import export_weights, read_autoencoder, read_model_file
from fabrec.train_autoencoder import train_autoencoder
from fabrec.train_landmarks import default_steps, train_landmarks


def test_step_batches_keep_the_per_epoch_order_and_resume_anywhere() -> None:
    s = StepBatches(10, 3, seed=5, salt=7919, drop_last=True)
    assert s.steps_per_epoch == 3
    s.set_range(0, 9)
    run = list(s)
    for e in range(3):  # each epoch: the first 9 of its own seeded permutation
        perm = np.random.default_rng([5, 7919, e]).permutation(10)[:9]
        assert [i for _, i in itertools.chain(*run[3 * e : 3 * e + 3])] == perm.tolist()
        assert {ep for b in run[3 * e : 3 * e + 3] for ep, _ in b} == {e}
    s.set_range(4, 9)  # a resumed run sees exactly the rest
    assert list(s) == run[4:] and [s.batch_at(k) for k in range(9)] == run
    # sharded: the two ranks split every step's batches without overlap
    r0, r1 = (StepBatches(10, 2, 1, 3, True, rank=r, world=2) for r in (0, 1))
    for k in range(5):
        a, b = r0.batch_at(k), r1.batch_at(k)
        assert len(a) == len(b) == 2 and not {i for _, i in a} & {i for _, i in b}
    last = StepBatches(10, 4, 0, 1, drop_last=False)
    assert [len(last.batch_at(k)) for k in range(3)] == [4, 4, 2]


class FakeClock:
    """time.monotonic that advances one second per call."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def test_train_ae_time_limit_ends_with_a_checkpoint_and_resumes(face_folder: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(runtime.time, "monotonic", FakeClock())
    cfg = tiny_cfg(face_folder, max_steps=50)
    r = train_autoencoder(cfg, tmp_path / "ae", device="cpu", progress=False, time_limit=4 / 60)
    assert r.stopped == "time" and 0 < r.step < 50
    assert load_checkpoint(tmp_path / "ae" / "last.pt")["step"] == r.step
    r2 = train_autoencoder(replace(cfg, max_steps=r.step + 2), tmp_path / "ae", device="cpu", resume=True,
                           progress=False)
    assert r2.stopped == "steps" and r2.step == r.step + 2


def test_train_ae_workers_living_across_epochs_give_the_same_weights(face_folder: Path, tmp_path: Path) -> None:
    """One loader iterator for the whole run (workers across epochs, with a resume in the
    middle of an epoch) trains exactly like the in-process loader."""
    cfg = tiny_cfg(face_folder, max_steps=0, epochs=2, val_every_epochs=2)
    spe = 20 // cfg.batch_size  # 24 faces, 15% validation -> about 20 training faces
    train_autoencoder(cfg, tmp_path / "a", device="cpu", progress=False)
    w1 = replace(cfg, data=replace(cfg.data, num_workers=1))
    train_autoencoder(replace(w1, epochs=0, max_steps=spe + 1), tmp_path / "b", device="cpu", progress=False)
    train_autoencoder(w1, tmp_path / "b", device="cpu", resume=True, progress=False)
    a, b = (load_checkpoint(tmp_path / d / "last.pt") for d in ("a", "b"))
    assert a["step"] == b["step"] > spe + 1
    for net in ("encoder", "generator", "dx"):
        for k, v in a["nets"][net].items():
            torch.testing.assert_close(v, b["nets"][net][k], rtol=0, atol=0, msg=k)


@pytest.fixture
def tiny_ae(face_folder: Path, tmp_path: Path) -> Path:
    train_autoencoder(tiny_cfg(face_folder, max_steps=1), tmp_path / "ae", device="cpu", progress=False)
    return tmp_path / "ae" / "last.pt"


def test_train_landmarks_time_limit_shares_the_budget_between_stages(tiny_ae: Path, tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "300w"
    make_300w(data)
    monkeypatch.setattr(runtime.time, "monotonic", FakeClock())
    cfg = lm_cfg(data, max_steps=0, finetune_encoder=True, val_every=1000, checkpoint_every=1000)
    r = train_landmarks(cfg, tiny_ae, tmp_path / "lm", device="cpu", progress=False, time_limit=20 / 60)
    assert r.stopped == "time" and r.steps_itl >= 1 and r.steps_finetune >= 1
    assert r.steps_itl < r.steps_finetune  # 30% of the budget for the ITL stage
    st = load_checkpoint(tmp_path / "lm" / "last.pt")
    assert st["stage"] == 3 and st["stage3_start"] == r.steps_itl and st["step"] == r.step
    assert "ae_encoder" in st["nets"]  # the autoencoder's encoder travels with a finetuned model


def test_default_steps_follow_the_train_count() -> None:
    assert default_steps(10, 10) == 500 and default_steps(810, 16) == 2550 and default_steps(5000, 16) == 3000


def test_autoencoder_weights_export_and_train_landmarks_from_them(tiny_ae: Path, tmp_path: Path, capsys) -> None:
    data = tmp_path / "300w"
    make_300w(data)
    st = tmp_path / "ae.safetensors"
    assert main(["export", "--format", "safetensors", "--model", str(tiny_ae), "--out", str(st)]) == 0
    assert read_model_file(st).kind == "autoencoder"
    a, b = read_autoencoder(tiny_ae), read_autoencoder(st)
    for net in ("encoder", "generator"):
        for k, v in a.nets[net].items():
            torch.testing.assert_close(b.nets[net][k], v.half().float() if v.is_floating_point() else v)
    out = tmp_path / "lm"
    assert main(["train-landmarks", "--autoencoder", str(st), "--dataset", "300w", "--root", str(data),
                 "--split", "train", "--max-steps", "2", "--batch-size", "2", "--out", str(out),
                 "--workers", "0", "--no-progress", "--framing", "landmarks"]) == 0
    lm = load_checkpoint(out / "best.pt")
    for k, v in b.nets["generator"].items():
        torch.testing.assert_close(lm["nets"]["generator"][k], v)
    # a landmark model as --autoencoder gives back its autoencoder's encoder
    ft = tmp_path / "ft"
    assert main(["train-landmarks", "--autoencoder", str(st), "--init-from", str(out / "best.pt"),
                 "--dataset", "300w", "--root", str(data), "--split", "train", "--max-steps", "1",
                 "--finetune-encoder", "--finetune-steps", "2", "--batch-size", "2", "--out", str(ft),
                 "--workers", "0", "--no-progress", "--framing", "landmarks"]) == 0
    pub = tmp_path / "ft.safetensors"
    export_weights(ft / "last.pt", pub)
    back = read_autoencoder(pub)
    for k, v in b.nets["encoder"].items():
        torch.testing.assert_close(back.nets["encoder"][k], v)
    finetuned = read_model_file(pub).nets["encoder"]
    assert any(not torch.equal(finetuned[k], v) for k, v in b.nets["encoder"].items() if v.is_floating_point())


def test_train_landmarks_from_the_bundled_default(tmp_path: Path, capsys, monkeypatch) -> None:
    """Few-shot from the bundled weights: no step count given, a new 5-point scheme."""
    import fabrec.train_landmarks as tl

    data = tmp_path / "300w"
    make_300w(data)
    scheme = tmp_path / "five.yaml"
    scheme.write_text("points: 5\nnorm_points: [0, 1]\n")
    five = tmp_path / "five"
    five.mkdir()
    for i, img in enumerate(sorted(data.rglob("*.jpg"))[:8]):
        (five / f"f{i}.jpg").write_bytes(img.read_bytes())
        pts = np.loadtxt(img.with_suffix(".pts"), skiprows=3, max_rows=68)
        (five / f"f{i}.json").write_text(json.dumps({"points": (pts[[36, 45, 30, 48, 54]] - 1).tolist()}))
    monkeypatch.setattr(tl, "default_steps", lambda n, b: 2)
    out = tmp_path / "run"
    assert main(["train-landmarks", "--autoencoder", "default", "--dataset", "folder", "--root", str(five),
                 "--scheme", str(scheme), "--train-count", "3", "--out", str(out), "--workers", "0",
                 "--set", "val_permille=300", "--no-progress", "--framing", "landmarks"]) == 0
    err = capsys.readouterr().err
    assert "2 ITL steps for 3 training images" in err
    assert "--init-from auto" in err and "combinations of the source model's 68 channels" in err
    st = load_checkpoint(out / "last.pt")
    assert len(st["scheme"]["points"]) == 5 and st["step"] == 2
    assert st["transfer"] and st["optim"]["param_groups"][0]["lr"] == LMTrainConfig.transfer_lr
    default = read_autoencoder("default")
    for k, v in default.nets["generator"].items():
        torch.testing.assert_close(st["nets"]["generator"][k], v)


class _Counting:
    """A trainer that records what the loop asked of it."""

    skip_logs = {"loss": float("nan")}

    def __init__(self, steps: int, bad: set[int] = frozenset()) -> None:
        self.steps, self.bad, self.calls = steps, bad, []

    def train_step(self, batch, skipped, step):
        if step in self.bad:
            from fabrec.errors import NonFiniteLoss

            raise NonFiniteLoss(f"step {step}: loss is nan")
        return {"loss": float(step)}

    def log_record(self, step, logs):
        return {"step": step, **logs}

    def validation_due(self, step):
        return step % 3 == 0

    def validate(self, step):
        self.calls.append(("validate", step))
        return {"step": step, "val": 1.0}

    def phase_over(self, step, deadline):
        return step >= self.steps

    def next_phase(self, step):
        return False

    def save(self, step):
        self.calls.append(("save", step))


def test_the_loop_owns_cadence_skips_and_stops(tmp_path: Path) -> None:
    from tqdm import tqdm

    from fabrec.errors import NonFiniteLoss
    from fabrec.runtime import Deadline
    from fabrec.training_loop import Cadence, run_loop

    batches = [(None, 0)] * 10
    t = _Counting(7, bad={4})
    end = run_loop(t, batches, 0, Cadence(checkpoint_every=5, on_nonfinite="skip"), Deadline(None),
                   tmp_path / "m.jsonl", tqdm(disable=True), tmp_path / "last.pt")
    assert end.step == 7 and end.stopped == "steps"
    # validation every 3 steps and at the end; a checkpoint every 5 steps and at the end
    assert t.calls == [("validate", 3), ("save", 5), ("validate", 6), ("validate", 7), ("save", 7)]
    lines = [json.loads(x) for x in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "loss" in x] == list(range(1, 8))
    assert math.isnan(next(x["loss"] for x in lines if x["step"] == 5 and "loss" in x))  # the skipped batch
    with pytest.raises(NonFiniteLoss):  # the default policy stops
        run_loop(_Counting(7, bad={2}), batches, 0, Cadence(), Deadline(None), None, tqdm(disable=True),
                 tmp_path / "last.pt")
    # a run that is already over does nothing
    t = _Counting(4)
    assert run_loop(t, batches, 4, Cadence(), Deadline(None), None, tqdm(disable=True), tmp_path / "x").step == 4
    assert t.calls == []
