"""Labelled faces framed the way ``predict`` will frame them: the detector runs on each
training (or evaluation) photo, and the detection that holds the labelled face gives the crop
(:meth:`fabrec.faces.framing.Framing.of_detection`); of its orientations (a rotation-searching detector) the one
that puts the labels nearest the mean shape. A face the detector misses is framed by a
similarity fit of its labels to the mean shape (:func:`fabrec.faces.framing.box_from_shape`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fabrec.datasets.samples import LandmarkSample
from fabrec.faces.detectors import ALL_ROTATIONS, DEFAULT_DETECTOR, Detection, Detector, get_detector
from fabrec.errors import FabrecError
from fabrec.faces.framing import Framing, box_from_shape, mean_shape
from fabrec.io import read_image
from fabrec.transforms import Box

log = logging.getLogger(__name__)


@dataclass
class FramedLabels:
    """Crops for labelled samples.

    Attributes:
        boxes: one crop per sample (None where its image cannot be read).
        detected: how many were framed from a detection (the rest from the mean shape).
        shape: ``(K, 2)`` mean labelled points in crop units over the detected faces.
    """

    boxes: list[Box | None]
    detected: int
    shape: np.ndarray


def labels_detector() -> Detector:
    """The detector labelled photos are framed with (training and evaluation alike): the
    default detector, every orientation searched (the labels choose among them)."""
    return get_detector(DEFAULT_DETECTOR, rotations=ALL_ROTATIONS)


def matching_detection(dets: Sequence[Detection], points: np.ndarray) -> Detection | None:
    """The detection holding a labelled face: the most label points inside its box grown by a
    quarter, at least half of them; ties go to the higher score."""
    best, best_key = None, (0.5, -np.inf)
    pts = points[np.isfinite(points).all(1)]
    if not len(pts):
        return None
    for d in dets:
        x, y, w, h = d.box
        gx, gy = w / 4, h / 4
        inside = ((pts[:, 0] >= x - gx) & (pts[:, 0] <= x + w + gx) & (pts[:, 1] >= y - gy)
                  & (pts[:, 1] <= y + h + gy)).mean()
        key = (float(inside), d.score if np.isfinite(d.score) else 0.0)
        if key >= best_key:
            best, best_key = d, key
    return best


def _label_offsets(points: np.ndarray, box: Box) -> np.ndarray:
    """Labelled points ``(K, 2)`` in ``box``'s crop units (centre at the origin, face axes)."""
    return mean_shape([points], [box])


def frame_labels(samples: Sequence[LandmarkSample], detector: Detector, framing: Framing) -> FramedLabels:
    """Frame every sample by the detector (see the module docstring) under ``framing``; its
    mean shape (a model's own), where it has one, chooses among a detection's orientations and
    frames the faces the detector misses; by default the detected faces' own mean does.

    A detector that searches several orientations (YuNet with ``rotations``) offers each face
    in each; the one whose crop puts the labels nearest the mean shape is kept (first pass: the
    best score; the mean shape of those picks then chooses). Raises :class:`FabrecError` when the
    detector finds none of the faces and no ``shape`` is given."""
    shape = framing.mean_shape
    cands: list[list[Box]] = []
    readable: list[bool] = []
    for s in samples:
        try:
            rgb = read_image(s.path)
        except FabrecError:
            cands.append([])
            readable.append(False)
            continue
        readable.append(True)
        det = matching_detection(detector.detect(rgb), s.points)
        cands.append([] if det is None else [framing.of_detection(c, detector.calibration) for c in det.candidates])
    found = [i for i, c in enumerate(cands) if c]
    if not found and shape is None:
        raise FabrecError(f"the {detector.name} detector found none of the {len(samples)} labelled faces; "
                          "frame them by their labels instead (--framing landmarks)")
    boxes: list[Box | None] = [c[0] if c else None for c in cands]
    ref = shape if shape is not None else mean_shape([samples[i].points for i in found], [boxes[i] for i in found])
    for i in found:  # the orientation that puts the labels where the mean shape has them
        boxes[i] = min(cands[i], key=lambda b: float(np.nanmean(np.abs(_label_offsets(samples[i].points, b) - ref))))
    own = mean_shape([samples[i].points for i in found], [boxes[i] for i in found]) if found else ref
    use = shape if shape is not None else own
    missed = [i for i in range(len(samples)) if readable[i] and not cands[i]]
    for i in missed:
        boxes[i] = box_from_shape(samples[i].points, use)
    if missed:
        log.info("%d of %d labelled faces not found by the %s detector: framed by their labels' fit "
                 "to the mean shape", len(missed), len(samples), detector.name)
    return FramedLabels(boxes, len(found), own)
