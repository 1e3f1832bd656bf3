"""One loader for every model a command or the API can take.

A *spec* is a bundled name (``default``), ``paper-256`` (the paper's 256-px architecture with
random weights, for speed measurements), a published ``.safetensors`` file or a training
``.pt`` checkpoint. What kind of model a file holds is decided here and nowhere else:

- :func:`load_landmarks` -> a :class:`~fabrec.landmark_model.LandmarkModel` (points).
- :func:`load_autoencoder_state` -> the stage-1 encoder and generator (and discriminators
  when a training checkpoint has them), e.g. to train transfer layers on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from fabrec import weights as W
from fabrec.checkpoint import load_checkpoint
from fabrec.config import AETrainConfig, ModelConfig, from_dict
from fabrec.errors import FabrecError

PAPER_256 = "paper-256"


def read_spec(spec: str | Path) -> dict[str, Any]:
    """The state dict behind a spec, with its ``kind`` (``landmarks`` or ``autoencoder``).

    Bundled names are checked against their SHA-256; ``.safetensors`` files are parsed
    without running code; ``.pt`` checkpoints load with ``weights_only``.
    """
    s = str(spec)
    p = Path(s)
    if s == "default" or (not p.exists() and "/" not in s and (W.WEIGHTS_DIR / f"{s}.safetensors").exists()):
        return W.read_weights(W.bundled(s))  # "default" always: a missing one is named as such
    if p.suffix == ".safetensors":
        return W.read_weights(p)
    if not p.exists() and p.suffix not in (".pt", ".pth"):
        have = sorted(q.stem for q in W.WEIGHTS_DIR.glob("*.safetensors"))
        raise FabrecError(f"{s}: no such model file, and not a bundled name "
                          f"(bundled: {', '.join(have + [PAPER_256])})")
    state = load_checkpoint(p)
    if state.get("kind") not in ("landmarks", "autoencoder"):
        raise FabrecError(f"{p}: checkpoint of unknown kind {state.get('kind')!r}")
    return state


def load_landmarks(spec: str | Path, device: str | torch.device = "cpu"):  # -> LandmarkModel
    """A landmark model (eval mode, on ``device``) from any spec that holds transfer layers."""
    from fabrec.landmark_model import LandmarkModel
    from fabrec.model import FabRec
    from fabrec.schemes import BUILTIN

    if str(spec) == PAPER_256:
        torch.manual_seed(0)
        model = LandmarkModel(FabRec(256, 68).eval(), BUILTIN["68"])
    else:
        state = read_spec(spec)
        if state["kind"] != "landmarks":
            raise FabrecError(f"{spec}: an autoencoder, not a landmark model (train one with train-landmarks)")
        model = LandmarkModel.from_state(state, str(spec))
    model.net.to(device)
    return model


@dataclass
class AutoencoderState:
    """Stage-1 networks as state dicts: ``nets`` has ``encoder`` and ``generator`` (and
    ``dz``, ``dx`` from a training checkpoint); ``model`` is their architecture."""

    model: ModelConfig
    nets: dict[str, dict[str, torch.Tensor]]
    config: AETrainConfig | None = None
    source: str = ""
    notes: list[str] = field(default_factory=list)


def load_autoencoder_state(spec: str | Path) -> AutoencoderState:
    """The autoencoder inside any spec.

    A landmark model gives its generator and its autoencoder's encoder: the ``ae_encoder``
    it ships when its encoder was finetuned, else its own (never finetuned) encoder.
    """
    if str(spec) == PAPER_256:
        raise FabrecError(f"{PAPER_256} has random weights: it is for speed measurements only")
    state = read_spec(spec)
    if state["kind"] == "autoencoder":
        if "config" in state:  # a training checkpoint
            cfg = from_dict(AETrainConfig, state["config"])
            return AutoencoderState(cfg.model, dict(state["nets"]), cfg, str(spec))
        mc = from_dict(ModelConfig, state["model"])
        return AutoencoderState(mc, dict(state["nets"]), None, str(spec))
    mc = replace(from_dict(ModelConfig, state["model"]), num_landmarks=0)
    nets = state["nets"]
    enc = nets.get("ae_encoder") or nets["encoder"]
    return AutoencoderState(mc, {"encoder": enc, "generator": nets["generator"]}, None, str(spec))


def load_autoencoder(spec: str | Path, device: str | torch.device = "cpu"):  # -> Autoencoder
    """An :class:`~fabrec.autoencoder.Autoencoder` (eval mode, on ``device``) from any spec."""
    from fabrec.autoencoder import Autoencoder

    return Autoencoder.from_state(load_autoencoder_state(spec), device)
