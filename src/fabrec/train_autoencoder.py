"""Stage 1: train the adversarial autoencoder (E, G, D_z, D_x) on unlabeled faces.

Single process, or DistributedDataParallel under ``torchrun`` (NCCL on CUDA, gloo on CPU,
rank 0 writes every file). Runs resume exactly from ``RUN_DIR/last.pt``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from fabrec.architectures import build_encoder, build_generator
from fabrec.batch_order import StepBatches, step_loader
from fabrec.checkpoint import load_matching, save_checkpoint
from fabrec.config import AETrainConfig, ModelConfig, dump_yaml, from_dict, to_dict
from fabrec.datasets.faces import FaceDataset, collate_skip, collect_faces, split_items
from fabrec.errors import FabrecError, NonFiniteLoss
from fabrec.io import write_image_atomic
from fabrec.losses import (
    ae_terms_on,
    cs_loss,
    gan_d_loss,
    gan_g_loss,
    l1_loss_255,
    mix_ae_losses,
    ssim,
)
from fabrec.model_file import ModelFile, read_autoencoder
from fabrec.nn import ImageDiscriminator, LatentDiscriminator
from fabrec.normalization import batch_to_tensor, denormalize
from fabrec.runtime import Deadline, amp_note, autocast_context, memory_format, resolve_amp, training_device
from fabrec.training_loop import Cadence, append_jsonl, make_run_dir, resume_state, run_loop, start_run_folder
from fabrec.normalization import to_uint8
from fabrec.visualize import grid

NETS = ("encoder", "generator", "dz", "dx")
log = logging.getLogger(__name__)


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
        build_encoder(m),
        build_generator(m),
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


class AETrainer:
    """Stage 1 as a :class:`~fabrec.training_loop.Trainer`: the four networks and their
    optimisers, the epoch bookkeeping (unreadable images, images/s) and the checkpoint."""

    skip_logs: ClassVar[dict[str, float]] = {"skipped_nonfinite": 1.0}

    def __init__(self, cfg: AETrainConfig, nets: Networks, opts: dict[str, torch.optim.Optimizer],
                 wrapped: dict[str, nn.Module], data: AEData, di: DistInfo, dev: torch.device, out: Path) -> None:
        self.cfg, self.nets, self.opts, self.wrapped, self.data = cfg, nets, opts, wrapped, data
        self.di, self.dev, self.out = di, dev, out
        if di.main:
            log.info("train-ae: %s on %s", amp_note(cfg.amp, dev), dev.type)
        self.autocast = functools.partial(autocast_context, resolve_amp(cfg.amp, dev), dev)
        self.fixed_z = torch.randn(cfg.grid_size * 2, cfg.model.latent_dim, generator=torch.Generator().manual_seed(1234))
        self.skipped_epoch, self.last_val = 0, {}
        self.t_last, self.n_last = time.perf_counter(), 0

    def train_step(self, batch: Any, skipped: int, step: int) -> dict[str, float]:
        spe = self.data.steps_per_epoch
        if step % spe == 0:
            self.skipped_epoch = 0
            self.t_last, self.n_last = time.perf_counter(), 0  # keep validation out of the images/s figure
        self.skipped_epoch += skipped
        try:
            if batch.numel() == 0:
                return {}
            x = batch.to(self.dev, non_blocking=True).contiguous(memory_format=memory_format(self.dev))
            logs = ae_step(self.nets, self.wrapped, self.opts, x, step, self.cfg, step // spe + 1, self.autocast)
            self.n_last += x.shape[0] * self.di.world
            return logs
        finally:
            if (step + 1) % spe == 0 and self.di.world > 1:  # every rank's unreadable images of the epoch
                t = torch.tensor([self.skipped_epoch], device=self.dev)
                dist.all_reduce(t)
                self.skipped_epoch = int(t.item())

    def log_record(self, step: int, logs: dict[str, float]) -> dict[str, Any] | None:
        if not logs or (step % self.cfg.log_every and step != self.data.total_steps):
            return None
        now = time.perf_counter()
        ips = self.n_last / max(now - self.t_last, 1e-9)
        self.t_last, self.n_last = now, 0
        return {"step": step, "epoch": self._epoch(step), **logs, "images_per_s": ips}

    def _epoch(self, step: int) -> int:
        """The 1-based epoch the ``step``-th step belongs to."""
        return (step - 1) // self.data.steps_per_epoch + 1

    def validation_due(self, step: int) -> bool:
        spe = self.data.steps_per_epoch
        return step % spe == 0 and (step // spe) % max(self.cfg.val_every_epochs, 1) == 0

    def validate(self, step: int) -> dict[str, Any] | None:
        if not self.di.main or self.data.val_crops is None:
            return None
        epoch = self._epoch(step)
        self.last_val = validate(self.nets.encoder, self.nets.generator, self.data.val_crops, self.dev,
                                 self.cfg.batch_size)
        write_grids(self.nets.encoder, self.nets.generator, self.data.val_crops, self.fixed_z, self.out / "grids",
                    epoch, self.cfg.grid_size, self.dev)
        log.info("epoch %d: val L1 %.2f, SSIM %.3f, skipped %d unreadable image(s)", epoch,
                 self.last_val.get("val_l1", float("nan")), self.last_val.get("val_ssim", float("nan")),
                 self.skipped_epoch)
        return {"step": step, "epoch": epoch, **self.last_val, "skipped": self.skipped_epoch}

    def phase_over(self, step: int, deadline: Deadline) -> bool:
        return step >= self.data.total_steps

    def next_phase(self, step: int) -> bool:
        return False

    def save(self, step: int) -> None:
        if self.di.main:
            save_checkpoint(self.out / "last.pt", _checkpoint(self.cfg, self.nets, self.opts, step,
                                                              step // self.data.steps_per_epoch, self.dev))


def _place(cfg: AETrainConfig, out: Path, device: str, resume: bool,
           init_from: str | Path | None) -> tuple[torch.device, DistInfo, dict[str, Any] | None, Networks, list[str]]:
    """The device and process group, the checkpoint to resume from, and the networks (seeded,
    with ``init_from``'s matching tensors on a fresh run) on the device."""
    dev = training_device(device)
    di = init_distributed(dev)
    if dev.type == "cuda" and di.world > 1:
        dev = torch.device("cuda", di.local_rank)
        torch.cuda.set_device(dev)
    if di.main:
        make_run_dir(out, "grids")
    state = _check_resume(resume_state(out, resume, "autoencoder"), out / "last.pt", cfg)
    torch.manual_seed(cfg.seed)
    nets = build_networks(cfg.model)
    new_tensors: list[str] = []
    if state is None and init_from is not None:
        new_tensors = _init_from(nets, init_from)
        if new_tensors:
            log.info("--init-from: %d new tensors initialised fresh: %s", len(new_tensors), ", ".join(new_tensors))
    for _, net in nets.items():
        net.to(dev, memory_format=memory_format(dev))
    return dev, di, state, nets, new_tensors


def train_autoencoder(
    cfg: AETrainConfig,
    out_dir: str | Path,
    device: str = "auto",
    resume: bool = False,
    init_from: str | Path | None = None,
    progress: bool = True,
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
        time_limit: minutes of wall clock for this call; the run then ends at a step boundary
            with a checkpoint (``TrainResult.stopped == "time"``).
    """
    deadline, out = Deadline(time_limit), Path(out_dir)
    dev, di, state, nets, new_tensors = _place(cfg, out, device, resume, init_from)
    opts = build_optimizers(nets, cfg)
    step = _restore(nets, opts, state, dev) if state is not None else 0
    data = _training_data(cfg, di, dev, step)
    wrapped: dict[str, nn.Module] = dict(nets.items())
    if di.world > 1:  # rank 0's initial weights are broadcast at construction
        ids = [dev.index] if dev.type == "cuda" else None
        wrapped = {n: DDP(m, device_ids=ids) for n, m in nets.items()}
    metrics = start_run_folder(out, dump_yaml(cfg), step) if di.main else None
    trainer = AETrainer(cfg, nets, opts, wrapped, data, di, dev, out)
    for _, net in nets.items():
        net.train()
    with tqdm(total=data.total_steps, initial=step, disable=not (progress and di.main), unit="step",
              dynamic_ncols=True, desc="train-ae") as bar:
        end = run_loop(trainer, data.loader, step, Cadence(cfg.checkpoint_every, True, cfg.on_nonfinite),
                       deadline, metrics, bar, out / "last.pt", lambda flag: _agree(flag, dev, di))
    if di.world > 1:
        dist.barrier()
    spe = data.steps_per_epoch
    if metrics is not None:
        append_jsonl(metrics, {"step": end.step, "epoch": end.step // spe, "stopped": end.stopped,
                               "seconds": deadline.elapsed(), "side_seconds": end.side_seconds})
    return TrainResult(end.step, end.step // spe, out, new_tensors, trainer.last_val, end.stopped,
                       deadline.elapsed(), end.side_seconds)


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


@dataclass
class AEData:
    """One loader for the whole run (workers live across epochs) and the validation crops."""

    loader: Any
    steps_per_epoch: int
    total_steps: int
    val_crops: torch.Tensor | None


def _training_data(cfg: AETrainConfig, di: DistInfo, dev: torch.device, step: int) -> AEData:
    """The batches from ``step`` on, steps per epoch, total steps, and the validation crops
    (rank 0; read once)."""
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
    return AEData(loader, spe, total_steps, val_crops)


def _check_resume(state: dict[str, Any] | None, last: Path, cfg: AETrainConfig) -> dict[str, Any] | None:
    """The checkpoint to resume from, when its model is this run's."""
    if state is None:
        return None
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
    src = read_autoencoder(source)
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
    mf = ModelFile("autoencoder", cfg.model, {n: m.state_dict() for n, m in nets.items()})
    return mf.state() | {
        "config": to_dict(cfg),
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
    epoch: int,
    autocast: Callable[[], Any] = contextlib.nullcontext,
) -> dict[str, float]:
    """One iteration of stage 1 on images ``x (N, 3, S, S)`` in 1-based ``epoch``; returns the
    losses it computed.

    E and G step on :func:`~fabrec.losses.mix_ae_losses` of the terms
    :func:`~fabrec.losses.ae_terms_on` switches on (the discriminators frozen meanwhile); D_z
    steps every ``dz_every`` iterations, D_x every ``dx_every`` once the adversarial loss is on.
    ``wrapped`` holds the (possibly DDP) modules. Raises :class:`NonFiniteLoss` on a non-finite
    loss, before any weight changes.
    """
    on = ae_terms_on(it, epoch, cfg.loss, cfg.schedule)
    z, xr, logs = _generator_step(nets, wrapped, opts, x, it, cfg, on, autocast)
    S = cfg.schedule
    if cfg.loss.w_enc > 0 and it % S.dz_every == 0:
        with autocast():
            zd = z.detach().float()
            logs["dz"] = _step_on(opts["dz"], gan_d_loss(wrapped["dz"](torch.randn_like(zd)), wrapped["dz"](zd)))
    if "adv" in on and it % S.dx_every == 0:
        with autocast():
            logs["dx"] = _step_on(opts["dx"], gan_d_loss(wrapped["dx"](x), wrapped["dx"](xr.detach())))
    return logs


def _step_on(opt: torch.optim.Optimizer, loss: torch.Tensor) -> float:
    """One optimiser step on ``loss``; returns its value."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def _generator_step(
    nets: Networks, wrapped: dict[str, nn.Module], opts: dict[str, torch.optim.Optimizer], x: torch.Tensor,
    it: int, cfg: AETrainConfig, on: tuple[str, ...], autocast: Callable[[], Any],
) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """The encoder/generator update: codes ``(N, D)``, reconstructions ``(N, 3, S, S)``, logs."""
    L = cfg.loss
    saved = [(b, b.clone()) for n in ("encoder", "generator", "dx") for b in getattr(nets, n).buffers()]
    for d in (nets.dz, nets.dx):
        d.requires_grad_(False)
    try:
        with autocast():
            z = wrapped["encoder"](x)  # (N, D)
            xr = wrapped["generator"](z)  # (N, 3, S, S)
            terms = {"rec": l1_loss_255(xr.float(), x)}
            if "cs" in on:
                terms["cs"] = cs_loss(xr.float(), x, L.cs_window, L.cs_sigma)
            if "enc" in on:
                terms["enc"] = gan_g_loss(nets.dz(z.float()))
            if "adv" in on:
                terms["adv"] = gan_g_loss(nets.dx(xr))
            loss = mix_ae_losses(terms, L)
        logs = {k: v.item() for k, v in terms.items()}
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
    return z, xr, logs


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
