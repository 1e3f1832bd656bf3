"""Checkpoints: atomic full-state save, safe (``weights_only``) load, shape-matched init."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fabrec.errors import FabrecError
from fabrec.io import atomic_write

FORMAT = "fabrec-checkpoint"
VERSION = 1


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` (plus format tags) to ``path`` atomically (temp file, fsync, rename)."""
    payload = {"format": FORMAT, "version": VERSION, **state}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def _looks_like_torch_file(p: Path) -> bool:
    """Whether ``p`` can be a ``torch.save`` file: a zip archive (the format since PyTorch 1.6)
    or a legacy pickle (protocol 2 or later starts with byte 0x80)."""
    if zipfile.is_zipfile(p):
        return True
    with open(p, "rb") as f:
        return f.read(1) == b"\x80"


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint without running any pickled code (``torch.load(weights_only=True)``).

    Raises :class:`FabrecError` naming the file if it is missing, truncated, not a fabrec
    checkpoint, or carries pickled objects other than tensors and plain containers.
    """
    p = Path(path)
    if not p.is_file():
        raise FabrecError(f"{p}: checkpoint not found")
    if not _looks_like_torch_file(p):
        raise FabrecError(f"{p}: not a model file (give a bundled model's name, a .safetensors file or a "
                          "training .pt checkpoint)")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsafe content"
        raise FabrecError(f"{p}: refused, the file holds pickled code or objects ({first[:120]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FabrecError(f"{p}: not a readable checkpoint ({msg[:120]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise FabrecError(f"{p}: not a fabrec checkpoint")
    if state.get("version", 0) > VERSION:
        raise FabrecError(f"{p}: checkpoint format v{state.get('version')} is newer than this fabrec")
    return state


def load_matching(module: nn.Module, source: dict[str, torch.Tensor], where: str) -> list[str]:
    """Copy every tensor of ``source`` into ``module`` (the paper's 128 -> 256 growth).

    Tensors whose name exists in both must have equal shapes (else :class:`FabrecError`).
    Returns the names of ``module``'s tensors that were not in ``source`` (freshly initialised).
    Tensors of ``source`` unknown to ``module`` are an error too: nothing is dropped silently.
    """
    own = module.state_dict()
    bad = [
        f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in source.items()
        if k in own and own[k].shape != v.shape
    ]
    if bad:
        raise FabrecError(f"{where}: tensor shapes differ: {'; '.join(bad[:3])}")
    unknown = [k for k in source if k not in own]
    if unknown:
        raise FabrecError(f"{where}: tensors not in this model: {', '.join(unknown[:5])}")
    missing = [k for k in own if k not in source]
    module.load_state_dict(source, strict=False)
    return missing
