"""How a face is framed into a model crop, the same way for every point scheme.

Two framings exist, recorded in each model file (``ModelConfig.framing``):

``landmarks`` (the paper's): a training crop is the labelled points' extent grown by
    ``crop_top`` / ``crop_bottom`` and squared. Only a 68-point model can be framed so from a
    photo, so detectors are mapped to it through a measured calibration (below).
``detector`` (fabrec's default for new models): a training crop is made from the face
    detector's five points on the training photo -- exactly the crop ``predict`` will make of
    the same face. Any scheme then sees the same framing in training and in use.

Both start from the **five-point frame**: a similarity fit (scale, roll, shift) of the
detector's five points -- the eyes, the nose tip, the mouth corners -- to a template, the
mean position of YuNet's five points relative to the 68-point iBUG landmark extent on 300-W
HELEN-train (870 faces, all found; ``benchmarks/calibrate_detector.py``), made left-right
symmetric so that level eyes give an unrolled crop. A linear map calibrated on the same faces
turns the points' residual offsets (yaw moves the nose off the eyes' midline) and the
detector's box into a virtual
68-point extent (centre, width, height, rolled like the face), from which the model's
``crop_top`` / ``crop_bottom`` make the crop. Detectors without points (the Haar cascade, dlib) map their box to the same
virtual extent through their own calibration (:class:`fabrec.faces.detectors.Calibration`).

:class:`Framing` holds a model's framing (its rule, margins and mean shape, read from the model
file) and makes every crop: of a detection, of a given box, of labelled points, of a tracked or
refined face's points.

Re-cropping from predicted points (``--refine``, video tracking) keeps the crop's roll and
uses the model's own rule: the points' extent for ``landmarks`` models, a similarity fit of
the points to the model's mean shape (recorded at training) for ``detector`` models.

**Labelled faces** (training and evaluation) are framed the way ``predict`` will frame them
(:func:`frame_labels`): the detector runs on each photo, and the detection that holds the
labelled face gives the crop (:meth:`Framing.of_detection`); of its orientations (a
rotation-searching detector) the one that puts the labels nearest the mean shape. A face the
detector misses is framed by a similarity fit of its labels to the mean shape
(:func:`box_from_shape`).
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fabrec.datasets.samples import LandmarkSample
from fabrec.errors import FabrecError
from fabrec.faces.detectors import ALL_ROTATIONS, DEFAULT_DETECTOR, BoxXYWH, Calibration, Detection, Detector, get_detector
from fabrec.io import read_image
from fabrec.transforms import Box

log = logging.getLogger(__name__)

FRAME_FILE = Path(__file__).resolve().parents[1] / "assets" / "five_point_frame.json"


@functools.cache
def five_point_frame() -> tuple[np.ndarray, np.ndarray]:
    """The five-point frame's calibration (``assets/five_point_frame.json``): the template
    ``(5, 2)`` -- YuNet's points in units of the 68-point extent, left-right symmetric -- and
    the ridge weights ``(15, 4)`` from the points' offsets to the template and the box (after
    the fit) to the extent's centre, width and height in template units. Fitted on HELEN-train by
    ``benchmarks/calibrate_detector.py``."""
    data = json.loads(FRAME_FILE.read_text())
    return np.asarray(data["template"], np.float64), np.asarray(data["weights"], np.float64)


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> tuple[complex, np.ndarray]:
    """Least-squares similarity ``dst ~ a * src + t`` for point sets ``(N, 2)`` (N >= 2).

    Returns ``a`` as a complex number (``abs(a)`` the scale, ``angle(a)`` the rotation) and
    ``t`` ``(2,)``. Rows with a non-finite point are left out."""
    zs, zd = _finite_pairs(src, dst)
    ms, md = zs.mean(), zd.mean()
    a = complex(np.vdot(zs - ms, zd - md) / np.vdot(zs - ms, zs - ms))
    t = md - a * ms
    return a, np.array([t.real, t.imag])


def _finite_pairs(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``src`` and ``dst`` ``(N, 2)`` where both are finite, as complex numbers."""
    ok = np.isfinite(src).all(1) & np.isfinite(dst).all(1)
    if ok.sum() < 2:
        raise FabrecError("a similarity fit needs at least two finite points")
    zs, zd = src[ok, 0] + 1j * src[ok, 1], dst[ok, 0] + 1j * dst[ok, 1]
    if abs(np.vdot(zs - zs.mean(), zs - zs.mean())) < 1e-12:
        raise FabrecError("a similarity fit needs points that are not all the same")
    return zs, zd


