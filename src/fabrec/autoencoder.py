"""Loading a trained autoencoder and using it: encode, decode, sample, interpolate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fabrec.checkpoint import load_checkpoint
from fabrec.config import AETrainConfig, from_dict
from fabrec.datasets.faces import to_tensor
from fabrec.errors import FabrecError
from fabrec.io import read_image
from fabrec.nn import Encoder, Generator
from fabrec.transforms import Box, crop_matrix, warp
from fabrec.visualize import to_uint8


@dataclass
class Autoencoder:
    """A trained encoder/generator pair (eval mode) and its run config."""

    config: AETrainConfig
    encoder: Encoder
    generator: Generator

    @staticmethod
    def load(path: str | Path, device: str | torch.device = "cpu") -> Autoencoder:
        """Read ``path`` (an autoencoder training checkpoint) safely."""
        state = load_checkpoint(path)
        if "nets" not in state:
            raise FabrecError(f"{path}: not an autoencoder checkpoint")
        cfg = from_dict(AETrainConfig, state["config"])
        m = cfg.model
        enc = Encoder(m.image_size, m.latent_dim, m.width)
        gen = Generator(m.image_size, m.latent_dim, m.width)
        enc.load_state_dict(state["nets"]["encoder"])
        gen.load_state_dict(state["nets"]["generator"])
        return Autoencoder(cfg, enc.to(device).eval(), gen.to(device).eval())

    @property
    def image_size(self) -> int:
        return self.config.model.image_size

    def crop(self, path: str | Path, box: Box | None = None) -> torch.Tensor:
        """Image file -> model-space crop ``(1, 3, S, S)`` (whole picture if no box)."""
        img = read_image(path)
        if box is None:
            box = Box((img.shape[1] - 1) / 2.0, (img.shape[0] - 1) / 2.0, float(max(img.shape[:2])))
        return to_tensor(warp(img, crop_matrix(box, self.image_size), self.image_size))[None]

    @torch.no_grad()
    def sample(self, count: int, seed: int = 0) -> np.ndarray:
        """Faces decoded from ``z ~ N(0, I)``: RGB ``uint8 (count, S, S, 3)``."""
        dev = next(self.generator.parameters()).device
        z = torch.randn(count, self.config.model.latent_dim, generator=torch.Generator().manual_seed(seed))
        return to_uint8(self.generator(z.to(dev)))

    @torch.no_grad()
    def interpolate(self, a: torch.Tensor, b: torch.Tensor, steps: int) -> np.ndarray:
        """Decode ``steps`` points on the line between the codes of crops ``a`` and ``b``
        (each ``(1, 3, S, S)``): RGB ``uint8 (steps, S, S, 3)``."""
        dev = next(self.generator.parameters()).device
        za, zb = self.encoder(a.to(dev)), self.encoder(b.to(dev))
        t = torch.linspace(0, 1, steps, device=dev)[:, None]
        return to_uint8(self.generator((1 - t) * za + t * zb))
