"""Loading a trained autoencoder and using it: encode, decode, sample, interpolate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fabrec.architectures import build_encoder, build_generator
from fabrec.config import ModelConfig
from fabrec.io import read_image
from fabrec.model_file import ModelFile, read_model_file
from fabrec.normalization import to_tensor
from fabrec.transforms import Box, crop_matrix, warp
from fabrec.normalization import to_uint8


@dataclass
class Autoencoder:
    """A trained encoder/generator pair (eval mode) and the architecture they share."""

    model: ModelConfig
    encoder: nn.Module
    generator: nn.Module

    @staticmethod
    def from_file(mf: ModelFile, device: str | torch.device = "cpu") -> Autoencoder:
        """Build from a model file (a landmark model's gives its autoencoder, see
        :meth:`~fabrec.model_file.ModelFile.autoencoder`)."""
        ae = mf.autoencoder()
        enc = ae.load_net("encoder", build_encoder(ae.model))
        gen = ae.load_net("generator", build_generator(ae.model))
        return Autoencoder(ae.model, enc.to(device).eval(), gen.to(device).eval())

    @property
    def image_size(self) -> int:
        return self.model.image_size

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
        z = torch.randn(count, self.model.latent_dim, generator=torch.Generator().manual_seed(seed))
        return to_uint8(self.generator(z.to(dev)))

    @torch.no_grad()
    def interpolate(self, a: torch.Tensor, b: torch.Tensor, steps: int) -> np.ndarray:
        """Decode ``steps`` points on the line between the codes of crops ``a`` and ``b``
        (each ``(1, 3, S, S)``): RGB ``uint8 (steps, S, S, 3)``."""
        dev = next(self.generator.parameters()).device
        za, zb = self.encoder(a.to(dev)), self.encoder(b.to(dev))
        t = torch.linspace(0, 1, steps, device=dev)[:, None]
        return to_uint8(self.generator((1 - t) * za + t * zb))


def load_autoencoder(spec: str | Path, device: str | torch.device = "cpu") -> Autoencoder:
    """The autoencoder of any spec (bundled name, ``.safetensors``, training ``.pt``; a landmark
    model's own autoencoder too), in eval mode on ``device``."""
    return Autoencoder.from_file(read_model_file(spec), device)
