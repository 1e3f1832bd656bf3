"""What every landmark reader returns: annotated samples and the problems it skipped."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fabrec.errors import FabrecError
from fabrec.schemes import Scheme
from fabrec.transforms import Box


@dataclass(frozen=True)
class LandmarkSample:
    """One annotated face.

    Attributes:
        path: image file.
        points: ``(K, 2)`` 0-based pixel centres in the original image.
        box: face box to crop from (None: crop from the landmarks' extent).
        key: stable id (relative path) for splits and reports.
        subsets: subset tags (e.g. WFLW "pose", 300-W "challenging").
        box_side: face-box side used as AFLW normaliser (None if not given).
    """

    path: Path
    points: np.ndarray
    box: Box | None
    key: str
    subsets: tuple[str, ...] = ()
    box_side: float | None = None


@dataclass
class ReadResult:
    """Samples plus the names of the files that were skipped and why."""

    samples: list[LandmarkSample] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def check_points(points: np.ndarray, scheme: Scheme, name: str) -> None:
    if points.shape != (scheme.num_points, 2):
        raise FabrecError(f"{name}: {len(points)} points, scheme {scheme.name} needs {scheme.num_points}")
    if not np.isfinite(points).all():
        raise FabrecError(f"{name}: non-finite coordinates")
