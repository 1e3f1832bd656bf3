import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from factories import tiny_cfg

from fabrec.checkpoint import load_checkpoint
from fabrec.config import AELossConfig, AEScheduleConfig
from fabrec.errors import FabrecError
from fabrec.losses import ae_terms_on, mix_ae_losses
from fabrec.train_autoencoder import (
    ae_step,
    build_networks,
    build_optimizers,
    train_autoencoder,
)


def test_every_trainable_parameter_of_stage_one_gets_a_gradient(face_folder: Path) -> None:
    cfg = tiny_cfg(face_folder)
    torch.manual_seed(0)
    nets = build_networks(cfg.model)
    opts = build_optimizers(nets, cfg)
    x = torch.randn(4, 3, 64, 64) * 0.3
    logs = ae_step(nets, dict(nets.items()), opts, x, 0, cfg, epoch=1)
    assert set(logs) == {"rec", "cs", "enc", "adv", "dz", "dx"}
    for name, net in nets.items():
        for pname, p in net.named_parameters():
            assert p.requires_grad, f"{name}.{pname} left frozen"
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}.{pname} got no gradient"


def test_update_frequencies(face_folder: Path) -> None:
    cfg = tiny_cfg(face_folder)
    nets = build_networks(cfg.model)
    opts = build_optimizers(nets, cfg)
    x = torch.randn(4, 3, 64, 64) * 0.3
    seen = [set(ae_step(nets, dict(nets.items()), opts, x, it, cfg, 1)) for it in range(4)]
    assert ["dz" in s for s in seen] == [True, False, False, False]
    assert ["enc" in s for s in seen] == [True, False, True, False]
    assert ["dx" in s for s in seen] == [True, False, True, False]
    # curriculum epoch 1: only L_rec and L_enc
    with_curriculum = replace(cfg, schedule=AEScheduleConfig(curriculum=True))
    first = ae_step(nets, dict(nets.items()), opts, x, 0, with_curriculum, epoch=1)
    assert set(first) == {"rec", "enc", "dz"}


def test_nan_input_stops_with_a_named_step(face_folder: Path) -> None:
    cfg = tiny_cfg(face_folder)
    nets = build_networks(cfg.model)
    opts = build_optimizers(nets, cfg)
    before = {k: v.clone() for k, v in nets.encoder.state_dict().items()}
    x = torch.full((4, 3, 64, 64), float("nan"))
    with pytest.raises(FabrecError, match="step 7: loss is nan"):
        ae_step(nets, dict(nets.items()), opts, x, 7, cfg, 1)
    for k, v in nets.encoder.state_dict().items():
        torch.testing.assert_close(v, before[k], equal_nan=True)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    st = load_checkpoint(path)
    return {f"{n}.{k}": v for n, sd in st["nets"].items() for k, v in sd.items()}


def test_resume_gives_the_same_weights_as_one_run(face_folder: Path, tmp_path: Path) -> None:
    cfg4 = tiny_cfg(face_folder, max_steps=6)
    train_autoencoder(cfg4, tmp_path / "one", device="cpu", progress=False)
    cfg2 = tiny_cfg(face_folder, max_steps=3)
    train_autoencoder(cfg2, tmp_path / "two", device="cpu", progress=False)
    res = train_autoencoder(cfg4, tmp_path / "two", device="cpu", resume=True, progress=False)
    assert res.step == 6
    a, b = _weights(tmp_path / "one" / "last.pt"), _weights(tmp_path / "two" / "last.pt")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    st1, st2 = load_checkpoint(tmp_path / "one" / "last.pt"), load_checkpoint(tmp_path / "two" / "last.pt")
    torch.testing.assert_close(st1["optim"]["encoder"]["state"][0]["exp_avg"], st2["optim"]["encoder"]["state"][0]["exp_avg"])
    lines = [json.loads(x) for x in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in lines if "rec" in r]
    assert steps == sorted(set(steps)) == list(range(1, 7))


def test_run_folder_contents_and_epoch_validation(face_folder: Path, tmp_path: Path) -> None:
    cfg = tiny_cfg(face_folder, max_steps=0, epochs=2)
    res = train_autoencoder(cfg, tmp_path / "run", device="cpu", progress=False)
    out = tmp_path / "run"
    assert (out / "config.yaml").exists() and (out / "last.pt").exists()
    assert (out / "grids" / "recon_e001.png").exists() and (out / "grids" / "samples_e002.png").exists()
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert all("step" in r for r in recs)
    val = [r for r in recs if "val_l1" in r]
    assert [r["epoch"] for r in val] == [1, 2]
    assert all("val_ssim" in r and r["skipped"] == 0 for r in val)
    assert res.epoch == 2 and load_checkpoint(out / "last.pt")["epoch"] == 2


