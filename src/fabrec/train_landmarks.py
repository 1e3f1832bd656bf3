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
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from fabrec.checkpoint import load_checkpoint, save_checkpoint
from fabrec.config import LMTrainConfig, dump_yaml, from_dict, to_dict
from fabrec.datasets.landmarks import (
    LandmarkDataset,
    LandmarkSample,
    choose_training,
    collate_landmarks,
    read_dataset,
    target_heatmaps,
)
from fabrec.errors import FabrecError, NonFiniteLoss
from fabrec.framing import FRAMINGS
from fabrec.heatmaps import DECODERS, heatmap_size
from fabrec.hub import load_autoencoder_state, read_spec
from fabrec.io import write_text_atomic
from fabrec.label_framing import frame_labels, labels_detector
from fabrec.landmark_model import LandmarkModel, predict_dataset
from fabrec.losses import heatmap_loss
from fabrec.metrics import nme
from fabrec.model import FabRec
from fabrec.runtime import (
    Deadline,
    append_jsonl,
    make_run_dir,
    memory_format,
    training_device,
    truncate_jsonl,
)
from fabrec.sampling import StepBatches, hash_split, step_loader
from fabrec.schemes import Scheme, get_scheme
from fabrec.signals import TrainingInterrupted, graceful_stop


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
    start_nme: float = float("nan")  # validation NME before the first step (validate_start), else NaN


def split_pool(samples: list[LandmarkSample], permille: int, val_max: int) -> tuple[list[LandmarkSample], list[LandmarkSample]]:
    """(pool, validation) of a training split by the stable hash rule on sample keys."""
    return hash_split(samples, lambda s: s.key, permille, val_max)


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


def make_optimizer(net: FabRec, cfg: LMTrainConfig, stage: int, transfer: bool = False) -> torch.optim.Adam:
    """Adam for the stage: ITLs at lr (stage 2; transfer_lr when the run started from a landmark
    model) or finetune_lr_itl + encoder (stage 3)."""
    set_trainable(net, stage)
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
    pred = net.heatmaps(x)  # (N, K, H, H)
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


