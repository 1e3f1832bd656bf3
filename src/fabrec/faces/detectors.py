"""Face detectors behind one protocol: what a detection is, the options every detector takes,
and the one factory every caller uses.

A detector returns :class:`Detection` s: a box ``(x, y, w, h)`` in pixels, a score and, for
YuNet (the default, bundled in the package), five points. Each detector is a class in its own
module (``fabrec/faces/yunet.py``, ``opencv_cascade.py``, ``dlib_hog.py``) registered by name
in :data:`fabrec.registry.DETECTORS`, built as ``Class(options)`` from
:class:`DetectorOptions`, with a box :class:`Calibration` measured on 300-W HELEN-train (870
faces, ``benchmarks/calibrate_detector.py``): the 68-point landmark extent's centre offset and
size in units of the detector box side. How a detection becomes a model crop is
:mod:`fabrec.faces.framing`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol

import numpy as np

from fabrec.errors import FabrecError
from fabrec.registry import DETECTORS, resolve

BoxXYWH = tuple[float, float, float, float]


@dataclass(frozen=True)
class Calibration:
    """Landmark extent relative to a detector box of side ``s`` at ``(x, y)``:
    centre ``(x + s*cx, y + s*cy)``, width ``s*w``, height ``s*h``."""

    cx: float
    cy: float
    w: float
    h: float


@dataclass(frozen=True)
class Detection:
    """One face found by a detector.

    Attributes:
        box: ``(x, y, w, h)`` pixels, as the detector frames the face.
        score: the detector's confidence (YuNet: 0..1; detectors without one: NaN).
        points: ``(5, 2)`` the face's right eye, left eye, nose tip, right and left mouth
            corner (image-left first in an upright face), or None for detectors without points.
        alternatives: the same face as found in other orientations of the photo (YuNet's
            rotation search), each with its own points; the detector cannot tell which
            orientation is right (its scores barely differ), the landmark model can: see
            :meth:`candidates`.
    """

    box: BoxXYWH
    score: float = float("nan")
    points: np.ndarray | None = None
    alternatives: tuple[Detection, ...] = ()

    @property
    def candidates(self) -> tuple[Detection, ...]:
        """This detection and its alternatives, best score first."""
        return (self, *self.alternatives)

    @property
    def size(self) -> float:
        """The face's size in pixels: the mean of the box's sides."""
        return (self.box[2] + self.box[3]) / 2.0


class Detector(Protocol):
    name: str
    calibration: Calibration

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in an RGB ``uint8 (H, W, 3)`` image, largest first."""
        ...


DEFAULT_MIN_SCORE = 0.6  # YuNet's score threshold wherever faces are detected


@dataclass(frozen=True)
class DetectorOptions:
    """What every detector is built with (each uses what it can).

    Attributes:
        score: minimum detector score (YuNet's threshold; detectors without scores ignore it).
        min_face: smallest face kept, pixels (mean box side, original photo).
        rotations: photo orientations searched, degrees, multiples of 90 (YuNet: ``(0,)``
            upright photos, ``ALL_ROTATIONS`` sideways and upside-down faces too, 4x the time;
            upright-only detectors ignore it).
    """

    score: float = DEFAULT_MIN_SCORE
    min_face: float = 0.0
    rotations: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        if not self.rotations or any(int(r) % 90 for r in self.rotations):
            raise FabrecError(f"rotations must be multiples of 90 degrees, got {self.rotations}")


DEFAULT_DETECTOR = "yunet"
ALL_ROTATIONS = (0, 90, 180, 270)  # YuNet's search for sideways and upside-down faces


def _detector_class(name: str) -> type:
    return resolve(DETECTORS, name, "detector")  # type: ignore[no-any-return]


def calibration_of(name: str) -> Calibration:
    """A named detector's box calibration, without loading the detector."""
    return _detector_class(name).calibration


def get_detector(name: str, options: DetectorOptions | None = None, **fields_: object) -> Detector:
    """The detector registered as ``name`` (:data:`fabrec.registry.DETECTORS`; ``yunet`` is the
    default), built with ``options`` or with :class:`DetectorOptions` made of ``fields_``
    (``score``, ``min_face``, ``rotations``). Every caller builds detectors here."""
    if options is None:
        known = {f.name for f in fields(DetectorOptions)}
        bad = sorted(set(fields_) - known)
        if bad:
            raise FabrecError(f"unknown detector option(s) {', '.join(bad)} (known: {', '.join(sorted(known))})")
        if "rotations" in fields_:
            fields_["rotations"] = tuple(fields_["rotations"])  # type: ignore[arg-type]
        options = DetectorOptions(**fields_)  # type: ignore[arg-type]
    return _detector_class(name)(options)  # type: ignore[no-any-return]
