"""Network building blocks of 3FabRec: encoder, generator, discriminators, transfer layers."""

from fabrec.nn.discriminators import ImageDiscriminator, LatentDiscriminator
from fabrec.nn.encoder import Encoder
from fabrec.nn.generator import Generator
from fabrec.nn.transfer import TransferLayers

__all__ = ["Encoder", "Generator", "ImageDiscriminator", "LatentDiscriminator", "TransferLayers"]
