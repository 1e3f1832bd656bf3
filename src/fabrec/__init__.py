"""fabrec: 3FabRec few-shot face alignment (Browatzki & Wallraven, CVPR 2020).

The public names below load on first use, so ``import fabrec`` (and the ``fabrec`` command's
start) does not import PyTorch or OpenCV until a model is needed.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "FabRec": "fabrec.model", "FabRecOutput": "fabrec.model", "ModelConfig": "fabrec.config",
    "FabrecError": "fabrec.errors", "FaceResult": "fabrec.results", "LandmarkPredictor": "fabrec.predict",
    "InferenceOptions": "fabrec.inference_options",
    "LandmarkModel": "fabrec.landmark_model", "load_landmark_model": "fabrec.landmark_model",
    "Autoencoder": "fabrec.autoencoder", "load_autoencoder": "fabrec.autoencoder",
}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fabrec' has no attribute {name!r}")
