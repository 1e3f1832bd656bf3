"""What a third party writes to add a dataset format, a face detector and a backbone to fabrec.

Each is its own code, here; fabrec learns of it through one registry entry each
(``fabrec.registry``; see ``test_extending.py``), and nothing else changes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fabrec.architectures import Architecture
from fabrec.datasets.samples import LandmarkSample, ReadResult, check_points
from fabrec.faces.detectors import Calibration, Detection, DetectorOptions
from fabrec.errors import FabrecError
from fabrec.nn import Encoder, Generator
from fabrec.schemes import Scheme


def read_tsv(root: str | Path, split: str, scheme: Scheme) -> ReadResult:
    """A dataset format: ``root/points.tsv``, one line per image: ``name<TAB>x1,y1;x2,y2;...``."""
    res = ReadResult()
    for line in (Path(root) / "points.tsv").read_text().splitlines():
        name, _, text = line.partition("\t")
        try:
            pts = np.array([[float(v) for v in p.split(",")] for p in text.split(";")])
            check_points(pts, scheme, name)
        except (ValueError, FabrecError) as e:
            res.problems.append(f"{name}: {e}")
            continue
        res.samples.append(LandmarkSample(Path(root) / name, pts, None, name))
    return res


class WholePhoto:
    """A face detector that takes the middle of the photo for the face (a stand-in for any
    detector: a class with ``name``, ``calibration`` and ``detect``)."""

    name = "whole-photo"
    calibration = Calibration(cx=0.5, cy=0.55, w=0.8, h=0.8)

    def __init__(self, options: DetectorOptions | None = None) -> None:
        self.min_face = (options or DetectorOptions()).min_face

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        s = 0.8 * min(h, w)
        return [Detection(((w - s) / 2, (h - s) / 2, s, s), 1.0)]


#: A backbone: the paper's networks at twice the configured width (any encoder and generator
#: with the same interface would do: the transfer layers follow the generator's channels).
WIDE = Architecture(
    encoder=lambda m: Encoder(m.image_size, m.latent_dim, 2 * m.width),
    generator=lambda m: Generator(m.image_size, m.latent_dim, 2 * m.width),
    about="the ResNet-18 pair at twice the width",
)