def test_resume_refuses_a_checkpoint_of_another_size(face_folder: Path, tmp_path: Path) -> None:
    train_autoencoder(tiny_cfg(face_folder, max_steps=1), tmp_path / "r", device="cpu", progress=False)
    other = tiny_cfg(face_folder, max_steps=2)
    other = replace(other, model=replace(other.model, image_size=128))
    with pytest.raises(FabrecError, match="--init-from"):
        train_autoencoder(other, tmp_path / "r", device="cpu", resume=True, progress=False)


def test_ddp_two_cpu_processes_run_two_steps(face_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
        "-m", "fabrec", "train-ae", "--data", str(face_folder), "--out", str(out), "--image-size", "64",
        "--width", "0.125", "--batch-size", "4", "--max-steps", "2", "--device", "cpu", "--workers", "0",
        "--no-progress", "--set", "schedule.curriculum=false", "--set", "log_every=1",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    st = load_checkpoint(out / "last.pt")
    assert st["step"] == 2
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs if "rec" in r] == [1, 2]  # rank 0 alone writes


@pytest.mark.parametrize("workers,group", [(0, False), (1, True)])
def test_sigterm_saves_a_checkpoint_and_resume_continues(face_folder: Path, tmp_path: Path, workers: int, group: bool) -> None:
    """SIGTERM to the process, or to its whole process group (data workers included)."""
    import signal
    import time

    out = tmp_path / "sig"
    cmd = [sys.executable, "-m", "fabrec", "train-ae", "--data", str(face_folder), "--out", str(out),
           "--image-size", "64", "--width", "0.125", "--batch-size", "4", "--max-steps", "100000",
           "--device", "cpu", "--workers", str(workers), "--no-progress", "--set", "checkpoint_every=0",
           "--set", "log_every=1"]
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=group)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):
        time.sleep(0.2)
    if group:
        os.killpg(p.pid, signal.SIGTERM)
    else:
        p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "checkpoint saved" in err and "Traceback" not in err
    st = load_checkpoint(out / "last.pt")
    assert st["step"] >= 2
    recs = [json.loads(x) for x in metrics.read_text().splitlines()]
    assert max(r["step"] for r in recs) == st["step"]


def test_nan_policy_skip_keeps_training(face_folder: Path, tmp_path: Path, monkeypatch) -> None:
    import fabrec.train_autoencoder as ta

    real = ta.ae_step
    calls = {"n": 0}

    def flaky(nets, wrapped, opts, x, it, *a, **k):
        calls["n"] += 1
        if it == 1:
            x = x * float("nan")
        return real(nets, wrapped, opts, x, it, *a, **k)

    monkeypatch.setattr(ta, "ae_step", flaky)
    cfg = tiny_cfg(face_folder, max_steps=3)
    with pytest.raises(FabrecError, match="step 1: loss is nan"):
        train_autoencoder(cfg, tmp_path / "stop", device="cpu", progress=False)
    res = train_autoencoder(replace(cfg, on_nonfinite="skip"), tmp_path / "skip", device="cpu", progress=False)
    assert res.step == 3
    for v in _weights(tmp_path / "skip" / "last.pt").values():
        assert torch.isfinite(v.float()).all()
    recs = [json.loads(x) for x in (tmp_path / "skip" / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("skipped_nonfinite") for r in recs)


def test_loss_terms_follow_the_curriculum_and_weights() -> None:
    loss, sched = AELossConfig(), AEScheduleConfig()
    assert ae_terms_on(0, 1, loss, sched) == ("rec", "enc")
    assert ae_terms_on(1, 1, loss, sched) == ("rec",)
    assert ae_terms_on(0, 2, loss, sched) == ("rec", "enc", "adv")
    assert ae_terms_on(0, 3, loss, sched) == ("rec", "cs", "enc", "adv")
    assert ae_terms_on(1, 1, loss, replace(sched, curriculum=False)) == ("rec", "cs", "adv")
    assert ae_terms_on(0, 9, replace(loss, w_cs=0.0, w_adv=0.0), sched) == ("rec", "enc")


def test_loss_mix_is_the_weighted_sum() -> None:
    loss = AELossConfig(w_rec=0.5, w_cs=30.0, w_adv=1.0, w_enc=2.0)
    t = {"rec": torch.tensor(4.0), "cs": torch.tensor(0.1), "enc": torch.tensor(0.7), "adv": torch.tensor(3.0)}
    assert mix_ae_losses(t, loss).item() == pytest.approx(0.5 * 4 + 30 * 0.1 + 2 * 0.7 + 3.0)
    assert mix_ae_losses({"rec": torch.tensor(4.0)}, loss).item() == 2.0
    with pytest.raises(ValueError):
        mix_ae_losses({"cs": torch.tensor(1.0)}, loss)
    with pytest.raises(ValueError):
        mix_ae_losses({"rec": torch.tensor(1.0), "perceptual": torch.tensor(1.0)}, loss)
