"""The 3FabRec model: encoder, generator and (optional) interleaved transfer layers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from fabrec.architectures import build_encoder, build_generator
from fabrec.config import ModelConfig
from fabrec.errors import FabrecError
from fabrec.nn import TransferLayers


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

    One forward path: :meth:`trunk` (crops -> the input of the last generator block) and
    :meth:`tail` (that -> heatmaps); :meth:`forward`, :meth:`heatmaps` and the inference core
    (:class:`fabrec.landmark_model.LandmarkModel`, which runs the tail a few faces at a time)
    compose the two.
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
        self.encoder = build_encoder(config)
        self.generator = build_generator(config)
        self.itl: TransferLayers | None = None
        # The autoencoder's own encoder, when ``encoder`` was finetuned for landmarks: the
        # generator reconstructs faces only from codes of the encoder it was trained with.
        self.ae_encoder: nn.Module | None = None
        if with_landmarks and config.num_landmarks > 0:
            self.itl = TransferLayers(config.image_size, config.num_landmarks, config.width, itl,
                                      channels=self.generator.channels)

    def add_ae_encoder(self) -> nn.Module:
        """Give the model a separate autoencoder encoder (fresh; load its weights next)."""
        self.ae_encoder = build_encoder(self.config)
        return self.ae_encoder

    @property
    def reconstruction_encoder(self) -> nn.Module:
        """The encoder whose codes the generator turns back into faces: the autoencoder's own
        (``ae_encoder``) when the landmark encoder was finetuned, else ``encoder``."""
        return self.ae_encoder if self.ae_encoder is not None else self.encoder

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` -> ``(N, latent_dim)``."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(N, latent_dim)`` -> ``(N, 3, S, S)`` in model space."""
        return self.generator(z)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` -> reconstruction ``(N, 3, S, S)``."""
        return self.decode(self.reconstruction_encoder(x))

    def trainable(self, stage: int) -> list[nn.Parameter]:
        """Freeze per training stage and return the parameters that train.

        Stage 2: the selected ITLs and the heatmap layer. Stage 3: also every encoder weight.
        The generator never trains; encoder and generator always run in eval mode, so BatchNorm
        running statistics never move."""
        itl = self._transfer()
        self.generator.requires_grad_(False)
        self.encoder.requires_grad_(stage == 3)
        for i, layer in enumerate(itl.layers, start=1):
            layer.weight.requires_grad_(i in itl.active)
        itl.heatmap.weight.requires_grad_(True)
        self.encoder.eval()
        self.generator.eval()
        itl.train()
        return [p for p in self.parameters() if p.requires_grad]

    def set_heatmap_layer(self, weight: torch.Tensor | None = None, std: float | None = None) -> None:
        """Start the heatmap layer from ``weight`` ``(C, L, 4, 4)`` or from N(0, ``std``^2)."""
        w = self._transfer().heatmap.weight
        with torch.no_grad():
            if weight is not None:
                w.copy_(weight)
            elif std is not None:
                nn.init.normal_(w, std=std)

    def _transfer(self) -> TransferLayers:
        if self.itl is None:
            raise FabrecError("this model has no transfer layers (autoencoder only)")
        return self.itl

    def _trunk(self, x: torch.Tensor, reconstruct: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Codes ``z``, the last generator block's input (None without ITLs), reconstruction."""
        z = self.encode(x)
        h = None
        if self.itl is not None:
            h = self.itl.run_blocks(self.generator, self.generator.start(z), 0, self.itl.num_blocks - 1)
        rec = None
        if reconstruct:
            enc = self.reconstruction_encoder
            rec = self.decode(z if enc is self.encoder else enc(x))  # z is the encoder's own code
        return z, h, rec

    def trunk(self, x: torch.Tensor, reconstruct: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Crops ``(N, 3, S, S)`` -> the input of the last generator block ``(N, C, H/4, H/4)``
        and the reconstruction ``(N, 3, S, S)`` (or None)."""
        _, h, rec = self.coded_trunk(x, reconstruct)
        return h, rec

    def coded_trunk(self, x: torch.Tensor, reconstruct: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """:meth:`trunk` with the encoder's codes first: ``z (N, latent_dim)``, ``h``, reconstruction."""
        self._transfer()
        z, h, rec = self._trunk(x, reconstruct)
        assert h is not None
        return z, h, rec

    def tail_features(self, h: torch.Tensor) -> torch.Tensor:
        """The last generator block and its ITL: ``(N, C, H/4, H/4)`` -> what the heatmap layer
        reads, ``(N, C', H/2, H/2)``."""
        itl = self._transfer()
        return itl.run_blocks(self.generator, h, itl.num_blocks - 1, itl.num_blocks)

    def tail(self, h: torch.Tensor) -> torch.Tensor:
        """The last generator block, its ITL and the heatmap layer: ``(N, C, H/4, H/4)`` ->
        heatmaps ``(N, L, H, H)``."""
        return self._transfer().heatmap(self.tail_features(h))

    def heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` -> landmark heatmaps ``(N, L, H, H)``."""
        return self.tail(self.trunk(x)[0])

    def forward(self, x: torch.Tensor, reconstruct: bool = False) -> FabRecOutput:
        """:meth:`trunk` then :meth:`tail`; also the codes (see :class:`FabRecOutput`)."""
        z, h, rec = self._trunk(x, reconstruct)
        return FabRecOutput(z=z, reconstruction=rec, heatmaps=None if h is None else self.tail(h))
