"""Frozen dataclass configuration, YAML round-trip and ``a.b=value`` overrides."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from fabrec.errors import FabrecError

T = TypeVar("T")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and the face framing it was trained on.

    ``crop_top`` / ``crop_bottom``: when a crop is made from landmarks, the landmarks' extent
    ``h`` is grown by ``crop_top * h`` above and ``crop_bottom * h`` below, then squared. The
    paper's rule is 0.25 / 0.15; a model trained on other framings (e.g. UTKFace chips:
    0.18 / 0.01, measured with dlib on 233 chips) carries its own.

    ``framing``: how a landmark model's training crops were made (:mod:`fabrec.faces.framing`):
    ``landmarks`` (the paper's: from the labelled points' extent) or ``detector`` (from the
    face detector's five points on each training photo, the way ``predict`` frames faces).
    Files written before this field existed were framed by ``landmarks``.

    ``arch``: the encoder/generator pair, by name in :data:`fabrec.registry.ARCHITECTURES`
    (files written before this field existed are ``resnet18``, the paper's).
    """

    image_size: int = 128
    width: float = 1.0
    latent_dim: int = 99
    num_landmarks: int = 68
    crop_top: float = 0.25
    crop_bottom: float = 0.15
    framing: str = "landmarks"
    arch: str = "resnet18"


@dataclass(frozen=True)
class AELossConfig:
    """Autoencoder loss weights. total = w_rec*L_rec + w_cs*L_cs + w_adv*L_adv + w_enc*L_enc.

    Defaults follow the authors' mix: 0.5*L_rec + 0.5*60*L_cs + L_adv + L_enc.
    """

    w_rec: float = 0.5
    w_cs: float = 30.0
    w_adv: float = 1.0
    w_enc: float = 1.0
    cs_window: int = 31
    cs_sigma: float = 1.5


@dataclass(frozen=True)
class AEScheduleConfig:
    """Update frequencies (in iterations) and the loss curriculum (1-based epochs)."""

    dz_every: int = 4
    enc_every: int = 2
    dx_every: int = 2
    curriculum: bool = True
    adv_from_epoch: int = 2
    cs_from_epoch: int = 3


@dataclass(frozen=True)
class OptimConfig:
    """Adam settings for E, G, D_z (``lr``) and D_x (``lr_dx``)."""

    lr: float = 2e-5
    lr_dx: float = 1e-5
    beta1: float = 0.0
    beta2: float = 0.999


@dataclass(frozen=True)
class AugmentConfig:
    """Random affine augmentation drawn per sample (one matrix moves image and points).

    ``border`` is the fill for pixels from outside the photo: ``constant`` (black, as the
    authors) or ``reflect`` / ``replicate``.
    """

    flip: float = 0.5
    rotate: float = 45.0
    translate: float = 0.04
    scale_min: float = 0.94
    scale_max: float = 1.03
    shear: float = 5.0
    occlusion: float = 0.0
    border: str = "constant"


@dataclass(frozen=True)
class DataConfig:
    """Unlabeled face sources and the validation split."""

    paths: tuple[str, ...] = ()
    boxes: tuple[str, ...] = ()
    val_permille: int = 20
    val_max: int = 500
    num_workers: int = 2


@dataclass(frozen=True)
class AETrainConfig:
    """Everything an autoencoder run needs; saved as ``config.yaml`` and in checkpoints."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: AELossConfig = field(default_factory=AELossConfig)
    schedule: AEScheduleConfig = field(default_factory=AEScheduleConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    data: DataConfig = field(default_factory=DataConfig)
    batch_size: int = 100
    epochs: int = 50
    max_steps: int = 0
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 20
    val_every_epochs: int = 1  # validation, grids and a checkpoint every N epochs (and at the end)
    grid_size: int = 8
    amp: str = "auto"  # "none", "bf16" or "auto": bf16 on CPUs with AMX (fabrec.runtime.resolve_amp)
    on_nonfinite: str = "stop"  # "stop": exit naming the step; "skip": drop the batch, go on


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict (lists for tuples) suitable for YAML and ``weights_only`` checkpoints."""

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        return v

    return conv(cfg)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise FabrecError(f"config: '{where}' must be a mapping, got {value!r}")
        return from_dict(tp, value, where)
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            value = [value]
        (inner, *_) = typing.get_args(tp)
        return tuple(_coerce(inner, v, where) for v in value)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _coerce(args[0], value, where)
    try:
        if tp is bool and isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        if tp in (int, float, str, bool):
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return tp(value)
    except (TypeError, ValueError):
        raise FabrecError(f"config: '{where}' must be {tp.__name__}, got {value!r}") from None
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass ``cls`` from a nested dict; unknown keys are an error."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise FabrecError(f"config: unknown key(s) {', '.join(where + k for k in unknown)}")
    kwargs = {k: _coerce(hints[k], v, f"{where}{k}") for k, v in data.items()}
    return cls(**kwargs)