def _apply(a: complex, t: np.ndarray, u: float, v: float) -> tuple[float, float]:
    z = a * complex(u, v)
    return z.real + float(t[0]), z.imag + float(t[1])


def five_point_extent(points5: np.ndarray, box: Sequence[float]) -> tuple[float, float, float, float, float]:
    """The virtual 68-point landmark extent of a face with five detector points ``(5, 2)`` and
    box ``(x, y, w, h)``: centre ``x, y``, width, height (along the face's own axes) and roll,
    in pixels / radians.

    A similarity fit to the template gives the face's scale, roll and position; the points'
    residual offsets (which carry yaw: a turned head moves the nose off the eyes' midline) and
    the box predict where the extent sits through the calibrated linear map."""
    template, weights = five_point_frame()
    p = np.asarray(points5, np.float64)
    a, t = fit_similarity(template, p)

    def local(x: np.ndarray, y: np.ndarray) -> np.ndarray:  # image -> template units
        return ((x - t[0]) + 1j * (y - t[1])) / a

    z = local(p[:, 0], p[:, 1])
    bx, by, bw, bh = (float(v) for v in box)
    zb = complex(local(np.array(bx + (bw - 1) / 2), np.array(by + (bh - 1) / 2)))  # pixel-centre convention
    roll = math.atan2(a.imag, a.real)
    if abs(math.sin(roll)) > abs(math.cos(roll)):  # a sideways face: its width is the box's height
        bw, bh = bh, bw
    s = abs(a)
    feats = np.concatenate([z.real - template[:, 0], z.imag - template[:, 1], [zb.real, zb.imag, bw / s, bh / s, 1.0]])
    cx, cy, w, h = feats @ weights
    x, y = _apply(a, t, float(cx), float(cy))
    return x, y, float(w) * s, float(h) * s, roll


def box_from_five(points5: np.ndarray, box: Sequence[float], top: float, bottom: float) -> Box:
    """The crop for a face with five detector points ``(5, 2)`` and box ``(x, y, w, h)`` under
    a model's ``crop_top`` / ``crop_bottom``: its virtual 68-point extent
    (:func:`five_point_extent`), rolled upright."""
    x, y, w, h, angle = five_point_extent(points5, box)
    return Box.from_extent(x, y, w, h, angle, top, bottom)


def mean_shape(points: Sequence[np.ndarray], boxes: Sequence[Box]) -> np.ndarray:
    """Mean landmark positions ``(K, 2)`` inside their crops, in units of the crop side with
    the crop centre at the origin (the face's own axes): what a ``detector``-framed model
    re-crops from (:func:`box_from_shape`)."""
    rows = []
    for p, b in zip(points, boxes):
        c, s = math.cos(b.angle), math.sin(b.angle)
        d = np.asarray(p, np.float64) - (b.cx, b.cy)
        rows.append(np.stack([d[:, 0] * c + d[:, 1] * s, -d[:, 0] * s + d[:, 1] * c], 1) / b.side)
    return np.nanmean(np.stack(rows), 0)