def train_landmarks(
    cfg: LMTrainConfig,
    autoencoder: str | Path,
    out_dir: str | Path,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    time_limit: float | None = None,
    init_from: str | Path | None = None,
    samples: tuple[list[LandmarkSample], list[LandmarkSample]] | None = None,
    validate_start: bool = False,
) -> LandmarkRun:
    """Train stages 2 (and 3) and return the outcome; writes last.pt, best.pt, metrics.jsonl.

    Args:
        cfg: the run's configuration.
        autoencoder: model spec of the frozen stage-1 encoder and generator (a bundled name,
            ``.safetensors`` or ``.pt``; see :mod:`fabrec.hub`).
        out_dir: run folder.
        device: ``auto``, ``cpu`` or ``cuda``.
        resume: continue from ``out_dir/last.pt`` when present.
        progress: tqdm bar.
        log: callback for notes.
        time_limit: minutes for this call. With ``finetune_encoder`` stage 2 gets
            ``cfg.itl_time_share`` of it and stage 3 the rest; each stage also ends at its step
            count when one is given. Ends with a checkpoint at a step boundary.
        init_from: a landmark model spec whose encoder and transfer layers start this run
            (same ITL set), e.g. to finetune the bundled model further; ``auto``: see
            :func:`resolve_init_from`.
        samples: (training, validation) samples to use instead of reading ``cfg``'s dataset
            (the folds of the cross-validation, :func:`cross_validate_start`).
        validate_start: measure the validation NME of the model as it starts (``start_nme``).
    """
    say = log or (lambda s: None)
    t0 = time.time()
    deadline = Deadline(time_limit)
    dev = training_device(device)
    out = make_run_dir(out_dir)
    last, best = out / "last.pt", out / "best.pt"
    metrics_path = out / "metrics.jsonl"
    if cfg.decoder not in DECODERS:
        raise FabrecError(f"decoder must be one of {', '.join(DECODERS)}")
    scheme = get_scheme(cfg.scheme)

    state = load_checkpoint(last) if (resume and last.exists()) else None
    ae = load_autoencoder_state(autoencoder)
    if cfg.framing not in FRAMINGS:
        raise FabrecError(f"framing must be one of {', '.join(FRAMINGS)}, got '{cfg.framing}'")
    mc = replace(ae.model, num_landmarks=scheme.num_points, framing=cfg.framing)

    # ---- data
    train, val = samples if samples is not None else read_training(cfg, scheme, say)
    hm_size = heatmap_size(mc.image_size)
    framing = (mc.crop_top, mc.crop_bottom)
    train_boxes, val_boxes, shape = _frames(train, val, mc, say)
    train_ds = LandmarkDataset(train, scheme, mc.image_size, hm_size, framing, cfg.augment, cfg.sigma, cfg.seed,
                               heatmaps=False, boxes=train_boxes)
    val_ds = LandmarkDataset(val, scheme, mc.image_size, hm_size, framing, None, cfg.sigma, heatmaps=False,
                             boxes=val_boxes)
    bs = min(cfg.batch_size, len(train))
    sampler = StepBatches(len(train), bs, cfg.seed, SAMPLER_SALT, drop_last=False)
    spe = sampler.steps_per_epoch
    if cfg.max_steps > 0:
        steps2 = cfg.max_steps
    elif cfg.epochs > 0:
        steps2 = cfg.epochs * spe
    elif deadline:
        steps2 = UNBOUNDED
    else:
        steps2 = default_steps(len(train), bs)
        say(f"train-landmarks: no --max-steps, --epochs or --time-limit given: {steps2} ITL steps "
            f"for {len(train)} training images (50 epochs, within 500-3000)")
    if cfg.finetune_encoder:
        steps3 = cfg.finetune_steps or (UNBOUNDED if deadline and steps2 == UNBOUNDED else steps2)
    else:
        steps3 = 0

    torch.manual_seed(cfg.seed)
    try:
        net = FabRec(config=mc, itl=cfg.itl or None)
    except ValueError as e:
        raise FabrecError(f"--itl: {e}") from None
    assert net.itl is not None
    active = list(net.itl.active)
    if cfg.heatmap_init not in HEATMAP_INITS:
        raise FabrecError(f"heatmap_init must be one of {', '.join(HEATMAP_INITS)}, got '{cfg.heatmap_init}'")
    if cfg.heatmap_init != "he":  # see LMTrainConfig.heatmap_init; "combine" replaces it below
        torch.nn.init.normal_(net.itl.heatmap.weight, std=1e-3)
    try:
        net.encoder.load_state_dict(ae.nets["encoder"])
        net.generator.load_state_dict(ae.nets["generator"])
    except RuntimeError as e:
        raise FabrecError(f"{autoencoder}: weights do not fit ({str(e).splitlines()[0][:120]})") from None
    ae_encoder = {k: v.detach().clone().cpu() for k, v in net.encoder.state_dict().items()}
    init_from = resolve_init_from(init_from, autoencoder, len(train), say)
    source_heatmap = None
    if state is None and init_from is not None:
        taken, source_heatmap = _init_from_landmarks(net, init_from, scheme, active)
        say(f"train-landmarks: {taken} initialised from {init_from}")
        if source_heatmap is not None and cfg.heatmap_init in ("auto", "combine"):
            _combine_heatmaps(net, source_heatmap, train, train_boxes, mc, scheme, cfg, say)
    elif cfg.heatmap_init == "combine":
        raise FabrecError("heatmap_init=combine needs --init-from a landmark model of another scheme")
    cv = (state or {}).get("cv")
    if state is None and wants_cv(cfg, init_from, source_heatmap, len(train) + len(val), steps2):
        cv = cross_validate_start(cfg, autoencoder, init_from, train + val, out / "cv", device, steps2, say)
    if cv is not None and cv["kept"]:
        steps2, steps3 = 0, 0
    mf = memory_format(dev)
    net.to(dev, memory_format=mf)
    step, best_nme, last_nme = 0, float("inf"), float("nan")
    stage, stage3_start = 2, steps2
    transfer = init_from is not None
    opt = make_optimizer(net, cfg, stage, transfer)
    if state is not None:
        if state.get("kind") != "landmarks" or from_dict(type(mc), state["model"]) != mc:
            raise FabrecError(f"{last}: run folder holds a different model; use another --out")
        for name in ("encoder", "generator", "itl"):
            getattr(net, name).load_state_dict(state["nets"][name])
        if "ae_encoder" in state["nets"]:
            ae_encoder = state["nets"]["ae_encoder"]
        step = int(state["step"])
        saved_stage = stage = int(state.get("stage", 2))
        stage3_start = int(state.get("stage3_start", steps2))
        if stage == 2 and step >= steps2 and steps3:  # an ITL-only run, now finetuned
            stage, stage3_start = 3, step
        transfer = bool(state.get("transfer", False))
        opt = make_optimizer(net, cfg, stage, transfer)
        if saved_stage == stage:
            opt.load_state_dict(state["optim"])
        best_nme = float(state.get("best_nme", float("inf")))
        torch.set_rng_state(state["rng"]["torch"])

    write_text_atomic(out / "config.yaml", dump_yaml(cfg))
    truncate_jsonl(metrics_path, step)

    def payload() -> dict[str, Any]:
        nets = {n: getattr(net, n).state_dict() for n in ("encoder", "generator", "itl")}
        if cfg.finetune_encoder or init_from is not None or "ae_encoder" in (state or {}).get("nets", {}):
            nets["ae_encoder"] = ae_encoder
        return {
            "kind": "landmarks", "model": to_dict(mc), "scheme": scheme.to_dict(), "itl": active,
            "decoder": cfg.decoder, "config": to_dict(cfg), "autoencoder": str(autoencoder),
            "nets": nets, "optim": opt.state_dict(), "stage": stage, "stage3_start": stage3_start,
            "step": step, "best_nme": best_nme, "rng": {"torch": torch.get_rng_state()},
            "train_keys": [s.key for s in train], "val_keys": [s.key for s in val],
            "mean_shape": None if shape is None else shape.tolist(), "transfer": transfer, "cv": cv,
        }

    def end_step() -> int:
        """The step the current stage ends at (without a time limit)."""
        return steps2 if stage == 2 else stage3_start + steps3

    if not val:
        say("train-landmarks: no image fell into the validation split (label a few more, or --set "
            "val_permille=...): best.pt will be the last step")
    say(f"train-landmarks: {len(train)} training images, {len(val)} validation images, "
        + ("ITLs" if steps2 == UNBOUNDED else f"{steps2} ITL steps")
        + ("" if not steps3 else (" + finetuning" if steps3 == UNBOUNDED else f" + {steps3} finetune steps"))
        + (f", at most {time_limit:g} min" if deadline else "")
        + (f" ({100 * cfg.itl_time_share:.0f}% for the ITL stage)" if deadline and steps3 else ""))
    planned = (stage3_start if stage == 3 else steps2) + steps3
    bar = tqdm(total=planned if planned < UNBOUNDED // 2 else None, initial=step, disable=not progress, unit="step",
               desc="train-landmarks", dynamic_ncols=True)
    val_cache = MemoryDataset(val_ds)
    start_nme = float("nan")
    if validate_start and val and step == 0:
        start_nme = validation_nme(net, scheme, val_cache, cfg.decoder)
    skipped, stopped, n2, n3 = 0, "steps", 0, 0
    sampler.set_range(step, None)
    loader = step_loader(train_ds, sampler, collate_landmarks, cfg.num_workers, cfg.seed, dev)
    set_trainable(net, stage)
    with graceful_stop() as stop:
        if step >= end_step() and not (stage == 2 and steps3):
            stopped = "steps"
        else:
            for batch, sk in loader:
                skipped += sk
                if batch is not None:
                    batch = {k: v.to(dev, non_blocking=True) for k, v in batch.items()}
                    batch["image"] = batch["image"].contiguous(memory_format=mf)
                    try:
                        loss = lm_step(net, opt, batch, cfg, step)
                    except NonFiniteLoss as e:
                        if cfg.on_nonfinite != "skip":
                            raise
                        say(f"skipped a batch: {e}")
                        loss = float("nan")
                step += 1
                if stage == 2:
                    n2 += 1
                else:
                    n3 += 1
                bar.update(1)
                if step % cfg.log_every == 0 and batch is not None:
                    bar.set_postfix(loss=f"{loss:.4g}", stage=stage)
                    append_jsonl(metrics_path, {"step": step, "stage": stage, "loss": loss})
                stage_over = step >= end_step() or (
                    stage == 2 and steps3 and deadline.passed(cfg.itl_time_share))
                out_of_time = deadline.passed()
                if step % cfg.val_every == 0 or stage_over or out_of_time:
                    last_nme = validation_nme(net, scheme, val_cache, cfg.decoder)
                    set_trainable(net, stage)
                    append_jsonl(metrics_path, {"step": step, "stage": stage, "val_nme": last_nme, "skipped": skipped})
                    bar.set_postfix(val_nme=f"{last_nme:.2f}", stage=stage)
                    if last_nme < best_nme:
                        best_nme = last_nme
                        save_checkpoint(best, payload())
                if stage == 2 and stage_over and steps3 and not out_of_time:
                    stage, stage3_start = 3, step
                    opt = make_optimizer(net, cfg, stage, transfer)
                    say(f"train-landmarks: stage 3, encoder finetuning from step {step}")
                    stage_over = False
                done = stage_over or out_of_time or stop.requested
                if step % cfg.checkpoint_every == 0 or done:
                    save_checkpoint(last, payload())
                if done:
                    stopped = "signal" if stop.requested else ("time" if out_of_time and not stage_over else "steps")
                    break
    bar.close()
    if stopped == "signal":
        raise TrainingInterrupted(step, str(last))
    if not best.exists() or not val:  # without validation, best.pt is the last step
        save_checkpoint(best, payload())
    if not last.exists():  # nothing to train (the cross-validation kept the start model)
        save_checkpoint(last, payload())
    if skipped:
        say(f"train-landmarks: {skipped} unreadable image(s) skipped")
    return LandmarkRun(step, best_nme, last_nme, out, len(train), len(val), time.time() - t0, stopped, n2, n3,
                       start_nme)


