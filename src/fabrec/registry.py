"""fabrec's registries: every pluggable part by name, and where its code lives.

Each registry maps a name to ``"module:attribute"``; :func:`resolve` imports the module on first
use, so the command line lists every choice without importing PyTorch. A new dataset format,
face detector, heatmap decoder or backbone is one entry here plus its own module::

    DATASETS["myformat"] = "fabrec.datasets.myformat:read_myformat"   # (root, split, scheme) -> ReadResult

The plain tuples below are switches inside one module (no code to look up).
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from typing import Any

#: Landmark dataset readers: ``reader(root, split, scheme) -> ReadResult``.
DATASETS = {
    "300w": "fabrec.datasets.w300:read_300w",
    "wflw": "fabrec.datasets.wflw:read_wflw",
    "aflw": "fabrec.datasets.aflw:read_aflw",
    "folder": "fabrec.datasets.folder:read_folder_split",
}
#: Face detectors: classes with a ``calibration`` and ``detect(rgb) -> list[Detection]``.
DETECTORS = {
    "yunet": "fabrec.faces.yunet:YuNet",
    "opencv": "fabrec.faces.opencv_cascade:OpenCVCascade",
    "dlib": "fabrec.faces.dlib_hog:DlibHOG",
}
#: Heatmap decoders: ``decode(heatmaps (N, K, H, H)) -> (points (N, K, 2), confidence (N, K))``.
DECODERS = {
    "reference": "fabrec.heatmaps:decode_reference",
    "subpixel": "fabrec.heatmaps:decode_subpixel",
}
#: Backbones (a model file's ``arch``): :class:`fabrec.architectures.Architecture` objects.
ARCHITECTURES = {
    "resnet18": "fabrec.architectures:RESNET18",
}

DEVICES = ("auto", "cpu", "cuda")  # fabrec.runtime.resolve_device
FRAMINGS = ("detector", "landmarks")  # fabrec.faces.framing: how training crops are made
SAMPLES = ("random", "first")  # fabrec.datasets.landmarks.choose_training
AMPS = ("none", "bf16", "auto")  # training precision: fabrec.runtime.resolve_amp


def resolve(registry: dict[str, str], name: str, what: str) -> Any:
    """The object registered as ``name``; one clear error naming the known ones otherwise."""
    if name not in registry:
        from fabrec.errors import FabrecError

        raise FabrecError(f"unknown {what} '{name}' (use one of {', '.join(registry)})")
    return _load(registry[name])


@cache
def _load(target: str) -> Any:
    """``"module:attribute"`` -> the object (imported once; decoding asks on every batch)."""
    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr)