def box_from_shape(points: np.ndarray, shape: np.ndarray, keep_angle: float | None = None) -> Box:
    """The crop that puts ``points (K, 2)`` where the mean ``shape (K, 2)`` (see
    :func:`mean_shape`) has them: a similarity fit. ``keep_angle`` fixes the roll (the fit
    then gives only scale and shift)."""
    src, dst = np.asarray(shape, np.float64), np.asarray(points, np.float64)
    if keep_angle is None:
        a, t = fit_similarity(src, dst)
    else:  # least-squares scale and shift for the fixed roll
        zs, zd = _finite_pairs(src, dst)
        r = complex(math.cos(keep_angle), math.sin(keep_angle))
        ms, md = zs.mean(), zd.mean()
        a = r * max(float(np.vdot(r * (zs - ms), zd - md).real / np.vdot(zs - ms, zs - ms).real), 1e-6)
        tz = md - a * ms
        t = np.array([tz.real, tz.imag])
    return Box(float(t[0]), float(t[1]), abs(a), math.atan2(a.imag, a.real))


def recrop(points: np.ndarray, previous: Box, framing: str, top: float, bottom: float,
           shape: np.ndarray | None) -> Box:
    """The next crop from predicted points (``--refine``, tracking), keeping ``previous``'s
    roll: the points' extent (``landmarks`` framing) or the mean-shape fit (``detector``)."""
    if framing == "detector" and shape is not None:
        return box_from_shape(points, shape, keep_angle=previous.angle)
    return Box.from_landmarks_rolled(points, previous.angle, top, bottom)


def crop_for(det: Detection, cal: Calibration, framing: tuple[float, float]) -> Box:
    """The model crop for a detection under the model's ``(crop_top, crop_bottom)``: from its
    five points (rolled upright) when it has them, else from its box through ``cal``."""
    if det.points is not None:
        return box_from_five(det.points, det.box, *framing)
    return crop_box(det.box, cal, framing)


def crop_box(det_box: BoxXYWH, cal: Calibration, framing: tuple[float, float]) -> Box:
    """Model crop box from a detector box via the detector's calibration and the model's
    framing (``crop_top``, ``crop_bottom`` as in :meth:`Box.from_landmarks`)."""
    x, y, w, h = det_box
    s = (w + h) / 2.0
    return Box.from_extent(x + s * cal.cx, y + s * cal.cy, s * cal.w, s * cal.h, 0.0, *framing)


@dataclass(frozen=True)
class Framing:
    """How one model frames faces (recorded in its model file).

    Attributes:
        rule: ``landmarks`` or ``detector`` (see the module docstring).
        top, bottom: the landmark extent grown by ``top`` x its height above and ``bottom``
            below, then squared (``crop_top`` / ``crop_bottom``).
        mean_shape: ``(K, 2)`` the model's mean training points in crop units (``detector``
            models; :func:`mean_shape`), or None.
    """

    rule: str = "landmarks"
    top: float = 0.25
    bottom: float = 0.15
    mean_shape: np.ndarray | None = field(default=None, compare=False, repr=False)

    @staticmethod
    def of(config: object, mean_shape: np.ndarray | None = None) -> Framing:
        """The framing a model config records (``framing``, ``crop_top``, ``crop_bottom``:
        :class:`fabrec.config.ModelConfig`), with the model's mean shape."""
        return Framing(config.framing, config.crop_top, config.crop_bottom, mean_shape)  # type: ignore[attr-defined]

    @property
    def margins(self) -> tuple[float, float]:
        """``(top, bottom)``."""
        return (self.top, self.bottom)

    def of_detection(self, det: Detection, cal: Calibration) -> Box:
        """The crop of a detection (five points when it has them, else its box through ``cal``)."""
        return crop_for(det, cal, self.margins)

    def of_box(self, box: BoxXYWH, cal: Calibration) -> Box:
        """The crop of a detector's box without points (``cal``: that detector's calibration)."""
        return crop_box(box, cal, self.margins)

    def of_labels(self, points: np.ndarray) -> Box:
        """The crop of labelled points by their extent (the paper's training crop)."""
        return Box.from_landmarks(points, self.top, self.bottom)

    def of_points(self, points: np.ndarray, previous: Box) -> Box:
        """The next crop of a face from its predicted points (``--refine``, tracking), keeping
        ``previous``'s roll (:func:`recrop`)."""
        return recrop(points, previous, self.rule, self.top, self.bottom, self.mean_shape)


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
