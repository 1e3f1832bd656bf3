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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from fabrec.checkpoint import load_checkpoint, load_matching, save_checkpoint
from fabrec.config import AETrainConfig, ModelConfig, dump_yaml, from_dict, to_dict
from fabrec.datasets.faces import FaceDataset, collate_skip, collect_faces, split_items
from fabrec.errors import FabrecError, NonFiniteLoss
from fabrec.io import write_image_atomic, write_text_atomic
from fabrec.losses import cs_loss, gan_d_loss, gan_g_loss, l1_loss_255, ssim
from fabrec.model import denormalize
from fabrec.nn import Encoder, Generator, ImageDiscriminator, LatentDiscriminator
from fabrec.signals import TrainingInterrupted, graceful_stop, ignore_stop_signals
from fabrec.visualize import grid, to_uint8

NETS = ("encoder", "generator", "dz", "dx")


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available else CPU; ``cuda`` without a GPU is a FabrecError."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise FabrecError("--device cuda: no CUDA device is available")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise FabrecError(f"--device must be auto, cpu or cuda, got '{device}'")
    return torch.device(device)


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


class EpochSampler(Sampler[int]):
    """Seeded permutation per epoch, sharded over ranks, able to start mid-epoch.

    Yields ``steps * batch`` indices for this rank, beginning at batch ``start_batch``.
    """

    def __init__(self, n: int, batch: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.n, self.batch, self.seed, self.rank, self.world = n, batch, seed, rank, world
        self.steps = n // (batch * world)
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __iter__(self) -> Iterator[int]:
        perm = np.random.default_rng([self.seed, 7919, self.epoch]).permutation(self.n)
        used = perm[: self.steps * self.batch * self.world]
        mine = used.reshape(self.steps, self.world, self.batch)[:, self.rank]
        return iter(mine[self.start_batch :].reshape(-1).tolist())

    def __len__(self) -> int:
        return (self.steps - self.start_batch) * self.batch


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


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop lines logged after the checkpoint we resume from (no duplicates after resume)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
        if rec.get("step", 0) <= step:
            keep.append(line)
    write_text_atomic(path, "".join(k + "\n" for k in keep))


def _append_jsonl(path: Path, rec: dict[str, Any]) -> None:
    """Append one JSON line and fsync it; a write failure is a FabrecError naming the file."""
    try:
        with open(path, "a") as f:
            f.write(json.dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise FabrecError(f"{path}: cannot write ({e.strerror or e})") from None


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
) -> TrainResult:
    """Train stage 1 and return where it ended. See the module docstring.

    Args:
        cfg: the run's configuration (model, losses, schedule, optimiser, data).
        out_dir: run folder (created); holds config.yaml, last.pt, metrics.jsonl, grids/.
        device: ``auto``, ``cpu`` or ``cuda[:i]``.
        resume: continue from ``out_dir/last.pt`` if it exists (else start fresh).
        init_from: checkpoint whose matching tensors initialise a fresh run (128 -> 256 growth).
        progress: show a tqdm bar (rank 0).
        log: callback for human-readable notes (new tensors, skipped images).
    """
    say = log or (lambda s: None)
    dev = resolve_device(device)
    di = init_distributed(dev)
    if dev.type == "cuda" and di.world > 1:
        dev = torch.device("cuda", di.local_rank)
        torch.cuda.set_device(dev)
    out = Path(out_dir)
    if di.main:
        try:
            (out / "grids").mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise FabrecError(f"{out}: cannot create run folder ({e.strerror})") from None
    last = out / "last.pt"
    metrics_path = out / "metrics.jsonl"

    state = None
    if resume and last.exists():
        state = load_checkpoint(last)
        saved = load_autoencoder_config(state)
        if saved.model != cfg.model:
            raise FabrecError(
                f"{last}: checkpoint is a {saved.model.image_size}px width {saved.model.width} "
                f"model, not {cfg.model.image_size}px width {cfg.model.width} "
                "(use --init-from to grow a model, or another --out)"
            )

    torch.manual_seed(cfg.seed)
    nets = build_networks(cfg.model)
    new_tensors: list[str] = []
    if state is None and init_from is not None:
        src = load_checkpoint(init_from)
        if "nets" not in src:
            raise FabrecError(f"{init_from}: not an autoencoder checkpoint")
        for name, net in nets.items():
            missing = load_matching(net, src["nets"][name], f"{init_from} [{name}]")
            new_tensors += [f"{name}.{k}" for k in missing]
        if new_tensors:
            say(f"--init-from: {len(new_tensors)} new tensors initialised fresh: " + ", ".join(new_tensors))
    channels_last = dev.type == "cpu"
    mf = torch.channels_last if channels_last else torch.contiguous_format
    for _, net in nets.items():
        net.to(dev, memory_format=mf)
    opts = build_optimizers(nets, cfg)
    step = 0
    if state is not None:
        for name, net in nets.items():
            net.load_state_dict(state["nets"][name])
            opts[name].load_state_dict(state["optim"][name])
        step = int(state["step"])
        torch.set_rng_state(state["rng"]["torch"])
        if dev.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], dev)

    # ---- data
    items = collect_faces(list(cfg.data.paths), list(cfg.data.boxes))
    train_items, val_items = split_items(items, cfg.data.val_permille, cfg.data.val_max)
    per_step = cfg.batch_size * di.world
    if len(train_items) < per_step:
        raise FabrecError(
            f"only {len(train_items)} training images for a batch of {cfg.batch_size} x {di.world} "
            "process(es): lower --batch-size"
        )
    train_ds = FaceDataset(train_items, cfg.model.image_size, cfg.augment, cfg.seed)
    val_ds = FaceDataset(val_items, cfg.model.image_size, None, cfg.seed)
    sampler = EpochSampler(len(train_ds), cfg.batch_size, cfg.seed, di.rank, di.world)
    steps_per_epoch = sampler.steps
    workers = cfg.data.num_workers
    loader = DataLoader(
        train_ds, batch_size=cfg.batch_size, sampler=sampler, num_workers=workers,
        collate_fn=collate_skip, pin_memory=dev.type == "cuda",
        generator=torch.Generator().manual_seed(cfg.seed), worker_init_fn=ignore_stop_signals,
    )
    total_steps = cfg.max_steps if cfg.max_steps > 0 else cfg.epochs * steps_per_epoch

    # ---- DDP wrappers (rank 0's initial weights are broadcast at construction)
    wrapped: dict[str, nn.Module] = dict(nets.items())
    if di.world > 1:
        ids = [dev.index] if dev.type == "cuda" else None
        wrapped = {n: DDP(m, device_ids=ids) for n, m in nets.items()}

    if di.main:
        write_text_atomic(out / "config.yaml", dump_yaml(cfg))
        _truncate_metrics(metrics_path, step)

    def save(epoch_done: int) -> None:
        if not di.main:
            return
        rng = {"torch": torch.get_rng_state()}
        if dev.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(dev)
        save_checkpoint(
            last,
            {
                "kind": "autoencoder",
                "config": to_dict(cfg),
                "nets": {n: m.state_dict() for n, m in nets.items()},
                "optim": {n: o.state_dict() for n, o in opts.items()},
                "step": step,
                "epoch": epoch_done,
                "rng": rng,
            },
        )

    autocast = (
        (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if cfg.amp == "bf16" else contextlib.nullcontext
    )
    fixed_z = torch.randn(cfg.grid_size * 2, cfg.model.latent_dim, generator=torch.Generator().manual_seed(1234))
    S = cfg.schedule

    bar = tqdm(total=total_steps, initial=step, disable=not (progress and di.main), unit="step",
               dynamic_ncols=True, desc="train-ae")
    with graceful_stop() as stop:
        skipped_epoch = 0
        last_val: dict[str, float] = {}
        t_last, n_last = time.perf_counter(), 0
        while step < total_steps:
            epoch = step // steps_per_epoch
            in_epoch = step % steps_per_epoch
            if in_epoch == 0:
                skipped_epoch = 0
            e1 = epoch + 1
            adv_on = (not S.curriculum) or e1 >= S.adv_from_epoch
            cs_on = (not S.curriculum) or e1 >= S.cs_from_epoch
            train_ds.set_epoch(epoch)
            sampler.set_epoch(epoch, in_epoch)
            for net in nets.__dict__.values():
                net.train()
            for x, skipped in loader:
                skipped_epoch += skipped
                if x.numel() == 0:
                    step += 1
                    bar.update(1)
                    if step >= total_steps or step % steps_per_epoch == 0:
                        break
                    continue
                x = x.to(dev, non_blocking=True).contiguous(memory_format=mf)
                try:
                    logs = ae_step(nets, wrapped, opts, x, step, cfg, adv_on, cs_on, autocast)
                except NonFiniteLoss as e:
                    if cfg.on_nonfinite != "skip":
                        raise
                    say(f"skipped a batch: {e}")
                    logs = {"skipped_nonfinite": 1.0}
                step += 1
                n_last += x.shape[0] * di.world
                bar.update(1)
                if step % cfg.log_every == 0 or step == total_steps:
                    now = time.perf_counter()
                    ips = n_last / max(now - t_last, 1e-9)
                    t_last, n_last = now, 0
                    bar.set_postfix({k: f"{v:.3g}" for k, v in logs.items()} | {"img/s": f"{ips:.1f}"})
                    if di.main:
                        _append_jsonl(metrics_path, {"step": step, "epoch": e1, **logs, "images_per_s": ips})
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                    save(epoch)
                if stop.requested:
                    save(epoch)
                    bar.close()
                    raise TrainingInterrupted(step, str(last))
                if step >= total_steps or step % steps_per_epoch == 0:
                    break
            if step % steps_per_epoch == 0:  # epoch finished
                if di.world > 1:
                    t = torch.tensor([skipped_epoch], device=dev)
                    dist.all_reduce(t)
                    skipped_epoch = int(t.item())
                if di.main:
                    last_val = validate(nets.encoder, nets.generator, val_ds, dev, cfg.batch_size)
                    write_grids(nets.encoder, nets.generator, val_ds, fixed_z, out / "grids", e1, cfg.grid_size, dev)
                    _append_jsonl(metrics_path, {"step": step, "epoch": e1, **last_val, "skipped": skipped_epoch})
                    say(f"epoch {e1}: val L1 {last_val.get('val_l1', float('nan')):.2f}, "
                        f"SSIM {last_val.get('val_ssim', float('nan')):.3f}, skipped {skipped_epoch} unreadable image(s)")
                save(e1)
            elif step >= total_steps:
                save(epoch)
    bar.close()
    if di.world > 1:
        dist.barrier()
    return TrainResult(step, step // max(steps_per_epoch, 1), out, new_tensors, last_val)


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
    encoder: nn.Module, generator: nn.Module, ds: FaceDataset, dev: torch.device, batch: int
) -> dict[str, float]:
    """Mean L1 (0-255 units) and SSIM of reconstructions over ``ds`` (eval mode)."""
    if len(ds) == 0:
        return {}
    was = encoder.training
    encoder.eval()
    generator.eval()
    l1s, ssims = [], []
    for i in range(0, len(ds), batch):
        xs = [ds[j] for j in range(i, min(i + batch, len(ds)))]
        xs = [x for x in xs if x is not None]
        if not xs:
            continue
        x = torch.stack(xs).to(dev)
        xr = generator(encoder(x)).float()
        l1s.append((xr - x).abs().flatten(1).mean(1) * 255.0)
        ssims.append(ssim(denormalize(xr), denormalize(x)))
    encoder.train(was)
    generator.train(was)
    if not l1s:
        return {}
    return {"val_l1": torch.cat(l1s).mean().item(), "val_ssim": torch.cat(ssims).mean().item()}


@torch.no_grad()
def write_grids(
    encoder: nn.Module, generator: nn.Module, ds: FaceDataset, z: torch.Tensor, folder: Path,
    epoch: int, n: int, dev: torch.device,
) -> None:
    """``recon_eNNN.png`` (inputs above reconstructions) and ``samples_eNNN.png`` (z ~ N(0, I))."""
    was = encoder.training
    encoder.eval()
    generator.eval()
    xs = [x for x in (ds[i] for i in range(min(len(ds), n))) if x is not None]
    if xs:
        x = torch.stack(xs).to(dev)
        xr = generator(encoder(x))
        write_image_atomic(folder / f"recon_e{epoch:03d}.png", grid([to_uint8(x), to_uint8(xr)]))
    s = to_uint8(generator(z.to(dev)))
    half = math.ceil(len(s) / 2)
    write_image_atomic(folder / f"samples_e{epoch:03d}.png", grid([s[:half], s[half:]]))
    encoder.train(was)
    generator.train(was)
