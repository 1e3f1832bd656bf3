"""ONNX export of the landmark path (and optionally the reconstruction) + onnxruntime runner."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from fabrec.errors import FabrecError
from fabrec.heatmaps import decode_heatmaps
from fabrec.io import atomic_write
from fabrec.landmark_model import LandmarkModel

if TYPE_CHECKING:
    import onnxruntime


class _LandmarkPath(nn.Module):
    """crops ``(N, 3, S, S)`` -> heatmaps ``(N, K, H, H)`` [, reconstruction ``(N, 3, S, S)``]."""

    def __init__(self, model: LandmarkModel, reconstruction: bool) -> None:
        super().__init__()
        self.net = model.net
        self.reconstruction = reconstruction

    def forward(self, x: torch.Tensor):
        out = self.net(x, reconstruct=self.reconstruction)
        if self.reconstruction:
            return out.heatmaps, out.reconstruction
        return out.heatmaps


def export_onnx(model: LandmarkModel, out: str | Path, reconstruction: bool = False, opset: int = 17) -> None:
    """Write an ONNX graph with a dynamic batch axis (input ``images``, outputs ``heatmaps``
    [and ``reconstruction``])."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise FabrecError("ONNX export needs: pip install 'fabrec[onnx]'") from None
    m = _LandmarkPath(model.placed(torch.device("cpu")), reconstruction).eval()
    s = model.image_size
    x = torch.zeros(1, 3, s, s)
    outputs = ["heatmaps", "reconstruction"] if reconstruction else ["heatmaps"]
    axes = {"images": {0: "batch"}, **{o: {0: "batch"} for o in outputs}}

    def write(tmp: str) -> None:
        torch.onnx.export(m, (x,), tmp, input_names=["images"], output_names=outputs,
                          dynamic_axes=axes, opset_version=opset, dynamo=False)

    atomic_write(out, write)


def ort_session(path: str | Path, threads: int = 0) -> onnxruntime.InferenceSession:
    """An onnxruntime CPU session for ``path`` with every graph optimisation, ``threads``
    intra-op threads (0: onnxruntime's default) and no busy-waiting pool threads after a run
    (they would take the cores from what runs next, e.g. decoding)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise FabrecError("the onnxruntime backend needs: pip install 'fabrec[onnx]'") from None
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


class OnnxLandmarks:
    """onnxruntime session for an exported landmark path; same outputs as
    :meth:`LandmarkModel.predict_crops` (points in crop pixels, confidence)."""

    def __init__(self, path: str | Path, image_size: int, decoder: str = "reference", threads: int = 0) -> None:
        self.sess = ort_session(path, threads)
        self.image_size, self.decoder = image_size, decoder

    def heatmaps(self, x: np.ndarray) -> np.ndarray:
        """``(N, 3, S, S) float32`` model-space crops -> heatmaps ``(N, K, H, H)``."""
        return self.sess.run(["heatmaps"], {"images": np.ascontiguousarray(x, np.float32)})[0]

    def predict_crops(self, x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return decode_heatmaps(torch.from_numpy(self.heatmaps(x)), self.decoder, self.image_size)