def _frames(train: list, val: list, mc: Any, say: Callable[[str], None]) -> tuple[Any, Any, np.ndarray | None]:
    """Crops of the training and validation faces under ``mc.framing``: ``detector`` runs the
    default detector on every photo (:mod:`fabrec.label_framing`) and returns the mean shape
    too; ``landmarks`` leaves the crops to the points' extent (None, None, None)."""
    if mc.framing != "detector":
        return None, None, None
    det = labels_detector()
    framing = (mc.crop_top, mc.crop_bottom)
    tr = frame_labels(train, det, framing)
    va = frame_labels(val, det, framing, tr.shape) if val else None
    say(f"train-landmarks: framing by the {det.name} detector, as predict frames faces: "
        f"{tr.detected} of {len(train)} training faces found"
        + (f", {va.detected} of {len(val)} validation faces" if va else "")
        + " (the others framed by their labels' fit to the mean shape)")
    return tr.boxes, (va.boxes if va else None), tr.shape


SAMPLER_SALT = 104729  # keeps the batch order of runs made before the shared sampler


FEW_SHOT_MAX = 100  # --init-from auto transfers from the bundled model up to this many training images
HEATMAP_INITS = ("auto", "small", "he", "combine")


def resolve_init_from(init_from: str | Path | None, autoencoder: str | Path, train_count: int,
                      say: Callable[[str], None]) -> str | Path | None:
    """``auto`` (the CLI's default): the bundled landmark model when training on the bundled
    autoencoder with at most FEW_SHOT_MAX images (few-shot: transfer), else nothing (the paper's
    new ITLs); ``none`` -> None; anything else is a model spec, kept."""
    if init_from is None or str(init_from) == "none":
        return None
    if str(init_from) != "auto":
        return init_from
    if str(autoencoder) == "default" and train_count <= FEW_SHOT_MAX:
        say(f"train-landmarks: {train_count} training images: starting from the bundled landmark model "
            "(--init-from auto; --init-from none trains new ITLs, the paper's way)")
        return "default"
    return None


