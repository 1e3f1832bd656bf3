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


def write_weights(state: dict[str, Any], out: str | Path, extra: dict[str, Any] | None = None) -> str:
    """A model file's layout (:meth:`fabrec.model_file.ModelFile.state`) -> fp16 safetensors at
    ``out`` (atomic): tensors named ``net.param``, the other keys as JSON metadata. Returns the
    file's SHA-256."""
    tensors: dict[str, torch.Tensor] = {}
    for net, sd in state["nets"].items():
        for k, v in sd.items():
            tensors[f"{net}.{k}"] = (v.half() if v.dtype.is_floating_point else v).contiguous()
    meta: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    meta |= {k: v for k, v in state.items() if k != "nets" and v is not None}
    if meta.get("mean_shape") is not None:
        meta["mean_shape"] = [[float(v) for v in row] for row in meta["mean_shape"]]
    meta.update(extra or {})
    atomic_write(out, lambda tmp: save_file(tensors, tmp, metadata={"fabrec": json.dumps(meta)}))
    return sha256(out)


def read_weights(path: str | Path) -> dict[str, Any]:
    """Read a weights file into its layout dict (``kind``, ``model``, ``nets`` and, for landmark
    models, ``scheme``, ``itl``, ``decoder``) with fp32 tensors; :class:`fabrec.model_file.ModelFile`
    checks it. Only safetensors is parsed: no code runs."""
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
    nets: dict[str, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        net, _, name = k.partition(".")
        nets.setdefault(net, {})[name] = v.float() if v.dtype.is_floating_point else v
    return {**info, "kind": info.get("kind", "landmarks"), "nets": nets}


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
