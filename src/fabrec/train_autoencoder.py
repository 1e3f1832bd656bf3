"""Stage 1: train the adversarial autoencoder (E, G, D_z, D_x) on unlabeled faces.

Single process, or DistributedDataParallel under ``torchrun`` (NCCL on CUDA, gloo on CPU,
rank 0 writes every file). Runs resume exactly from ``RUN_DIR/last.pt``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from tqdm import tqdm

from fabrec.checkpoint import load_checkpoint, load_matching, save_checkpoint
from fabrec.config import AETrainConfig, ModelConfig, dump_yaml, from_dict, to_dict
from fabrec.datasets.faces import FaceDataset, collate_skip, collect_faces, split_items
from fabrec.errors import FabrecError, NonFiniteLoss
from fabrec.hub import load_autoencoder_state
from fabrec.io import write_image_atomic, write_text_atomic
from fabrec.losses import cs_loss, gan_d_loss, gan_g_loss, l1_loss_255, ssim
from fabrec.nn import Encoder, Generator, ImageDiscriminator, LatentDiscriminator
from fabrec.normalization import batch_to_tensor, denormalize
from fabrec.runtime import (
    Deadline,
    append_jsonl,
    make_run_dir,
    memory_format,
    training_device,
    truncate_jsonl,
)
from fabrec.sampling import StepBatches, step_loader
from fabrec.signals import TrainingInterrupted, graceful_stop
from fabrec.visualize import grid, to_uint8

NETS = ("encoder", "generator", "dz", "dx")


@dataclass
class DistInfo:
    """Process-group facts: rank, world size, and whether this process writes files."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the ``torchrun`` process group if its environment is set; else single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


@dataclass
class Networks:
    """The four networks of the autoencoder stage."""

    encoder: nn.Module
    generator: nn.Module
    dz: nn.Module
    dx: nn.Module

    def items(self) -> list[tuple[str, nn.Module]]:
        return [(n, getattr(self, n)) for n in NETS]


def build_networks(m: ModelConfig) -> Networks:
    """Fresh E, G, D_z, D_x for a model config."""
    return Networks(
        Encoder(m.image_size, m.latent_dim, m.width),
        Generator(m.image_size, m.latent_dim, m.width),
        LatentDiscriminator(m.latent_dim),
        ImageDiscriminator(),
    )


def build_optimizers(nets: Networks, cfg: AETrainConfig) -> dict[str, torch.optim.Optimizer]:
    """Adam for each network; D_x at ``optim.lr_dx``."""
    o = cfg.optim
    betas = (o.beta1, o.beta2)
    return {
        name: torch.optim.Adam(net.parameters(), lr=o.lr_dx if name == "dx" else o.lr, betas=betas)
        for name, net in nets.items()
    }


@dataclass
class TrainResult:
    """What a run ended with."""

    step: int
    epoch: int
    out_dir: Path
    new_tensors: list[str] = field(default_factory=list)
    last_val: dict[str, float] = field(default_factory=dict)
    stopped: str = "steps"  # "steps" (planned end), "time" (--time-limit)
    seconds: float = 0.0
    side_seconds: float = 0.0  # validation, grids and checkpoints


def load_autoencoder_config(ckpt: dict[str, Any]) -> AETrainConfig:
    """The run config stored in a checkpoint."""
    return from_dict(AETrainConfig, ckpt["config"])