def read_training(cfg: LMTrainConfig, scheme: Scheme, say: Callable[[str], None]) -> tuple[list, list]:
    """(training, validation) samples of ``cfg``'s dataset: the hash split, then the training
    count drawn from the pool."""
    res = read_dataset(cfg.dataset, cfg.root, cfg.split, scheme)
    for p in res.problems:
        say(f"skipped: {p}")
    pool, val = split_pool(res.samples, cfg.val_permille, cfg.val_max)
    if not pool:
        raise FabrecError(f"{cfg.root}: no training images left after the validation split")
    return choose_training(pool, parse_count(cfg.train_count), cfg.sample, cfg.seed), val


SELECTS = ("auto", "cv", "none")


def wants_cv(cfg: LMTrainConfig, init_from: Any, source_heatmap: Any, labelled: int, steps: int) -> bool:
    """Whether k-fold cross-validation decides between the start model and training (see
    ``LMTrainConfig.select``): ``auto`` when adapting a landmark model of the same scheme with at
    most FEW_SHOT_MAX labelled images, ``cv`` whenever starting from a landmark model."""
    if cfg.select not in SELECTS:
        raise FabrecError(f"select must be one of {', '.join(SELECTS)}, got '{cfg.select}'")
    if init_from is None or steps >= UNBOUNDED // 2 or cfg.select == "none":
        return False
    return cfg.select == "cv" or (source_heatmap is None and labelled <= FEW_SHOT_MAX)