def apply_overrides(cfg: T, overrides: list[str]) -> T:
    """Apply ``["a.b=value", ...]`` (values parsed as YAML scalars) to a frozen config."""
    data = to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise FabrecError(f"--set expects key=value, got '{item}'")
        key, raw = item.split("=", 1)
        node = data
        parts = key.split(".")
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                raise FabrecError(f"--set: unknown config key '{key}'")
            node = node[p]
        if parts[-1] not in node:
            raise FabrecError(f"--set: unknown config key '{key}'")
        node[parts[-1]] = yaml.safe_load(raw)
    return from_dict(type(cfg), data)


def load_yaml(cls: type[T], path: str | Path) -> T:
    """Read a YAML recipe into ``cls``; a missing or malformed file is a :class:`FabrecError`."""
    p = Path(path)
    if not p.is_file():
        raise FabrecError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise FabrecError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise FabrecError(f"{p}: expected a mapping at the top level")
    return from_dict(cls, data)


def dump_yaml(cfg: Any) -> str:
    """YAML text of a config dataclass."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def landmark_augment() -> AugmentConfig:
    """The landmark stage's augmentation: flip, rotation ±30°, translation ±4%, scale ±5%,
    occlusion; no shear."""
    return AugmentConfig(
        flip=0.5, rotate=30.0, translate=0.04, scale_min=0.95, scale_max=1.05, shear=0.0,
        occlusion=0.5,
    )


@dataclass(frozen=True)
class LMTrainConfig:
    """A landmark (ITL) run: data, few-shot selection, stages, optimiser, targets."""

    dataset: str = "300w"
    root: str = ""
    split: str = "train"
    scheme: str = "68"
    train_count: str = "all"
    sample: str = "random"
    seed: int = 0
    itl: tuple[int, ...] = ()  # () = every ITL (1,2,3,4; 1,2,3 for 64-px models)
    batch_size: int = 16
    max_steps: int = 0
    epochs: int = 0
    finetune_encoder: bool = False
    finetune_steps: int = 0
    itl_time_share: float = 0.3  # with --time-limit and finetuning: stage 2's share of the time
    lr: float = 1e-3
    # stage-2 learning rate when the run starts from a trained landmark model (--init-from, the
    # few-shot default): its transfer layers stay close to what they learnt. Chosen on 200 held-out
    # HELEN-train faces (5 new points from 10 other HELEN-train images, 500 steps, NME %):
    # 1e-3: 5.96, 1e-4: 5.22, 3e-5: 4.97, 1e-5: 4.84, 3e-6: 4.97 (README: Few-shot).
    transfer_lr: float = 1e-5
    beta1: float = 0.9
    beta2: float = 0.999
    finetune_lr_itl: float = 1e-4
    finetune_lr_encoder: float = 2e-5
    sigma: float = 7.0
    loss_scale: float = 300.0
    # Initial heatmap layer: "small" = N(0, 1e-3^2) weights, so training starts from flat maps;
    # "he" = He-normal (the other layers' rule). Measured: 10 HELEN images, 300 ITL steps from the
    # bundled autoencoder, validation NME 16.8% (small) against 121.6% (he, no peaks yet).
    # "combine": starting from a landmark model of another scheme (--init-from), each new channel
    # is a ridge-fitted combination of that model's channels (fabrec.transfer);
    # "auto" = combine when starting from another scheme's model, else small.
    heatmap_init: str = "auto"
    decoder: str = "reference"
    # Whether training should happen at all: "auto" = when adapting a landmark model of the same
    # scheme (--init-from, e.g. the bundled model to a new kind of face) with at most 100 labelled
    # images, cv_folds-fold cross-validation on them compares the start model with a trained one
    # on held-out folds and keeps the start model unless training lowered the NME on every fold;
    # "cv" = also for a new scheme; "none" = always train.
    select: str = "auto"
    cv_folds: int = 2
    # "bf16": the network's forward pass under bfloat16 autocast (loss and optimiser in fp32);
    # "auto": bf16 on CPUs with AMX, else none (fabrec.runtime.resolve_amp; README: Speed)
    amp: str = "auto"
    # "detector": training crops from the face detector's five points (as predict frames every
    # face; fabrec's default); "landmarks": from the labelled points' extent (the paper's way).
    framing: str = "detector"
    augment: AugmentConfig = field(default_factory=landmark_augment)
    val_permille: int = 100
    val_max: int = 100
    val_every: int = 100
    on_nonfinite: str = "stop"
    checkpoint_every: int = 200
    log_every: int = 10
    num_workers: int = 1
