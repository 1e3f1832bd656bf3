"""Stages 2-3: train interleaved transfer layers (and optionally finetune the encoder).

Encoder and generator come from an autoencoder checkpoint and stay frozen, BatchNorm
statistics included (both always run in eval mode). Stage 2 trains the ITLs and the heatmap
layer (Adam lr 1e-3); with ``finetune_encoder`` a stage 3 follows that also trains the
encoder's weights (ITL lr 1e-4, encoder lr 2e-5). Validation uses a held-out part of the
training split, never a test split. Runs resume exactly from ``RUN_DIR/last.pt``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from fabrec.checkpoint import load_checkpoint, save_checkpoint
from fabrec.config import AETrainConfig, LMTrainConfig, dump_yaml, from_dict, to_dict
from fabrec.datasets.faces import is_validation
from fabrec.datasets.landmarks import (
    LandmarkDataset,
    LandmarkSample,
    choose_training,
    collate_landmarks,
    read_dataset,
)
from fabrec.errors import FabrecError, NonFiniteLoss
from fabrec.heatmaps import DECODERS, heatmap_to_crop
from fabrec.io import write_text_atomic
from fabrec.losses import heatmap_loss
from fabrec.metrics import nme
from fabrec.model import FabRec
from fabrec.schemes import get_scheme
from fabrec.signals import TrainingInterrupted, graceful_stop, ignore_stop_signals
from fabrec.train_autoencoder import _append_jsonl, _truncate_metrics, resolve_device


def parse_count(text: str) -> int | float:
    """``all`` -> 1.0, ``20%`` -> 0.2, ``50`` -> 50 (images)."""
    t = str(text).strip().lower()
    try:
        if t in ("all", "100%"):
            return 1.0
        if t.endswith("%"):
            v = float(t[:-1]) / 100.0
            if not 0 < v <= 1:
                raise ValueError
            return v
        n = int(t)
        if n < 1:
            raise ValueError
        return n
    except ValueError:
        raise FabrecError(f"--train-count must be a number of images, a percentage or 'all', got '{text}'") from None


class BatchSampler(Sampler[list[int]]):
    """Seeded permutation per epoch cut into batches (last one may be smaller); can start at
    any batch of the epoch."""

    def __init__(self, n: int, batch: int, seed: int) -> None:
        self.n, self.batch, self.seed = n, batch, seed
        self.steps = math.ceil(n / batch)
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def __iter__(self) -> Iterator[list[int]]:
        perm = np.random.default_rng([self.seed, 104729, self.epoch]).permutation(self.n).tolist()
        for b in range(self.start, self.steps):
            yield perm[b * self.batch : (b + 1) * self.batch]

    def __len__(self) -> int:
        return self.steps - self.start


@dataclass
class LandmarkRun:
    """What a landmark run ended with."""

    step: int
    best_nme: float
    last_nme: float
    out_dir: Path
    train_count: int
    val_count: int
    seconds: float


def split_pool(samples: list[LandmarkSample], permille: int, val_max: int) -> tuple[list[LandmarkSample], list[LandmarkSample]]:
    """(pool, validation) of a training split by the stable hash rule on sample keys."""
    val = sorted((s for s in samples if is_validation(s.key, permille)), key=lambda s: s.key)[:val_max]
    keys = {s.key for s in val}
    return [s for s in samples if s.key not in keys], val


def set_trainable(net: FabRec, stage: int) -> list[torch.nn.Parameter]:
    """Freeze per stage and return the parameters that train.

    Stage 2: ITL layers (those selected) + heatmap layer. Stage 3: also every encoder weight.
    The generator never trains; encoder and generator always run in eval mode, so BatchNorm
    running statistics never move.
    """
    assert net.itl is not None
    net.generator.requires_grad_(False)
    net.encoder.requires_grad_(stage == 3)
    for i, layer in enumerate(net.itl.layers, start=1):
        layer.weight.requires_grad_(i in net.itl.active)
    net.itl.heatmap.weight.requires_grad_(True)
    net.encoder.eval()
    net.generator.eval()
    net.itl.train()
    return [p for p in net.parameters() if p.requires_grad]


def make_optimizer(net: FabRec, cfg: LMTrainConfig, stage: int) -> torch.optim.Adam:
    """Adam for the stage: ITLs at lr (stage 2) or finetune_lr_itl + encoder (stage 3)."""
    set_trainable(net, stage)
    assert net.itl is not None
    itl_params = [p for p in net.itl.parameters() if p.requires_grad]
    betas = (cfg.beta1, cfg.beta2)
    if stage == 2:
        return torch.optim.Adam(itl_params, lr=cfg.lr, betas=betas)
    return torch.optim.Adam(
        [{"params": itl_params, "lr": cfg.finetune_lr_itl},
         {"params": list(net.encoder.parameters()), "lr": cfg.finetune_lr_encoder}],
        betas=(0.9, cfg.beta2),
    )


def lm_step(net: FabRec, opt: torch.optim.Optimizer, batch: dict[str, torch.Tensor], cfg: LMTrainConfig,
            step: int = 0) -> float:
    """One optimisation step on a batch (``image (N,3,S,S)``, ``heatmaps (N,K,H,H)``)."""
    x, target = batch["image"], batch["heatmaps"]
    assert net.itl is not None
    pred = net.itl(net.generator, net.encoder(x))  # (N, K, H, H)
    loss = heatmap_loss(pred, target, cfg.loss_scale)
    if not torch.isfinite(loss):
        raise NonFiniteLoss(f"step {step}: landmark loss is {loss.item()}; last good checkpoint kept")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


@torch.no_grad()
def predict_dataset(
    net: FabRec, ds: LandmarkDataset, decoder: str, batch: int, dev: torch.device
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """Points in original pixels ``(M, K, 2)``, confidence ``(M, K)``, normalisers ``(M,)`` and
    the dataset indices of the ``M`` readable samples."""
    was = net.itl.training if net.itl is not None else False
    net.eval()
    pts_all, conf_all, norms, idx = [], [], [], []
    loader = DataLoader(ds, batch_size=batch, shuffle=False, collate_fn=collate_landmarks)
    for b, _ in loader:
        if b is None:
            continue
        x = b["image"].to(dev)
        if dev.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        hm = net.itl(net.generator, net.encoder(x)).float().cpu()  # type: ignore[union-attr]
        p, c = DECODERS[decoder](hm)
        p = heatmap_to_crop(p, ds.image_size, hm.shape[-1]).double().numpy()
        inv = np.linalg.inv(b["matrix"].double().numpy())  # crop -> original
        p = np.einsum("nij,nkj->nki", inv[:, :2, :2], p) + inv[:, None, :2, 2]
        pts_all.append(p)
        conf_all.append(c.numpy())
        norms.append(b["norm"].double().numpy())
        idx += b["index"].tolist()
    if net.itl is not None:
        net.itl.train(was)
    if not pts_all:
        return np.zeros((0, 0, 2)), np.zeros((0, 0)), np.zeros(0), []
    return np.concatenate(pts_all), np.concatenate(conf_all), np.concatenate(norms), idx


def validation_nme(net: FabRec, ds: LandmarkDataset, decoder: str, batch: int, dev: torch.device) -> float:
    """Mean NME (%) over the validation crops."""
    pts, _, norms, idx = predict_dataset(net, ds, decoder, batch, dev)
    if not idx:
        return float("nan")
    gt = np.stack([ds.samples[i].points for i in idx])
    return float(nme(pts, gt, norms).mean())


def train_landmarks(
    cfg: LMTrainConfig,
    autoencoder: str | Path,
    out_dir: str | Path,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> LandmarkRun:
    """Train stages 2 (and 3) and return the outcome; writes last.pt, best.pt, metrics.jsonl."""
    say = log or (lambda s: None)
    t0 = time.time()
    dev = resolve_device(device)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FabrecError(f"{out}: cannot create run folder ({e.strerror})") from None
    last, best = out / "last.pt", out / "best.pt"
    metrics_path = out / "metrics.jsonl"
    if cfg.decoder not in DECODERS:
        raise FabrecError(f"decoder must be one of {', '.join(DECODERS)}")
    scheme = get_scheme(cfg.scheme)

    state = load_checkpoint(last) if (resume and last.exists()) else None
    ae_state = load_checkpoint(autoencoder)
    if ae_state.get("kind") == "autoencoder":
        mc = from_dict(AETrainConfig, ae_state["config"]).model
        enc_sd, gen_sd = ae_state["nets"]["encoder"], ae_state["nets"]["generator"]
    elif ae_state.get("kind") == "landmarks":  # continue from a landmark model's E and G
        from fabrec.config import ModelConfig

        mc = from_dict(ModelConfig, ae_state["model"])
        enc_sd, gen_sd = ae_state["nets"]["encoder"], ae_state["nets"]["generator"]
    else:
        raise FabrecError(f"{autoencoder}: not an autoencoder checkpoint")
    mc = replace(mc, num_landmarks=scheme.num_points)

    # ---- data
    res = read_dataset(cfg.dataset, cfg.root, cfg.split, scheme)
    for p in res.problems:
        say(f"skipped: {p}")
    pool, val = split_pool(res.samples, cfg.val_permille, cfg.val_max)
    train = choose_training(pool, parse_count(cfg.train_count), cfg.sample, cfg.seed)
    hm_size = min(mc.image_size, 128)
    framing = (mc.crop_top, mc.crop_bottom)
    train_ds = LandmarkDataset(train, scheme, mc.image_size, hm_size, framing, cfg.augment, cfg.sigma, cfg.seed)
    val_ds = LandmarkDataset(val, scheme, mc.image_size, hm_size, framing, None, cfg.sigma)
    bs = min(cfg.batch_size, len(train))
    sampler = BatchSampler(len(train), bs, cfg.seed)
    loader = DataLoader(train_ds, batch_sampler=sampler, num_workers=cfg.num_workers,
                        collate_fn=collate_landmarks, generator=torch.Generator().manual_seed(cfg.seed),
                        worker_init_fn=ignore_stop_signals)
    spe = sampler.steps
    steps2 = cfg.max_steps if cfg.max_steps > 0 else max(cfg.epochs, 1) * spe if cfg.epochs else 0
    if steps2 <= 0:
        raise FabrecError("give --max-steps or --epochs for the landmark stage")
    steps3 = (cfg.finetune_steps or steps2) if cfg.finetune_encoder else 0
    total = steps2 + steps3

    torch.manual_seed(cfg.seed)
    try:
        net = FabRec(config=mc, itl=cfg.itl or None)
    except ValueError as e:
        raise FabrecError(f"--itl: {e}") from None
    assert net.itl is not None
    active = list(net.itl.active)
    net.encoder.load_state_dict(enc_sd)
    net.generator.load_state_dict(gen_sd)
    if ae_state.get("kind") == "landmarks" and list(ae_state["itl"]) == active and \
            ae_state["scheme"]["points"] == list(scheme.names):
        net.itl.load_state_dict(ae_state["nets"]["itl"])  # type: ignore[union-attr]
    mf = torch.channels_last if dev.type == "cpu" else torch.contiguous_format  # ~1.7x on CPU
    net.to(dev, memory_format=mf)
    step, best_nme, last_nme = 0, float("inf"), float("nan")
    stage = 2
    opt = make_optimizer(net, cfg, stage)
    if state is not None:
        if state.get("kind") != "landmarks" or from_dict(type(mc), state["model"]) != mc:
            raise FabrecError(f"{last}: run folder holds a different model; use another --out")
        for name in ("encoder", "generator", "itl"):
            getattr(net, name).load_state_dict(state["nets"][name])
        step = int(state["step"])
        stage = 3 if step >= steps2 and steps3 else 2
        opt = make_optimizer(net, cfg, stage)
        if int(state.get("stage", 2)) == stage:
            opt.load_state_dict(state["optim"])
        best_nme = float(state.get("best_nme", float("inf")))
        torch.set_rng_state(state["rng"]["torch"])

    write_text_atomic(out / "config.yaml", dump_yaml(cfg))
    _truncate_metrics(metrics_path, step)

    def payload() -> dict[str, Any]:
        return {
            "kind": "landmarks", "model": to_dict(mc), "scheme": scheme.to_dict(), "itl": active,
            "decoder": cfg.decoder, "config": to_dict(cfg), "autoencoder": str(autoencoder),
            "nets": {n: getattr(net, n).state_dict() for n in ("encoder", "generator", "itl")},
            "optim": opt.state_dict(), "stage": stage, "step": step, "best_nme": best_nme,
            "rng": {"torch": torch.get_rng_state()},
            "train_keys": [s.key for s in train],
        }

    say(f"train-landmarks: {len(train)} training images, {len(val)} validation images, "
        f"{steps2} ITL steps" + (f" + {steps3} finetune steps" if steps3 else ""))
    bar = tqdm(total=total, initial=step, disable=not progress, unit="step", desc="train-landmarks", dynamic_ncols=True)
    skipped = 0
    with graceful_stop() as stop:
        while step < total:
            if stage == 2 and step >= steps2:
                stage = 3
                opt = make_optimizer(net, cfg, stage)
                say("train-landmarks: stage 3, encoder finetuning")
            epoch, start = divmod(step, spe)
            train_ds.set_epoch(epoch)
            sampler.set_epoch(epoch, start)
            set_trainable(net, stage)
            for batch, sk in loader:
                skipped += sk
                if batch is not None:
                    batch = {k: v.to(dev) for k, v in batch.items()}
                    batch["image"] = batch["image"].contiguous(memory_format=mf)
                    try:
                        loss = lm_step(net, opt, batch, cfg, step)
                    except NonFiniteLoss as e:
                        if cfg.on_nonfinite != "skip":
                            raise
                        say(f"skipped a batch: {e}")
                        loss = float("nan")
                step += 1
                bar.update(1)
                if step % cfg.log_every == 0 and batch is not None:
                    bar.set_postfix(loss=f"{loss:.4g}", stage=stage)
                    _append_jsonl(metrics_path, {"step": step, "stage": stage, "loss": loss})
                if step % cfg.val_every == 0 or step == total:
                    last_nme = validation_nme(net, val_ds, cfg.decoder, 32, dev)
                    set_trainable(net, stage)
                    _append_jsonl(metrics_path, {"step": step, "stage": stage, "val_nme": last_nme, "skipped": skipped})
                    bar.set_postfix(val_nme=f"{last_nme:.2f}", stage=stage)
                    if last_nme < best_nme:
                        best_nme = last_nme
                        save_checkpoint(best, payload())
                if step % cfg.checkpoint_every == 0 or step == total or stop.requested:
                    save_checkpoint(last, payload())
                if stop.requested:
                    bar.close()
                    raise TrainingInterrupted(step, str(last))
                if step >= total or (stage == 2 and step >= steps2) or step % spe == 0:
                    break
    bar.close()
    if not best.exists():
        save_checkpoint(best, payload())
    if skipped:
        say(f"train-landmarks: {skipped} unreadable image(s) skipped")
    return LandmarkRun(step, best_nme, last_nme, out, len(train), len(val), time.time() - t0)