def cross_validate_start(cfg: LMTrainConfig, autoencoder: str | Path, init_from: str | Path,
                         train: list[LandmarkSample], out: Path, device: str, steps: int,
                         say: Callable[[str], None]) -> dict[str, Any]:
    """k-fold cross-validation on the labelled images (training and validation ones): on each
    held-out fold, the NME of the start model against that of a run of ``steps`` steps on the
    other folds (both measured by the fold's run, on its crops).
    Returns ``{"folds", "start_nme", "trained_nme", "kept"}``; ``kept`` (the start model is the
    result) unless training lowered the NME on every held-out fold: conservative by design, as a
    model that already works must not get worse from a handful of labels."""
    k = max(2, min(cfg.cv_folds, len(train)))
    order = np.random.default_rng(cfg.seed).permutation(len(train))
    start, trained = [], []
    for f in range(k):
        held = set(order[f::k].tolist())
        fit = [s for i, s in enumerate(train) if i not in held]
        check = [s for i, s in enumerate(train) if i in held]
        r = train_landmarks(replace(cfg, select="none", max_steps=steps, epochs=0), autoencoder, out / f"fold{f}",
                            device, progress=False, init_from=init_from, samples=(fit, check), validate_start=True)
        start.append(r.start_nme)
        trained.append(r.last_nme)
    s0, s1 = float(np.mean(start)), float(np.mean(trained))
    kept = not all(b < a for a, b in zip(start, trained))
    say(f"train-landmarks: {k}-fold cross-validation on the {len(train)} labelled images: held-out NME "
        f"{s0:.2f}% as started, {s1:.2f}% after {steps} steps (mean of the folds) -> "
        + ("keeping the start model (--set select=none trains regardless)" if kept else "training"))
    return {"folds": k, "start_nme": start, "trained_nme": trained, "kept": kept}