def train_autoencoder(
    cfg: AETrainConfig,
    out_dir: str | Path,
    device: str = "auto",
    resume: bool = False,
    init_from: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    time_limit: float | None = None,
) -> TrainResult:
    """Train stage 1 and return where it ended. See the module docstring.

    Args:
        cfg: the run's configuration (model, losses, schedule, optimiser, data).
        out_dir: run folder (created); holds config.yaml, last.pt, metrics.jsonl, grids/.
        device: ``auto``, ``cpu`` or ``cuda[:i]``.
        resume: continue from ``out_dir/last.pt`` if it exists (else start fresh).
        init_from: checkpoint or published weights whose matching tensors initialise a fresh
            run (128 -> 256 growth).
        progress: show a tqdm bar (rank 0).
        log: callback for human-readable notes (new tensors, skipped images).
        time_limit: minutes of wall clock for this call; the run then ends at a step boundary
            with a checkpoint (``TrainResult.stopped == "time"``).
    """
    say = log or (lambda s: None)
    deadline = Deadline(time_limit)
    dev = training_device(device)
    di = init_distributed(dev)
    if dev.type == "cuda" and di.world > 1:
        dev = torch.device("cuda", di.local_rank)
        torch.cuda.set_device(dev)
    out = Path(out_dir)
    if di.main:
        make_run_dir(out, "grids")
    last = out / "last.pt"
    metrics_path = out / "metrics.jsonl"

    state = _resume_state(last, cfg) if resume else None
    torch.manual_seed(cfg.seed)
    nets = build_networks(cfg.model)
    new_tensors: list[str] = []
    if state is None and init_from is not None:
        new_tensors = _init_from(nets, init_from)
        if new_tensors:
            say(f"--init-from: {len(new_tensors)} new tensors initialised fresh: " + ", ".join(new_tensors))
    mf = memory_format(dev)
    for _, net in nets.items():
        net.to(dev, memory_format=mf)
    opts = build_optimizers(nets, cfg)
    step = _restore(nets, opts, state, dev) if state is not None else 0
    loader, spe, total_steps, val_crops = _training_data(cfg, di, dev, step)

    wrapped: dict[str, nn.Module] = dict(nets.items())
    if di.world > 1:  # rank 0's initial weights are broadcast at construction
        ids = [dev.index] if dev.type == "cuda" else None
        wrapped = {n: DDP(m, device_ids=ids) for n, m in nets.items()}
    if di.main:
        write_text_atomic(out / "config.yaml", dump_yaml(cfg))
        truncate_jsonl(metrics_path, step)

    def save(epoch_done: int) -> None:
        if di.main:
            save_checkpoint(last, _checkpoint(cfg, nets, opts, step, epoch_done, dev))

    autocast = (
        (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if cfg.amp == "bf16" else contextlib.nullcontext
    )
    fixed_z = torch.randn(cfg.grid_size * 2, cfg.model.latent_dim, generator=torch.Generator().manual_seed(1234))
    S = cfg.schedule
    bar = tqdm(total=total_steps, initial=step, disable=not (progress and di.main), unit="step",
               dynamic_ncols=True, desc="train-ae")
    stopped = "steps"
    skipped_epoch = 0
    last_val: dict[str, float] = {}
    t_last, n_last, t_side = time.perf_counter(), 0, 0.0
    for _, net in nets.items():
        net.train()
    with graceful_stop() as stop:
        for x, skipped in loader:
            epoch = step // spe
            e1 = epoch + 1
            if step % spe == 0:
                skipped_epoch = 0
            skipped_epoch += skipped
            adv_on = (not S.curriculum) or e1 >= S.adv_from_epoch
            cs_on = (not S.curriculum) or e1 >= S.cs_from_epoch
            if x.numel() > 0:
                x = x.to(dev, non_blocking=True).contiguous(memory_format=mf)
                try:
                    logs = ae_step(nets, wrapped, opts, x, step, cfg, adv_on, cs_on, autocast)
                except NonFiniteLoss as e:
                    if cfg.on_nonfinite != "skip":
                        raise
                    say(f"skipped a batch: {e}")
                    logs = {"skipped_nonfinite": 1.0}
                n_last += x.shape[0] * di.world
            else:
                logs = {}
            step += 1
            bar.update(1)
            if logs and (step % cfg.log_every == 0 or step == total_steps):
                now = time.perf_counter()
                ips = n_last / max(now - t_last, 1e-9)
                t_last, n_last = now, 0
                bar.set_postfix({k: f"{v:.3g}" for k, v in logs.items()} | {"img/s": f"{ips:.1f}"})
                if di.main:
                    append_jsonl(metrics_path, {"step": step, "epoch": e1, **logs, "images_per_s": ips})
            t_side0 = time.perf_counter()
            saved = False
            epoch_end = step % spe == 0
            if epoch_end and di.world > 1:
                t = torch.tensor([skipped_epoch], device=dev)
                dist.all_reduce(t)
                skipped_epoch = int(t.item())
            out_of_time = _agree(deadline.passed(), dev, di)
            done = stop.requested or out_of_time or step >= total_steps
            if (epoch_end and e1 % max(cfg.val_every_epochs, 1) == 0) or (done and not stop.requested):
                if di.main and val_crops is not None:
                    last_val = validate(nets.encoder, nets.generator, val_crops, dev, cfg.batch_size)
                    write_grids(nets.encoder, nets.generator, val_crops, fixed_z, out / "grids", e1, cfg.grid_size, dev)
                    append_jsonl(metrics_path, {"step": step, "epoch": e1, **last_val, "skipped": skipped_epoch})
                    say(f"epoch {e1}: val L1 {last_val.get('val_l1', float('nan')):.2f}, "
                        f"SSIM {last_val.get('val_ssim', float('nan')):.3f}, skipped {skipped_epoch} unreadable image(s)")
                save(step // spe)
                saved = True
            elif cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                save(step // spe)
                saved = True
            if done and not saved:
                save(step // spe)
            t_side += time.perf_counter() - t_side0
            if done:
                stopped = "signal" if stop.requested else ("time" if out_of_time else "steps")
                break
            if epoch_end:  # keep validation out of the images/s figure
                t_last, n_last = time.perf_counter(), 0
    bar.close()
    if stopped == "signal":
        raise TrainingInterrupted(step, str(last))
    if di.world > 1:
        dist.barrier()
    if di.main:
        append_jsonl(metrics_path, {"step": step, "epoch": step // spe, "stopped": stopped,
                                    "seconds": deadline.elapsed(), "side_seconds": t_side})
    return TrainResult(step, step // spe, out, new_tensors, last_val, stopped, deadline.elapsed(), t_side)


SAMPLER_SALT = 7919  # keeps the batch order of runs made before the shared sampler


def _restore(nets: Networks, opts: dict[str, torch.optim.Optimizer], state: dict[str, Any], dev: torch.device) -> int:
    """Weights, optimiser and RNG state of a checkpoint; returns its step."""
    for name, net in nets.items():
        net.load_state_dict(state["nets"][name])
        opts[name].load_state_dict(state["optim"][name])
    torch.set_rng_state(state["rng"]["torch"])
    if dev.type == "cuda" and "cuda" in state["rng"]:
        torch.cuda.set_rng_state(state["rng"]["cuda"], dev)
    return int(state["step"])


def _training_data(
    cfg: AETrainConfig, di: DistInfo, dev: torch.device, step: int
) -> tuple[DataLoader, int, int, torch.Tensor | None]:
    """One loader for the whole run from ``step`` on (workers live across epochs), steps per
    epoch, total steps, and the validation crops (rank 0; read once)."""
    items = collect_faces(list(cfg.data.paths), list(cfg.data.boxes))
    train_items, val_items = split_items(items, cfg.data.val_permille, cfg.data.val_max)
    if len(train_items) < cfg.batch_size * di.world:
        raise FabrecError(
            f"only {len(train_items)} training images for a batch of {cfg.batch_size} x {di.world} "
            "process(es): lower --batch-size"
        )
    train_ds = FaceDataset(train_items, cfg.model.image_size, cfg.augment, cfg.seed)
    sampler = StepBatches(len(train_ds), cfg.batch_size, cfg.seed, SAMPLER_SALT, True, di.rank, di.world)
    spe = sampler.steps_per_epoch
    total_steps = cfg.max_steps if cfg.max_steps > 0 else cfg.epochs * spe
    sampler.set_range(step, total_steps)
    loader = step_loader(train_ds, sampler, collate_skip, cfg.data.num_workers, cfg.seed, dev)
    val_crops = cached_crops(FaceDataset(val_items, cfg.model.image_size, None, cfg.seed)) if di.main else None
    return loader, spe, total_steps, val_crops


def _resume_state(last: Path, cfg: AETrainConfig) -> dict[str, Any] | None:
    """The checkpoint to resume from (None when the run folder has none); its model must match."""
    if not last.exists():
        return None
    state = load_checkpoint(last)
    if state.get("kind") != "autoencoder":
        raise FabrecError(f"{last}: not an autoencoder training checkpoint; use another --out")
    saved = load_autoencoder_config(state)
    if saved.model != cfg.model:
        raise FabrecError(
            f"{last}: checkpoint is a {saved.model.image_size}px width {saved.model.width} "
            f"model, not {cfg.model.image_size}px width {cfg.model.width} "
            "(use --init-from to grow a model, or another --out)"
        )
    return state


def _init_from(nets: Networks, source: str | Path) -> list[str]:
    """Copy every matching tensor of ``source`` (E and G, and D_z / D_x when it has them);
    return the names of the tensors left freshly initialised."""
    src = load_autoencoder_state(source)
    new: list[str] = []
    for name, net in nets.items():
        if name in src.nets:
            missing = load_matching(net, src.nets[name], f"{source} [{name}]")
            new += [f"{name}.{k}" for k in missing]
        else:
            new += [f"{name}.{k}" for k in net.state_dict()]
    return new


def _checkpoint(
    cfg: AETrainConfig, nets: Networks, opts: dict[str, torch.optim.Optimizer], step: int, epoch: int,
    dev: torch.device,
) -> dict[str, Any]:
    rng = {"torch": torch.get_rng_state()}
    if dev.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(dev)
    return {
        "kind": "autoencoder", "config": to_dict(cfg),
        "nets": {n: m.state_dict() for n, m in nets.items()},
        "optim": {n: o.state_dict() for n, o in opts.items()},
        "step": step, "epoch": epoch, "rng": rng,
    }


def _agree(flag: bool, dev: torch.device, di: DistInfo) -> bool:
    """Rank 0's answer for every rank (so all stop at the same step)."""
    if di.world <= 1:
        return flag
    t = torch.tensor([1 if flag else 0], device=dev)
    dist.broadcast(t, 0)
    return bool(t.item())


def cached_crops(ds: FaceDataset) -> torch.Tensor:
    """Every readable crop of an un-augmented dataset, read once: ``uint8 (N, S, S, 3)``."""
    crops = []
    for i in range(len(ds)):
        try:
            crops.append(torch.from_numpy(ds.load_crop(i)))
        except FabrecError:
            continue
    if not crops:
        return torch.zeros(0, ds.image_size, ds.image_size, 3, dtype=torch.uint8)
    return torch.stack(crops)


def ae_step(
    nets: Networks,
    wrapped: dict[str, nn.Module],
    opts: dict[str, torch.optim.Optimizer],
    x: torch.Tensor,
    it: int,
    cfg: AETrainConfig,
    adv_on: bool,
    cs_on: bool,
    autocast: Callable[[], Any] = contextlib.nullcontext,
) -> dict[str, float]:
    """One iteration of stage 1 on images ``x (N, 3, S, S)``; returns the losses it computed.

    E and G step on ``w_rec*L_rec [+ w_cs*L_cs] [+ w_enc*L_enc every enc_every] [+ w_adv*L_adv]``
    (the discriminators frozen meanwhile); D_z steps every ``dz_every`` iterations, D_x every
    ``dx_every`` once the adversarial loss is on. ``wrapped`` holds the (possibly DDP) modules.
    Raises :class:`FabrecError` on a non-finite loss, before any weight changes.
    """
    L, S = cfg.loss, cfg.schedule
    E, G, Dz, Dx = (wrapped[n] for n in NETS)
    saved = [(b, b.clone()) for n in ("encoder", "generator", "dx") for b in getattr(nets, n).buffers()]
    for d in (nets.dz, nets.dx):
        d.requires_grad_(False)
    try:
        with autocast():
            z = E(x)  # (N, D)
            xr = G(z)  # (N, 3, S, S)
            rec = l1_loss_255(xr.float(), x)
            loss = L.w_rec * rec
            logs: dict[str, float] = {"rec": rec.item()}
            if cs_on and L.w_cs > 0:
                c = cs_loss(xr.float(), x, L.cs_window, L.cs_sigma)
                loss = loss + L.w_cs * c
                logs["cs"] = c.item()
            if L.w_enc > 0 and it % S.enc_every == 0:
                e = gan_g_loss(nets.dz(z.float()))
                loss = loss + L.w_enc * e
                logs["enc"] = e.item()
            if adv_on and L.w_adv > 0:
                a = gan_g_loss(nets.dx(xr))
                loss = loss + L.w_adv * a
                logs["adv"] = a.item()
        if not torch.isfinite(loss):
            for b, copy in saved:  # undo BatchNorm statistics of the bad batch
                b.copy_(copy)
            raise NonFiniteLoss(f"step {it}: loss is {loss.item()} ({json.dumps(logs)}); last good checkpoint kept")
        opts["encoder"].zero_grad(set_to_none=True)
        opts["generator"].zero_grad(set_to_none=True)
        loss.backward()
        opts["encoder"].step()
        opts["generator"].step()
    finally:
        for d in (nets.dz, nets.dx):
            d.requires_grad_(True)
    if L.w_enc > 0 and it % S.dz_every == 0:
        with autocast():
            zd = z.detach().float()
            dz_loss = gan_d_loss(Dz(torch.randn_like(zd)), Dz(zd))
        opts["dz"].zero_grad(set_to_none=True)
        dz_loss.backward()
        opts["dz"].step()
        logs["dz"] = dz_loss.item()
    if adv_on and L.w_adv > 0 and it % S.dx_every == 0:
        with autocast():
            dx_loss = gan_d_loss(Dx(x), Dx(xr.detach()))
        opts["dx"].zero_grad(set_to_none=True)
        dx_loss.backward()
        opts["dx"].step()
        logs["dx"] = dx_loss.item()
    return logs


@torch.no_grad()
def validate(
    encoder: nn.Module, generator: nn.Module, crops: torch.Tensor, dev: torch.device, batch: int
) -> dict[str, float]:
    """Mean L1 (0-255 units) and SSIM of reconstructions of ``crops`` (``uint8 (N, S, S, 3)``,
    see :func:`cached_crops`), in eval mode."""
    if len(crops) == 0:
        return {}
    was = encoder.training
    encoder.eval()
    generator.eval()
    l1s, ssims = [], []
    for i in range(0, len(crops), batch):
        x = batch_to_tensor(crops[i : i + batch]).to(dev)
        xr = generator(encoder(x)).float()
        l1s.append((xr - x).abs().flatten(1).mean(1) * 255.0)
        ssims.append(ssim(denormalize(xr), denormalize(x)))
    encoder.train(was)
    generator.train(was)
    return {"val_l1": torch.cat(l1s).mean().item(), "val_ssim": torch.cat(ssims).mean().item()}


@torch.no_grad()
def write_grids(
    encoder: nn.Module, generator: nn.Module, crops: torch.Tensor, z: torch.Tensor, folder: Path,
    epoch: int, n: int, dev: torch.device,
) -> None:
    """``recon_eNNN.png`` (inputs above reconstructions) and ``samples_eNNN.png`` (z ~ N(0, I))."""
    was = encoder.training
    encoder.eval()
    generator.eval()
    if len(crops):
        x = batch_to_tensor(crops[:n]).to(dev)
        xr = generator(encoder(x))
        write_image_atomic(folder / f"recon_e{epoch:03d}.png", grid([to_uint8(x), to_uint8(xr)]))
    s = to_uint8(generator(z.to(dev)))
    half = math.ceil(len(s) / 2)
    write_image_atomic(folder / f"samples_e{epoch:03d}.png", grid([s[:half], s[half:]]))
    encoder.train(was)
    generator.train(was)
