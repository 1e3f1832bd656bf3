"""Backbones by name: the encoder and generator a model file's ``arch`` field names.

A new backbone is one entry in :data:`fabrec.registry.ARCHITECTURES` plus its own module (its
networks and an :class:`Architecture` naming how to build them):
its generator must expose ``start(z)``, ``blocks`` and ``channels`` (``(cin, cout)`` per block) as
:class:`fabrec.nn.Generator` does, so that the interleaved transfer layers can run between its
blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from fabrec.config import ModelConfig
from fabrec.nn import Encoder, Generator
from fabrec.registry import ARCHITECTURES, resolve


@dataclass(frozen=True)
class Architecture:
    """How to build one backbone's two networks from a :class:`ModelConfig`."""

    encoder: Callable[[ModelConfig], nn.Module]
    generator: Callable[[ModelConfig], Generator]
    about: str


RESNET18 = Architecture(
    encoder=lambda m: Encoder(m.image_size, m.latent_dim, m.width),
    generator=lambda m: Generator(m.image_size, m.latent_dim, m.width),
    about="the paper's: ResNet-18 encoder, inverted-ResNet generator",
)


def architecture(mc: ModelConfig) -> Architecture:
    """The backbone ``mc.arch`` names in :data:`fabrec.registry.ARCHITECTURES`."""
    return resolve(ARCHITECTURES, mc.arch, "architecture")  # type: ignore[no-any-return]


def build_encoder(mc: ModelConfig) -> nn.Module:
    """A fresh encoder: images ``(N, 3, S, S)`` -> codes ``(N, latent_dim)``."""
    return architecture(mc).encoder(mc)


def build_generator(mc: ModelConfig) -> Generator:
    """A fresh generator: codes ``(N, latent_dim)`` -> images ``(N, 3, S, S)``."""
    return architecture(mc).generator(mc)
