"""A trained landmark model (encoder + generator + ITLs) with its scheme and framing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fabrec.config import ModelConfig, from_dict
from fabrec.errors import FabrecError
from fabrec.heatmaps import DECODERS, heatmap_to_crop
from fabrec.model import FabRec
from fabrec.schemes import Scheme


@dataclass
class LandmarkModel:
    """What is needed to turn face crops into points.

    Attributes:
        net: the FabRec network (eval mode).
        scheme: landmark layout.
        decoder: ``reference`` or ``subpixel``.
    """

    net: FabRec
    scheme: Scheme
    decoder: str = "reference"

    @property
    def config(self) -> ModelConfig:
        return self.net.config

    @property
    def image_size(self) -> int:
        return self.net.config.image_size

    @property
    def framing(self) -> tuple[float, float]:
        return (self.net.config.crop_top, self.net.config.crop_bottom)

    @staticmethod
    def from_state(state: dict[str, Any], where: str = "model") -> LandmarkModel:
        """Rebuild from a landmark checkpoint's dict (``model``, ``itl``, ``scheme``, ``nets``)."""
        if state.get("kind") != "landmarks":
            raise FabrecError(f"{where}: not a landmark model (kind={state.get('kind')!r})")
        mc = from_dict(ModelConfig, state["model"])
        scheme = Scheme.from_dict(state["scheme"], where)
        net = FabRec(config=mc, itl=tuple(state["itl"]))
        for name in ("encoder", "generator", "itl"):
            getattr(net, name).load_state_dict(state["nets"][name])
        return LandmarkModel(net.eval(), scheme, state.get("decoder", "reference"))

    @staticmethod
    def load(spec: str | Path, device: str | torch.device = "cpu") -> LandmarkModel:
        """Any model spec (bundled name, ``.safetensors``, training ``.pt``); see :mod:`fabrec.hub`."""
        from fabrec.hub import load_landmarks

        return load_landmarks(spec, device)

    @torch.no_grad()
    def predict_crops(
        self, x: torch.Tensor, reconstruct: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Crops ``(N, 3, S, S)`` (model space) -> points ``(N, K, 2)`` in crop pixels,
        confidence ``(N, K)``, heatmaps ``(N, K, H, H)``, reconstruction or None."""
        out = self.net(x, reconstruct=reconstruct)
        hm = out.heatmaps.float()
        pts, conf = DECODERS[self.decoder](hm)
        return heatmap_to_crop(pts, self.image_size, hm.shape[-1]), conf, hm, out.reconstruction
