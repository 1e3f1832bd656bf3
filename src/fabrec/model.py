"""The 3FabRec model: encoder, generator and (optional) interleaved transfer layers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from fabrec.config import ModelConfig
from fabrec.nn import Encoder, Generator, TransferLayers


@dataclass
class FabRecOutput:
    """Result of :meth:`FabRec.forward`.

    Attributes:
        z: latent codes ``(N, latent_dim)``.
        reconstruction: ``(N, 3, S, S)`` in model space, or None if not requested.
        heatmaps: ``(N, L, H, H)``, or None if the model has no transfer layers.
    """

    z: torch.Tensor
    reconstruction: torch.Tensor | None
    heatmaps: torch.Tensor | None


class FabRec(nn.Module):
    """3FabRec: adversarial-autoencoder encoder/generator plus interleaved transfer layers.

    ``FabRec(image_size=256, num_landmarks=68)`` or ``FabRec(config=ModelConfig(...))``.
    Images are ``(N, 3, S, S)`` in model space (see :mod:`fabrec.normalization`).
    """

    def __init__(
        self,
        image_size: int = 128,
        num_landmarks: int = 68,
        width: float = 1.0,
        latent_dim: int = 99,
        config: ModelConfig | None = None,
        itl: Sequence[int] | None = None,
        with_landmarks: bool = True,
    ) -> None:
        super().__init__()
        if config is None:
            config = ModelConfig(image_size, width, latent_dim, num_landmarks)
        self.config = config
        self.encoder = Encoder(config.image_size, config.latent_dim, config.width)
        self.generator = Generator(config.image_size, config.latent_dim, config.width)
        self.itl: TransferLayers | None = None
        # The autoencoder's own encoder, when ``encoder`` was finetuned for landmarks: the
        # generator reconstructs faces only from codes of the encoder it was trained with.
        self.ae_encoder: Encoder | None = None
        if with_landmarks and config.num_landmarks > 0:
            self.itl = TransferLayers(config.image_size, config.num_landmarks, config.width, itl)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` -> ``(N, latent_dim)``."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(N, latent_dim)`` -> ``(N, 3, S, S)`` in model space."""
        return self.generator(z)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` -> reconstruction ``(N, 3, S, S)`` (through the autoencoder's own
        encoder when the landmark encoder was finetuned)."""
        return self.decode((self.ae_encoder or self.encoder)(x))

    def heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` -> landmark heatmaps ``(N, L, H, H)``."""
        if self.itl is None:
            raise RuntimeError("this model has no transfer layers (autoencoder only)")
        return self.itl(self.generator, self.encode(x))

    def forward(self, x: torch.Tensor, reconstruct: bool = False) -> FabRecOutput:
        z = self.encode(x)
        rec = None
        if reconstruct:
            rec = self.decode(self.ae_encoder(x) if self.ae_encoder is not None else z)
        hm = self.itl(self.generator, z) if self.itl is not None else None
        return FabRecOutput(z=z, reconstruction=rec, heatmaps=hm)
