"""Stages 2-3: train interleaved transfer layers (and optionally finetune the encoder).

Encoder and generator come from an autoencoder checkpoint and stay frozen, BatchNorm
statistics included (both always run in eval mode). Stage 2 trains the ITLs and the heatmap
layer (Adam lr 1e-3); with ``finetune_encoder`` a stage 3 follows that also trains the
encoder's weights (ITL lr 1e-4, encoder lr 2e-5). Validation uses a held-out part of the
training split, never a test split. Runs resume exactly from ``RUN_DIR/last.pt``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from fabrec.batch_order import StepBatches, hash_split, step_loader
from fabrec.checkpoint import save_checkpoint
from fabrec.config import LMTrainConfig, ModelConfig, dump_yaml, to_dict
from fabrec.datasets.landmarks import (
    LandmarkDataset,
    LandmarkSample,
    MemoryDataset,
    choose_training,
    collate_landmarks,
    read_dataset,
    target_heatmaps,
)
from fabrec.errors import FabrecError, NonFiniteLoss
from fabrec.heatmaps import heatmap_size
from fabrec.faces.framing import Framing
from fabrec.faces.framing import frame_labels, labels_detector
from fabrec.landmark_model import LandmarkModel, predict_dataset
from fabrec.losses import heatmap_loss
from fabrec.metrics import nme
from fabrec.model import FabRec
from fabrec.model_file import ModelFile, read_autoencoder
from fabrec.registry import AMPS, DECODERS, FRAMINGS
from fabrec.runtime import Deadline, amp_note, autocast_context, memory_format, training_device
from fabrec.schemes import Scheme, get_scheme
from fabrec.training_loop import Cadence, make_run_dir, resume_state, run_loop, start_run_folder
from fabrec.transfer import FEW_SHOT_MAX, HEATMAP_INITS, resolve_init_from, start_from

log = logging.getLogger(__name__)


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
    stopped: str = "steps"  # "steps" (planned end) or "time" (--time-limit)
    steps_itl: int = 0  # steps run in stage 2 (ITLs) and stage 3 (finetuning), this call
    steps_finetune: int = 0


def split_pool(samples: list[LandmarkSample], permille: int, val_max: int) -> tuple[list[LandmarkSample], list[LandmarkSample]]:
    """(pool, validation) of a training split by the stable hash rule on sample keys."""
    return hash_split(samples, lambda s: s.key, permille, val_max)


def make_optimizer(net: FabRec, cfg: LMTrainConfig, stage: int, transfer: bool = False) -> torch.optim.Adam:
    """Adam for the stage: ITLs at lr (stage 2; transfer_lr when the run started from a landmark
    model) or finetune_lr_itl + encoder (stage 3)."""
    net.trainable(stage)
    assert net.itl is not None
    itl_params = [p for p in net.itl.parameters() if p.requires_grad]
    betas = (cfg.beta1, cfg.beta2)
    if stage == 2:
        return torch.optim.Adam(itl_params, lr=cfg.transfer_lr if transfer else cfg.lr, betas=betas)
    return torch.optim.Adam(
        [{"params": itl_params, "lr": cfg.finetune_lr_itl},
         {"params": list(net.encoder.parameters()), "lr": cfg.finetune_lr_encoder}],
        betas=betas,
    )


def lm_step(net: FabRec, opt: torch.optim.Optimizer, batch: dict[str, torch.Tensor], cfg: LMTrainConfig,
            step: int = 0) -> float:
    """One optimisation step on a batch (``image (N,3,S,S)`` and ``heatmaps (N,K,H,H)`` or crop
    ``points (N,K,2)``, from which the targets are drawn here, on the batch's device)."""
    x = batch["image"]
    assert net.itl is not None
    with autocast_context(cfg.amp, x.device):
        pred = net.heatmaps(x).float()  # (N, K, H, H)
    target = batch.get("heatmaps")
    if target is None:
        target = target_heatmaps(batch["points"], x.shape[-1], pred.shape[-1], cfg.sigma)
    loss = heatmap_loss(pred, target, cfg.loss_scale)
    if not torch.isfinite(loss):
        raise NonFiniteLoss(f"step {step}: landmark loss is {loss.item()}; last good checkpoint kept")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def validation_nme(net: FabRec, scheme: Scheme, ds: Dataset, decoder: str, batch: int = 32) -> float:
    """Mean NME (%) over the validation crops (``ds`` items as LandmarkDataset's, with a
    ``samples`` list), through the same inference core as prediction."""
    pts, _, norms, idx = predict_dataset(LandmarkModel(net, scheme, decoder), ds, batch)
    if not idx:
        return float("nan")
    gt = np.stack([ds.samples[i].points for i in idx])
    return float(nme(pts, gt, norms).mean())


def default_steps(train_count: int, batch: int) -> int:
    """ITL steps when none are given: 50 epochs, at least 500 and at most 3,000 steps
    (10 images: 500 steps, a few CPU minutes for the default model; 800 images: 2,550)."""
    return int(min(3000, max(500, 50 * math.ceil(train_count / batch))))


UNBOUNDED = 10**12  # a stage length when only the time limit ends it


def plan_steps(cfg: LMTrainConfig, train_count: int, batch: int, steps_per_epoch: int,
               deadline: Deadline) -> tuple[int, int]:
    """Steps of stage 2 (ITLs) and stage 3 (encoder finetuning, 0 without it); UNBOUNDED when
    only the time limit ends a stage."""
    if cfg.max_steps > 0:
        steps2 = cfg.max_steps
    elif cfg.epochs > 0:
        steps2 = cfg.epochs * steps_per_epoch
    elif deadline:
        steps2 = UNBOUNDED
    else:
        steps2 = default_steps(train_count, batch)
        log.info("train-landmarks: no --max-steps, --epochs or --time-limit given: %d ITL steps "
                 "for %d training images (50 epochs, within 500-3000)", steps2, train_count)
    if not cfg.finetune_encoder:
        return steps2, 0
    return steps2, cfg.finetune_steps or (UNBOUNDED if deadline and steps2 == UNBOUNDED else steps2)


def check_choices(cfg: LMTrainConfig) -> None:
    """One clear error for a config value outside its registry."""
    for key, known in (("decoder", DECODERS), ("framing", FRAMINGS), ("heatmap_init", HEATMAP_INITS),
                       ("select", SELECTS), ("amp", AMPS)):
        if getattr(cfg, key) not in known:
            raise FabrecError(f"{key} must be one of {', '.join(known)}, got '{getattr(cfg, key)}'")


def build_net(cfg: LMTrainConfig, mc: ModelConfig, ae: ModelFile) -> FabRec:
    """A fresh landmark network (seeded) on the frozen autoencoder's weights."""
    torch.manual_seed(cfg.seed)
    try:
        net = FabRec(config=mc, itl=cfg.itl or None)
    except ValueError as e:
        raise FabrecError(f"--itl: {e}") from None
    assert net.itl is not None
    if cfg.heatmap_init != "he":  # see LMTrainConfig.heatmap_init; "combine" replaces it later
        net.set_heatmap_layer(std=1e-3)
    ae.load_net("encoder", net.encoder)
    ae.load_net("generator", net.generator)
    return net


@dataclass
class LandmarkData:
    """A run's faces: samples, crops as datasets, the batch order and the detector's mean shape."""

    train: list[LandmarkSample]
    val: list[LandmarkSample]
    train_ds: LandmarkDataset
    val_ds: LandmarkDataset
    boxes: Any
    shape: np.ndarray | None
    sampler: StepBatches


def landmark_data(cfg: LMTrainConfig, scheme: Scheme, mc: ModelConfig,
                  samples: tuple[list[LandmarkSample], list[LandmarkSample]] | None) -> LandmarkData:
    """Read (or take) the samples, frame them by ``mc.framing`` and set up the batch order."""
    train, val = samples if samples is not None else read_training(cfg, scheme)
    hm_size, framing = heatmap_size(mc.image_size), (mc.crop_top, mc.crop_bottom)
    train_boxes, val_boxes, shape = _frames(train, val, mc)
    train_ds = LandmarkDataset(train, scheme, mc.image_size, hm_size, framing, cfg.augment, cfg.sigma, cfg.seed,
                               heatmaps=False, boxes=train_boxes)
    val_ds = LandmarkDataset(val, scheme, mc.image_size, hm_size, framing, None, cfg.sigma, heatmaps=False,
                             boxes=val_boxes)
    sampler = StepBatches(len(train), min(cfg.batch_size, len(train)), cfg.seed, SAMPLER_SALT, drop_last=False)
    return LandmarkData(train, val, train_ds, val_ds, train_boxes, shape, sampler)


@dataclass(frozen=True)
class RunOrigin:
    """What a landmark run started from: the autoencoder spec, that autoencoder's own encoder
    (kept in the checkpoint when the landmark encoder can differ from it: finetuning or transfer),
    whether training transferred from a landmark model, and the cross-validation's record."""

    autoencoder: str
    ae_encoder: dict[str, torch.Tensor]
    keep_ae_encoder: bool
    transfer: bool
    cv: dict[str, Any] | None


class LandmarkTrainer:
    """Stages 2 and 3 as a :class:`~fabrec.training_loop.Trainer`: the network, its optimiser,
    the stage it is in, the best validation NME, and the checkpoint it writes."""

    skip_logs: ClassVar[dict[str, float]] = {"loss": float("nan")}

    def __init__(self, cfg: LMTrainConfig, net: FabRec, scheme: Scheme, data: LandmarkData, out: Path,
                 steps: tuple[int, int], origin: RunOrigin) -> None:
        self.cfg, self.net, self.scheme, self.data, self.out, self.origin = cfg, net, scheme, data, out, origin
        self.steps2, self.steps3 = steps
        self.stage, self.stage3_start, self.step, self.transfer = 2, steps[0], 0, origin.transfer
        self.best_nme, self.last_nme, self.skipped, self.done = float("inf"), float("nan"), 0, [0, 0]
        self.val_cache = MemoryDataset(data.val_ds)
        self.dev = next(net.parameters()).device
        self.opt = make_optimizer(net, cfg, 2, self.transfer)

    def restore(self, state: dict[str, Any], where: Path) -> None:
        """Continue from a checkpoint of this run (same model; the optimiser when the stage matches)."""
        mf = ModelFile.from_state(state, str(where))
        if mf.model != self.net.config:
            raise FabrecError(f"{where}: run folder holds a different model; use another --out")
        for name in ("encoder", "generator", "itl"):
            mf.load_net(name, getattr(self.net, name))
        if "ae_encoder" in mf.nets:
            self.origin = replace(self.origin, ae_encoder=mf.nets["ae_encoder"], keep_ae_encoder=True)
        self.step = int(state["step"])
        saved_stage = self.stage = int(state.get("stage", 2))
        self.stage3_start = int(state.get("stage3_start", self.steps2))
        if self.stage == 2 and self.step >= self.steps2 and self.steps3:  # an ITL-only run, now finetuned
            self.stage, self.stage3_start = 3, self.step
        self.transfer = bool(state.get("transfer", False))
        self.opt = make_optimizer(self.net, self.cfg, self.stage, self.transfer)
        if saved_stage == self.stage:
            self.opt.load_state_dict(state["optim"])
        self.best_nme = float(state.get("best_nme", float("inf")))
        torch.set_rng_state(state["rng"]["torch"])

    def train_step(self, batch: Any, skipped: int, step: int) -> dict[str, float]:
        self.skipped += skipped
        self.done[self.stage - 2] += 1
        self.step = step + 1
        if batch is None:
            return {}
        batch = {k: v.to(self.dev, non_blocking=True) for k, v in batch.items()}
        batch["image"] = batch["image"].contiguous(memory_format=memory_format(self.dev))
        return {"loss": lm_step(self.net, self.opt, batch, self.cfg, step)}

    def log_record(self, step: int, logs: dict[str, float]) -> dict[str, Any] | None:
        if step % self.cfg.log_every or not logs:
            return None
        return {"step": step, "stage": self.stage, "loss": logs["loss"]}

    def validation_due(self, step: int) -> bool:
        return step % self.cfg.val_every == 0

    def validate(self, step: int) -> dict[str, Any]:
        self.last_nme = validation_nme(self.net, self.scheme, self.val_cache, self.cfg.decoder)
        self.net.trainable(self.stage)
        if self.last_nme < self.best_nme:
            self.best_nme = self.last_nme
            save_checkpoint(self.out / "best.pt", self.payload())
        return {"step": step, "stage": self.stage, "val_nme": self.last_nme, "skipped": self.skipped}

    def end_step(self) -> int:
        """The step the current stage ends at (without a time limit)."""
        return self.steps2 if self.stage == 2 else self.stage3_start + self.steps3

    def phase_over(self, step: int, deadline: Deadline) -> bool:
        return step >= self.end_step() or bool(self.stage == 2 and self.steps3
                                               and deadline.passed(self.cfg.itl_time_share))

    def next_phase(self, step: int) -> bool:
        if self.stage != 2 or not self.steps3:
            return False
        self.stage, self.stage3_start = 3, step
        self.opt = make_optimizer(self.net, self.cfg, 3, self.transfer)
        log.info("train-landmarks: stage 3, encoder finetuning from step %d", step)
        return True

    def save(self, step: int) -> None:
        save_checkpoint(self.out / "last.pt", self.payload())

    def payload(self) -> dict[str, Any]:
        """The checkpoint: the model file (:class:`~fabrec.model_file.ModelFile`) plus training state."""
        nets = {n: getattr(self.net, n).state_dict() for n in ("encoder", "generator", "itl")}
        if self.origin.keep_ae_encoder:
            nets["ae_encoder"] = self.origin.ae_encoder
        d, cfg = self.data, self.cfg
        mf = ModelFile("landmarks", self.net.config, nets, self.scheme.to_dict(), list(self.net.itl.active),  # type: ignore[union-attr]
                       cfg.decoder, None if d.shape is None else d.shape.tolist())
        return mf.state() | {
            "config": to_dict(cfg), "autoencoder": self.origin.autoencoder, "optim": self.opt.state_dict(),
            "stage": self.stage, "stage3_start": self.stage3_start, "step": self.step, "best_nme": self.best_nme,
            "rng": {"torch": torch.get_rng_state()}, "train_keys": [s.key for s in d.train],
            "val_keys": [s.key for s in d.val], "transfer": self.transfer, "cv": self.origin.cv,
        }


def _announce(t: LandmarkTrainer, deadline: Deadline, time_limit: float | None) -> None:
    s2, s3 = t.steps2, t.steps3
    if not t.data.val:
        log.info("train-landmarks: no validation images (label more images than --train-count, or --set "
                 "val_permille=...): best.pt will be the last step")
    log.info("train-landmarks: %d training images, %d validation images, %s, %s%s%s%s", len(t.data.train),
             len(t.data.val), amp_note(t.cfg.amp, t.dev), "ITLs" if s2 == UNBOUNDED else f"{s2} ITL steps",
             "" if not s3 else (" + finetuning" if s3 == UNBOUNDED else f" + {s3} finetune steps"),
             f", at most {time_limit:g} min" if deadline else "",
             f" ({100 * t.cfg.itl_time_share:.0f}% for the ITL stage)" if deadline and s3 else "")


@dataclass
class PreparedRun:
    """A landmark run set up once (:func:`prepare_run`) and fitted by :func:`fit`: its config,
    scheme, faces, the network as it starts, where it came from and its stage lengths."""

    cfg: LMTrainConfig
    scheme: Scheme
    data: LandmarkData
    net: FabRec
    origin: RunOrigin
    steps: tuple[int, int]
    init_from: str | Path | None
    source_heatmap: Any

    def start_nme(self, device: torch.device) -> float:
        """The validation NME of the network as it starts (NaN without validation faces)."""
        if not self.data.val:
            return float("nan")
        self.net.to(device, memory_format=memory_format(device))
        return validation_nme(self.net, self.scheme, MemoryDataset(self.data.val_ds), self.cfg.decoder)


def prepare_run(cfg: LMTrainConfig, autoencoder: str | Path, deadline: Deadline,
                init_from: str | Path | None = None,
                samples: tuple[list[LandmarkSample], list[LandmarkSample]] | None = None,
                fresh: bool = True) -> PreparedRun:
    """Read and frame the faces, plan the stages and build the network on the frozen
    autoencoder, started from ``init_from`` (``auto``: :func:`resolve_init_from`) unless the run
    resumes (``fresh=False``: the checkpoint sets the weights). ``samples``: (training,
    validation) faces instead of ``cfg``'s dataset (the cross-validation's folds)."""
    check_choices(cfg)
    ae = read_autoencoder(autoencoder)
    scheme = get_scheme(cfg.scheme)
    mc = replace(ae.model, num_landmarks=scheme.num_points, framing=cfg.framing)
    data = landmark_data(cfg, scheme, mc, samples)
    steps = plan_steps(cfg, len(data.train), data.sampler.batch, data.sampler.steps_per_epoch, deadline)
    net = build_net(cfg, mc, ae)
    ae_encoder = {k: v.detach().clone().cpu() for k, v in net.encoder.state_dict().items()}
    init_from = resolve_init_from(init_from, autoencoder, len(data.train))
    source_heatmap = start_from(net, cfg, init_from, data.train, data.boxes, scheme) if fresh else None
    origin = RunOrigin(str(autoencoder), ae_encoder, cfg.finetune_encoder or init_from is not None,
                       init_from is not None, None)
    return PreparedRun(cfg, scheme, data, net, origin, steps, init_from, source_heatmap)


def fit(run: PreparedRun, out: Path, device: torch.device, deadline: Deadline,
        state: dict[str, Any] | None = None, progress: bool = True) -> LandmarkRun:
    """Train a prepared run (stages 2 and 3) into ``out`` (continuing ``state``, a checkpoint
    of it, when given); writes last.pt, best.pt, metrics.jsonl."""
    t0, cfg, data, net = time.time(), run.cfg, run.data, run.net
    net.to(device, memory_format=memory_format(device))
    t = LandmarkTrainer(cfg, net, run.scheme, data, out, run.steps, run.origin)
    if state is not None:
        t.restore(state, out / "last.pt")
    metrics = start_run_folder(out, dump_yaml(cfg), t.step)
    _announce(t, deadline, deadline.minutes)
    planned = (t.stage3_start if t.stage == 3 else t.steps2) + t.steps3
    data.sampler.set_range(t.step, None)
    loader = step_loader(data.train_ds, data.sampler, collate_landmarks, cfg.num_workers, cfg.seed, device)
    net.trainable(t.stage)
    with tqdm(total=planned if planned < UNBOUNDED // 2 else None, initial=t.step, disable=not progress,
              unit="step", desc="train-landmarks", dynamic_ncols=True) as bar:
        end = run_loop(t, loader, t.step, Cadence(cfg.checkpoint_every, False, cfg.on_nonfinite), deadline,
                       metrics, bar, out / "last.pt")
    _finish(t)
    return LandmarkRun(end.step, t.best_nme, t.last_nme, out, len(data.train), len(data.val), time.time() - t0,
                       end.stopped, t.done[0], t.done[1])


def train_landmarks(
    cfg: LMTrainConfig,
    autoencoder: str | Path,
    out_dir: str | Path,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    time_limit: float | None = None,
    init_from: str | Path | None = None,
) -> LandmarkRun:
    """Train stages 2 (and 3) and return the outcome; writes last.pt, best.pt, metrics.jsonl:
    :func:`prepare_run`, the cross-validation where it decides (:func:`wants_cv`), :func:`fit`.

    Args:
        cfg: the run's configuration.
        autoencoder: model spec of the frozen stage-1 encoder and generator (a bundled name,
            ``.safetensors`` or ``.pt``; see :mod:`fabrec.model_file`).
        out_dir: run folder.
        device: ``auto``, ``cpu`` or ``cuda``.
        resume: continue from ``out_dir/last.pt`` when present.
        progress: tqdm bar.
        time_limit: minutes for this call. With ``finetune_encoder`` stage 2 gets
            ``cfg.itl_time_share`` of it and stage 3 the rest; each stage also ends at its step
            count when one is given. Ends with a checkpoint at a step boundary.
        init_from: a landmark model spec whose encoder and transfer layers start this run
            (same ITL set), e.g. to finetune the bundled model further; ``auto``: see
            :func:`resolve_init_from`.
    """
    t0, started = time.time(), time.monotonic()
    out = make_run_dir(out_dir)
    state = resume_state(out, resume, "landmarks")
    deadline, dev = Deadline(time_limit, started), training_device(device)  # the budget counts from the call
    run = prepare_run(cfg, autoencoder, deadline, init_from, fresh=state is None)
    cv = (state or {}).get("cv")
    if state is None and wants_cv(cfg, run.init_from, run.source_heatmap, len(run.data.train) + len(run.data.val),
                                  run.steps[0]):
        cv = cross_validate_start(run, out / "cv", dev)
    if cv is not None and cv["kept"]:
        run.steps = (0, 0)
    run.origin = replace(run.origin, cv=cv)
    result = fit(run, out, dev, deadline, state, progress)
    return replace(result, seconds=time.time() - t0)


def _finish(t: LandmarkTrainer) -> None:
    if not (t.out / "best.pt").exists() or not t.data.val:  # without validation, best.pt is the last step
        save_checkpoint(t.out / "best.pt", t.payload())
    if not (t.out / "last.pt").exists():  # nothing to train (the cross-validation kept the start model)
        save_checkpoint(t.out / "last.pt", t.payload())
    if t.skipped:
        log.info("train-landmarks: %d unreadable image(s) skipped", t.skipped)


def _frames(train: list, val: list, mc: Any) -> tuple[Any, Any, np.ndarray | None]:
    """Crops of the training and validation faces under ``mc.framing``: ``detector`` runs the
    default detector on every photo (:func:`fabrec.faces.framing.frame_labels`) and returns the mean shape
    too; ``landmarks`` leaves the crops to the points' extent (None, None, None)."""
    if mc.framing != "detector":
        return None, None, None
    det = labels_detector()
    framing = Framing.of(mc)
    tr = frame_labels(train, det, framing)
    va = frame_labels(val, det, replace(framing, mean_shape=tr.shape)) if val else None
    log.info("train-landmarks: framing by the %s detector, as predict frames faces: %d of %d training faces "
             "found%s (the others framed by their labels' fit to the mean shape)", det.name, tr.detected, len(train),
             f", {va.detected} of {len(val)} validation faces" if va else "")
    return tr.boxes, (va.boxes if va else None), tr.shape


SAMPLER_SALT = 104729  # keeps the batch order of runs made before the shared sampler


def read_training(cfg: LMTrainConfig, scheme: Scheme) -> tuple[list, list]:
    """(training, validation) samples of ``cfg``'s dataset: the hash split, then the training
    count drawn from the pool. ``--train-count N`` means N labelled images to learn from:
    validation takes only what is left beyond them (:func:`give_back_validation`)."""
    res = read_dataset(cfg.dataset, cfg.root, cfg.split, scheme)
    for p in res.problems:
        log.info("skipped: %s", p)
    count = parse_count(cfg.train_count)
    pool, val = split_pool(res.samples, cfg.val_permille, cfg.val_max)
    total = len(pool) + len(val)
    if isinstance(count, int) and count > total:
        raise FabrecError(f"{cfg.root}: --train-count {count} asks for {count} labelled images, the data has "
                          f"{total}; give --train-count {total} (or all)")
    pool, val = give_back_validation(pool, val, count if isinstance(count, int) else 1)
    return choose_training(pool, count, cfg.sample, cfg.seed), val


def give_back_validation(pool: list[LandmarkSample], val: list[LandmarkSample],
                         need: int) -> tuple[list[LandmarkSample], list[LandmarkSample]]:
    """(pool, validation) with validation images moved to the pool until it holds ``need``
    (whole images, the last keys first, so the rest of the split stays as it was); says so."""
    if len(pool) >= need:
        return pool, val
    keep, moved = list(val), []
    while keep and len(pool) + len(moved) < need:
        key = keep[-1].key
        while keep and keep[-1].key == key:
            moved.append(keep.pop())
    log.info("train-landmarks: %d image(s) of the validation split go to training to give %d training images; "
             "%d left for validation", len(moved), need, len(keep))
    return pool + moved[::-1], keep


SELECTS = ("auto", "cv", "none")


def wants_cv(cfg: LMTrainConfig, init_from: Any, source_heatmap: Any, labelled: int, steps: int) -> bool:
    """Whether k-fold cross-validation decides between the start model and training (see
    ``LMTrainConfig.select``): ``auto`` when adapting a landmark model of the same scheme with at
    most FEW_SHOT_MAX labelled images, ``cv`` whenever starting from a landmark model
    (``cfg.select`` already checked by :func:`check_choices`)."""
    if init_from is None or steps >= UNBOUNDED // 2 or cfg.select == "none":
        return False
    return cfg.select == "cv" or (source_heatmap is None and labelled <= FEW_SHOT_MAX)


def cross_validate_start(run: PreparedRun, out: Path, device: torch.device) -> dict[str, Any]:
    """k-fold cross-validation on the labelled images of a prepared run (training and validation
    ones): on each held-out fold, the NME of the start model against that of a run of the
    run's ITL steps on the other folds (both measured on the fold's crops), each fold prepared
    and fitted like any run (:func:`prepare_run`, :func:`fit`).
    Returns ``{"folds", "start_nme", "trained_nme", "kept"}``; ``kept`` (the start model is the
    result) unless training lowered the NME on every held-out fold: conservative by design, as a
    model that already works must not get worse from a handful of labels."""
    cfg, steps, train = run.cfg, run.steps[0], run.data.train + run.data.val
    k = max(2, min(cfg.cv_folds, len(train)))
    order = np.random.default_rng(cfg.seed).permutation(len(train))
    fold_cfg = replace(cfg, select="none", max_steps=steps, epochs=0)
    start, trained = [], []
    for f in range(k):
        held = set(order[f::k].tolist())
        fit_on = [s for i, s in enumerate(train) if i not in held]
        check = [s for i, s in enumerate(train) if i in held]
        fold = prepare_run(fold_cfg, run.origin.autoencoder, Deadline(None), run.init_from, (fit_on, check))
        start.append(fold.start_nme(device))
        trained.append(fit(fold, make_run_dir(out / f"fold{f}"), device, Deadline(None), progress=False).last_nme)
    s0, s1 = float(np.mean(start)), float(np.mean(trained))
    kept = not all(b < a for a, b in zip(start, trained))
    log.info("train-landmarks: %d-fold cross-validation on the %d labelled images: held-out NME %.2f%% as "
             "started, %.2f%% after %d steps (mean of the folds) -> %s", k, len(train), s0, s1, steps,
             "keeping the start model (--set select=none trains regardless)" if kept else "training")
    return {"folds": k, "start_nme": start, "trained_nme": trained, "kept": kept}


