"""The model file: one schema, one writer and one reader for every trained fabrec model.

Every model fabrec writes -- a training checkpoint (``last.pt``, ``best.pt``) or published
fp16 weights (``.safetensors``, :mod:`fabrec.weights`) -- holds a :class:`ModelFile`:

- ``kind``: ``landmarks`` (encoder, generator, transfer layers) or ``autoencoder`` (encoder,
  generator, and the discriminators ``dz``, ``dx`` when written by a training run);
- ``model``: the architecture (:class:`~fabrec.config.ModelConfig`, ``arch`` included);
- ``nets``: one state dict per network;
- for landmark models: ``scheme``, the active ``itl``, ``decoder``, ``mean_shape``.

A training checkpoint adds its training state (optimiser, step, RNG, config ...) beside these
keys; :attr:`ModelFile.training` keeps it. A *spec* names a model file: a bundled name
(``default``), a ``.safetensors`` file or a training ``.pt``; :func:`read_model_file` is the only
place that decides what a spec is.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fabrec import weights as W
from fabrec.checkpoint import load_checkpoint
from fabrec.config import ModelConfig, from_dict, to_dict
from fabrec.errors import FabrecError

KINDS = ("landmarks", "autoencoder")
NETS = {"landmarks": ("encoder", "generator", "itl", "ae_encoder"),
        "autoencoder": ("encoder", "generator", "dz", "dx")}
REQUIRED = {"landmarks": ("encoder", "generator", "itl"), "autoencoder": ("encoder", "generator")}
# per-model values: fitted for one file's networks and kept beside them (ModelFile fields)
VALUES = ("face_filter", "min_confidence", "orientation", "head_pose")
LAYOUT = ("kind", "model", "nets", "scheme", "itl", "decoder", "mean_shape", *VALUES)
PAPER_256 = "paper-256"  # the paper's 256-px architecture with random weights, for speed measurements


@dataclass
class ModelFile:
    """What a model file holds (see the module docstring). Tensors are fp32 once read."""

    kind: str
    model: ModelConfig
    nets: dict[str, dict[str, torch.Tensor]]
    scheme: dict[str, Any] | None = None
    itl: list[int] | None = None
    decoder: str = "reference"
    mean_shape: list[list[float]] | None = None
    # per-model values that travel with the weights, so the file behaves the same whatever name or
    # path loads it: the face filter fitted for it (fabrec.face_filter, as a dict) and the mean
    # point confidence under which detected faces are dropped when no filter is used
    face_filter: dict[str, Any] | None = None
    min_confidence: float = 0.0
    orientation: dict[str, Any] | None = None  # fabrec.orientation.OrientationChooser, as a dict
    head_pose: dict[str, Any] | None = None  # fabrec.head_pose.PoseCorrection, as a dict
    source: str = "model"
    training: dict[str, Any] = field(default_factory=dict)

    def state(self) -> dict[str, Any]:
        """The one writer of the layout: a plain dict for :func:`fabrec.checkpoint.save_checkpoint`
        (merged with a run's training state) or :func:`fabrec.weights.export_weights`."""
        out: dict[str, Any] = {"kind": self.kind, "model": to_dict(self.model), "nets": self.nets}
        if self.kind == "landmarks":
            out |= {"scheme": self.scheme, "itl": list(self.itl or []), "decoder": self.decoder,
                    "mean_shape": self.mean_shape, **{k: getattr(self, k) for k in VALUES}}
        return out

    @staticmethod
    def from_state(state: dict[str, Any], source: str = "model") -> ModelFile:
        """The one reader of the layout (a checkpoint's or weights file's dict); the keys it
        does not know are the training state."""
        kind = state.get("kind")
        if kind not in KINDS:
            raise FabrecError(f"{source}: not a landmark or autoencoder model (kind={kind!r})")
        model = state.get("model")
        if model is None and isinstance(state.get("config"), dict):  # autoencoder runs before v0.9
            model = state["config"].get("model")
        if not isinstance(model, dict) or not isinstance(state.get("nets"), dict):
            raise FabrecError(f"{source}: model file without its model config or networks")
        nets = state["nets"]
        unknown = [n for n in nets if n not in NETS[kind]]
        missing = [n for n in REQUIRED[kind] if n not in nets]
        if unknown or missing:
            what = f"unexpected networks {unknown}" if unknown else f"no {missing[0]} tensors"
            raise FabrecError(f"{source}: {what}")
        mf = ModelFile(kind, from_dict(ModelConfig, model), dict(nets), source=source,
                       training={k: v for k, v in state.items() if k not in LAYOUT})
        if kind == "landmarks":
            mf = replace(mf, scheme=state["scheme"], itl=list(state["itl"]),
                         decoder=state.get("decoder") or "reference", mean_shape=state.get("mean_shape"),
                         **{k: state.get(k) for k in VALUES if k != "min_confidence"},
                         min_confidence=float(state.get("min_confidence") or 0.0))
        return mf

    def load_net(self, name: str, module: nn.Module, strict: bool = True) -> nn.Module:
        """Copy network ``name``'s tensors into ``module``; one clear error when they do not fit."""
        try:
            module.load_state_dict(self.nets[name], strict=strict)
        except (RuntimeError, KeyError) as e:
            raise FabrecError(f"{self.source}: weights do not fit the model ({str(e).splitlines()[0][:120]})") from None
        return module

    def autoencoder(self) -> ModelFile:
        """The stage-1 autoencoder inside this file: itself for an autoencoder; for a landmark
        model its generator and its autoencoder's encoder (``ae_encoder`` when the encoder was
        finetuned, else its never-finetuned ``encoder``)."""
        if self.kind == "autoencoder":
            return self
        enc = self.nets.get("ae_encoder") or self.nets["encoder"]
        return ModelFile("autoencoder", replace(self.model, num_landmarks=0),
                         {"encoder": enc, "generator": self.nets["generator"]}, source=self.source)


def is_bundled(spec: str | Path) -> bool:
    """Whether ``spec`` names bundled weights (``default``, or a name in ``fabrec/pretrained``)."""
    s = str(spec)
    return s == "default" or (not Path(s).exists() and "/" not in s and (W.WEIGHTS_DIR / f"{s}.safetensors").exists())


def read_model_file(spec: str | Path) -> ModelFile:
    """The model file behind a spec. Bundled names are checked against their SHA-256,
    ``.safetensors`` files are parsed without running code, ``.pt`` checkpoints load with
    ``weights_only``."""
    s = str(spec)
    p = Path(s)
    if s == PAPER_256:
        raise FabrecError(f"{PAPER_256} has random weights: it is for speed measurements only")
    if is_bundled(s):
        return ModelFile.from_state(W.read_weights(W.bundled(s)), s)
    if p.suffix == ".safetensors":
        return ModelFile.from_state(W.read_weights(p), s)
    if not p.exists() and p.suffix not in (".pt", ".pth"):
        have = sorted(q.stem for q in W.WEIGHTS_DIR.glob("*.safetensors"))
        raise FabrecError(f"{s}: no such model file, and not a bundled name (bundled: {', '.join(have + [PAPER_256])})")
    return ModelFile.from_state(load_checkpoint(p), s)


def read_autoencoder(spec: str | Path) -> ModelFile:
    """The autoencoder inside any spec (:meth:`ModelFile.autoencoder`), e.g. to train
    transfer layers on or to continue stage 1 from."""
    return read_model_file(spec).autoencoder()


def export_weights(source: str | Path | ModelFile, out: str | Path, extra: dict[str, Any] | None = None) -> str:
    """A model file (or a spec of one) -> published fp16 safetensors at ``out`` (atomic);
    training state is left out. Returns the file's SHA-256."""
    mf = source if isinstance(source, ModelFile) else read_model_file(source)
    return W.write_weights(mf.state(), out, extra)


def with_values(model: str | Path, out: str | Path, **values: Any) -> str:
    """Write ``model`` (a spec) to ``out`` (``.safetensors``) with per-model values changed
    (:data:`VALUES`: :class:`ModelFile` fields); the
    networks stay as they are. Returns the new file's SHA-256."""
    return export_weights(replace(read_model_file(model), **values), out)


def with_face_filter(model: str | Path, flt: Any, out: str | Path,
                     min_confidence: float | None = None) -> str:
    """:func:`with_values` for the face filter ``flt`` (:class:`fabrec.face_filter.FaceFilter`,
    None: without one) and, if given, ``min_confidence`` (the cut used without the filter)."""
    values: dict[str, Any] = {"face_filter": None if flt is None else flt.to_dict()}
    if min_confidence is not None:
        values["min_confidence"] = float(min_confidence)
    return with_values(model, out, **values)
