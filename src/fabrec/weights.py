"""Published weights: fp16 safetensors with their config, scheme and checksum. Never pickled.

A landmark weights file holds the encoder, generator and ITL tensors (fp16) -- plus
``ae_encoder`` tensors, the autoencoder's own encoder, when the encoder was finetuned -- and,
as safetensors metadata, a JSON ``fabrec`` entry: kind, model config, scheme, active ITLs,
decoder, format version. An autoencoder weights file (kind ``autoencoder``) holds the
encoder and generator, and the two discriminators (``dz``, ``dx``) when it was exported from a
training checkpoint, so that a later run continues the adversarial training where it stopped.
Bundled weights live in ``fabrec/pretrained/`` beside a model card (``*.md``) and a ``*.sha256``
file; they are verified against that checksum before use.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from fabrec.checkpoint import load_checkpoint
from fabrec.errors import FabrecError
from fabrec.io import atomic_write

WEIGHTS_DIR = Path(__file__).resolve().parent / "pretrained"
FORMAT = "fabrec-weights"
VERSION = 1


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


GROUPS = {"landmarks": ("encoder", "generator", "itl", "ae_encoder"),
          "autoencoder": ("encoder", "generator", "dz", "dx")}  # D_z / D_x when the source has them


def export_weights(source: str | Path | dict[str, Any], out: str | Path, extra: dict[str, Any] | None = None) -> str:
    """A landmark or autoencoder model (a training ``.pt`` path or a loaded state dict with
    ``kind``) -> fp16 safetensors at ``out`` (atomic). Returns the file's SHA-256."""
    state = load_checkpoint(source) if isinstance(source, (str, Path)) else source
    kind = state.get("kind")
    if kind not in GROUPS:
        raise FabrecError(f"{source if isinstance(source, (str, Path)) else 'model'}: "
                          f"not a landmark or autoencoder model (kind={kind!r})")
    tensors: dict[str, torch.Tensor] = {}
    for net in GROUPS[kind]:
        for k, v in state["nets"].get(net, {}).items():
            if v.dtype.is_floating_point:
                v = v.half()
            tensors[f"{net}.{k}"] = v.contiguous()
    if kind == "landmarks":
        meta = {"format": FORMAT, "version": VERSION, "kind": kind, "model": state["model"],
                "scheme": state["scheme"], "itl": state["itl"], "decoder": state.get("decoder", "reference")}
        if state.get("mean_shape") is not None:
            meta["mean_shape"] = [[float(v) for v in row] for row in state["mean_shape"]]
    else:
        model = state["model"] if "model" in state else state["config"]["model"]
        meta = {"format": FORMAT, "version": VERSION, "kind": kind, "model": model}
    meta.update(extra or {})
    atomic_write(out, lambda tmp: save_file(tensors, tmp, metadata={"fabrec": json.dumps(meta)}))
    return sha256(out)


def read_weights(path: str | Path) -> dict[str, Any]:
    """Read a weights file into a state dict (``kind``, ``model``, ``nets`` and, for landmark
    models, ``scheme``, ``itl``, ``decoder``) with fp32 tensors. Only safetensors is parsed:
    no code runs."""
    p = Path(path)
    if not p.is_file():
        raise FabrecError(f"{p}: weights file not found")
    try:
        from safetensors import safe_open

        with safe_open(str(p), "pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(p))
    except (SafetensorError, OSError, ValueError) as e:
        raise FabrecError(f"{p}: not a safetensors weights file ({str(e)[:100]})") from None
    try:
        info = json.loads(meta["fabrec"])
    except (KeyError, json.JSONDecodeError):
        raise FabrecError(f"{p}: safetensors file without fabrec metadata") from None
    if info.get("format") != FORMAT or info.get("version", 0) > VERSION:
        raise FabrecError(f"{p}: unsupported weights format {info.get('format')} v{info.get('version')}")
    kind = info.get("kind", "landmarks")
    if kind not in GROUPS:
        raise FabrecError(f"{p}: unknown model kind {kind!r}")
    nets: dict[str, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        net, _, name = k.partition(".")
        if net not in GROUPS[kind]:
            raise FabrecError(f"{p}: unexpected tensor '{k}'")
        nets.setdefault(net, {})[name] = v.float() if v.dtype.is_floating_point else v
    for net in GROUPS[kind][:2] + (("itl",) if kind == "landmarks" else ()):
        if net not in nets:
            raise FabrecError(f"{p}: no {net} tensors")
    return {**info, "kind": kind, "nets": nets}


def bundled(name: str) -> Path:
    """Path of bundled weights ``name`` after checking its SHA-256 against ``name.sha256``."""
    p = WEIGHTS_DIR / f"{name}.safetensors"
    if not p.is_file():
        have = sorted(q.stem for q in WEIGHTS_DIR.glob("*.safetensors"))
        raise FabrecError(f"no bundled weights named '{name}' (available: {', '.join(have) or 'none'})")
    want = (WEIGHTS_DIR / f"{name}.sha256").read_text().split()[0]
    got = sha256(p)
    if got != want:
        raise FabrecError(f"{p}: SHA-256 {got[:12]}... does not match its model card ({want[:12]}...): file damaged")
    return p