def _combine_heatmaps(net: FabRec, source: torch.Tensor, train: list, boxes: Any, mc: Any, scheme: Scheme,
                      cfg: LMTrainConfig, say: Callable[[str], None]) -> None:
    """Start the new heatmap layer as fitted combinations of the source model's channels
    (:mod:`fabrec.heatmap_transfer`), on at most 100 un-augmented training crops."""
    from fabrec.heatmap_transfer import combined_heatmap_weight

    items = MemoryDataset(LandmarkDataset(train[:100], scheme, mc.image_size, heatmap_size(mc.image_size),
                                          (mc.crop_top, mc.crop_bottom), None, cfg.sigma, heatmaps=False,
                                          boxes=None if boxes is None else boxes[:100])).items
    if not items:
        return
    crops = torch.stack([it["image"] for it in items])
    points = torch.stack([it["points"] for it in items])
    assert net.itl is not None
    net.itl.heatmap.weight.data.copy_(combined_heatmap_weight(net, source, crops, points, cfg.sigma))
    say(f"train-landmarks: heatmap layer started as combinations of the source model's {source.shape[1]} "
        f"channels, fitted on {len(items)} training crops (heatmap_init={cfg.heatmap_init})")


def _init_from_landmarks(net: FabRec, spec: str | Path, scheme: Scheme,
                         active: list[int]) -> tuple[str, torch.Tensor | None]:
    """Encoder and transfer layers of a landmark model (same ITL set), and its heatmap layer
    when the scheme is the same; returns what was taken and, for a new scheme, the source's
    heatmap weight ``(C, L, 4, 4)`` (the new layer starts fresh or as combinations of it: the
    3x3 transfer layers are scheme-independent, only the last layer maps features to points)."""
    src = read_spec(spec)
    if src["kind"] != "landmarks":
        raise FabrecError(f"--init-from {spec}: not a landmark model")
    if list(src["itl"]) != active:
        raise FabrecError(f"--init-from {spec}: its ITL set {src['itl']} differs from this run's {active}")
    same = list(src["scheme"]["points"]) == list(scheme.names)
    itl = {k: v for k, v in src["nets"]["itl"].items() if same or not k.startswith("heatmap.")}
    try:
        net.encoder.load_state_dict(src["nets"]["encoder"])
        net.itl.load_state_dict(itl, strict=same)  # type: ignore[union-attr]
    except RuntimeError as e:
        raise FabrecError(f"--init-from {spec}: weights do not fit ({str(e).splitlines()[0][:120]})") from None
    gen_src = src["nets"]["generator"]
    own = net.generator.state_dict()
    if any(not torch.allclose(own[k].float(), gen_src[k].float(), rtol=1e-2, atol=1e-3) for k in own if k in gen_src):  # fp16 exports
        raise FabrecError(f"--init-from {spec}: it was trained on another autoencoder than --autoencoder")
    if same:
        return "encoder, transfer layers and heatmap layer", None
    return (f"encoder and transfer layers (a new heatmap layer for the {scheme.num_points}-point scheme)",
            src["nets"]["itl"]["heatmap.weight"].float())


class MemoryDataset(Dataset):
    """Every readable item of an un-augmented landmark dataset (built with ``heatmaps=False``),
    read once and kept."""

    def __init__(self, ds: LandmarkDataset) -> None:
        self.items = []
        for i in range(len(ds)):
            it = ds[i]
            if it is not None:
                self.items.append(it)
        self.samples, self.image_size = ds.samples, ds.image_size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.items[i]
