"""LandmarkPredictor: landmarks, confidences, quality and reconstructions for photos and video."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np

from fabrec.faces.detectors import (DEFAULT_DETECTOR, DEFAULT_MIN_SCORE, BoxXYWH, Detection, Detector,
                                    DetectorOptions, calibration_of, get_detector)
from fabrec.errors import FabrecError
from fabrec.face_filter import FaceFilter
from fabrec.head_pose import HeadPose, face_pose, yaw_in_crop
from fabrec.io import read_image
from fabrec.inference_options import DEFAULT_FLIP_FROM, InferenceOptions, with_overrides
from fabrec.landmark_model import Crop, LandmarkModel, load_for_inference
from fabrec.orientation import is_upright, one_per_group, orientation_scores
from fabrec.pipeline import batch_full, read_ahead
from fabrec.smoothing import OneEuro
from fabrec.results import FaceResult, image_record
from fabrec.runtime import default_threads, resolve_device, set_threads
from fabrec.transforms import Box, crop_matrix, crop_to_image, warp

# Tracking: a face whose thumbnail correlates less than this with the previous frame's is another
# face (a cut, a swap). Measured on clips of 300-W faces (benchmarks/video_cuts.py): the same face
# tracked correlates 0.67-0.92 from frame to frame, moving up to 25 px a frame; a cut to another
# face, 0.03-0.51, in the same place or elsewhere.
MIN_SIMILARITY = 0.6
REANCHOR_IOU = 0.75
ROTATIONS = (0,)  # upright photos; (0, 90, 180, 270) also finds sideways and upside-down faces


class Region(NamedTuple):
    """A face to crop: its box, the model crop, where it came from, the detector's score."""

    box: BoxXYWH
    crop: Box
    source: str
    score: float = float("nan")
    group: int = -1  # regions of one group are one face in several orientations: the model keeps one


CHANNELS = ("rgb", "bgr")


def _as_rgb(image: str | Path | np.ndarray, channels: str = "rgb") -> np.ndarray:
    """A path or an array (``channels``: ``rgb``, or ``bgr`` as ``cv2.imread`` gives) -> RGB
    ``uint8 (H, W, 3)``."""
    if channels not in CHANNELS:
        raise FabrecError(f"channels must be 'rgb' or 'bgr' (OpenCV's order), got {channels!r}")
    if isinstance(image, (str, Path)):
        return read_image(image)
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, -1)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.dtype != np.uint8:
        raise FabrecError("images must be uint8 arrays (H, W, 3) or file paths")
    return np.ascontiguousarray(a[..., 2::-1] if channels == "bgr" else a[..., :3])


class LandmarkPredictor:
    """Face landmarks from any photo.

    >>> p = LandmarkPredictor.from_pretrained("default")
    >>> faces = p.predict("photo.jpg")          # one FaceResult per detected face
    >>> faces[0].points.shape                   # (68, 2)
    """

    def __init__(self, model: LandmarkModel, detector: str | Detector = DEFAULT_DETECTOR, device: str = "auto",
                 quality: bool = True, min_score: float = DEFAULT_MIN_SCORE, min_face: float = 0.0,
                 rotations: tuple[int, ...] = ROTATIONS, min_confidence: float | None = None,
                 face_filter: FaceFilter | None = None, flip_from: float | None = DEFAULT_FLIP_FROM) -> None:
        """``detector``: a name (``yunet``, ``opencv``, ``dlib``) or a detector object;
        ``min_score``: YuNet's score threshold; ``min_face``: smallest face kept (pixels, mean
        box side); ``rotations``: orientations YuNet searches (degrees); ``min_confidence``:
        detected faces whose mean point confidence is lower are dropped (not faces; by default
        the model file's cut without a face filter, 0 with one); ``face_filter``: detected
        faces it scores under its threshold are dropped (:mod:`fabrec.face_filter`);
        ``flip_from``: faces whose head turns at least this many degrees of yaw are found again
        with test-time flip (:meth:`_mirrored`; None: never; 68-point models only)."""
        self.device = resolve_device(device)
        self.model = model.placed(self.device)
        self._detector = detector
        self._detector_options = DetectorOptions(min_score, min_face, tuple(rotations))
        self.quality = quality
        self.min_confidence = min_confidence if min_confidence is not None else (
            0.0 if face_filter is not None else self.model.min_confidence)
        self.face_filter = face_filter
        self._posed = self.model.scheme.is_ibug68  # head pose from the 68 300-W points
        self.flip_from = flip_from if self._posed and not self.model.flip_average else None
        self._mirroring = dataclasses.replace(self.model, flip_average=True) if self.flip_from is not None else None
        self.model_name = "custom"  # what result records name the model (from_pretrained: the spec)

    @staticmethod
    def from_pretrained(name_or_path: str | Path = "default", options: InferenceOptions | None = None,
                        detector: str | Detector | None = None, **overrides: Any) -> LandmarkPredictor:
        """Bundled weights by name (``default``), a ``.safetensors`` file or a training ``.pt``,
        run as ``options`` say (:class:`~fabrec.inference_options.InferenceOptions`: detector,
        thresholds, rotations, face filter, precision, flip, device, threads, ...) with any of
        its fields given as keywords too (``device="cpu"``, ``rotations=(0, 90, 180, 270)``);
        ``detector``: a name or a ready detector object."""
        if isinstance(detector, str):
            overrides["detector"] = detector
        o = with_overrides(options, **overrides)
        set_threads(default_threads() if o.threads == "auto" else o.threads)  # type: ignore[arg-type]
        model = load_for_inference(name_or_path, o)
        flt = model.face_filter if o.face_filter else None
        pred = LandmarkPredictor(model, detector if detector is not None and not isinstance(detector, str)
                                 else o.detector, o.device, o.quality, o.min_score, o.min_face, o.rotations,
                                 o.min_confidence, flt, o.flip_from)
        pred.model_name = str(name_or_path) if str(name_or_path) == "default" else Path(name_or_path).name
        return pred

    def image_record(self, file: str, rgb: np.ndarray | None, faces: Sequence[FaceResult],
                     error: str | None = None) -> dict[str, Any]:
        """The result record of one image ``(H, W, 3)`` and its faces, or of why it could not be
        read (``error``, ``rgb`` None; :func:`fabrec.results.image_record`), named by this
        predictor's model and scheme."""
        return image_record(file, self.model_name, self.scheme.name, None if rgb is None else rgb.shape,
                            list(faces), error)

    def describe(self) -> str:
        """One line on how this predictor runs: the model's (:meth:`LandmarkModel.describe`) and
        which faces get test-time flip."""
        if self.model.flip_average:
            flip = "; test-time flip for every face"
        elif self.flip_from is not None:
            flip = f"; test-time flip for heads turned {self.flip_from:g} degrees of yaw or more"
        else:
            flip = ""
        return self.model.describe() + flip

    @property
    def scheme(self):
        return self.model.scheme

    @property
    def detector(self) -> Detector:
        if isinstance(self._detector, str):
            self._detector = get_detector(self._detector, self._detector_options)
        return self._detector

    # ------------------------------------------------------------------ core
    def crops_for(self, rgb: np.ndarray, boxes: Sequence[BoxXYWH] | None, boxes_as: str = "crop") -> list[Region]:
        """Face boxes -> regions (box, crop, source, score). ``boxes=None`` runs the detector;
        given boxes are used as crop regions (``boxes_as="crop"``) or as boxes of a named
        detector whose calibration then applies."""
        if boxes is None:
            det = self.detector
            framing = self.model.framing
            return [Region(c.box, framing.of_detection(c, det.calibration), "detector", c.score, g)
                    for g, d in enumerate(det.detect(rgb)) for c in d.candidates]
        out = []
        for b in boxes:
            x, y, w, h = (float(v) for v in b)
            if not (w > 0 and h > 0 and np.isfinite([x, y, w, h]).all()):
                raise FabrecError(f"bad face box {tuple(b)}: width and height must be positive numbers")
            if boxes_as == "crop":
                out.append(Region((x, y, w, h), Box.from_xywh(x, y, w, h), "given"))
            else:
                cal = calibration_of(boxes_as)
                out.append(Region((x, y, w, h), self.model.framing.of_box((x, y, w, h), cal), "given"))
        return out

    def _faces_many(self, rgbs: Sequence[np.ndarray], regions: Sequence[list[Region]],
                    batch_size: int, quality: bool | None = None) -> list[list[FaceResult]]:
        """Faces of several images, all crops batched through the network together;
        ``quality`` (default: the predictor's) runs the reconstruction for the quality score.
        Per detection one orientation is kept (:func:`fabrec.orientation.one_per_group`), then
        the face filters apply (:meth:`_is_face`) and turned heads are found again with
        test-time flip (:meth:`_mirrored`)."""
        quality = self.quality if quality is None else quality
        flat = [(i, reg) for i, regs in enumerate(regions) for reg in regs]
        out: list[list[FaceResult]] = [[] for _ in rgbs]
        if not flat:
            return out
        mats, _, found = self._read(rgbs, [(i, reg.crop) for i, reg in flat], self.model, batch_size, quality)
        conf, codes = np.stack([c.confidence for c in found]), np.stack([c.codes for c in found])
        fs = np.full(len(found), np.nan) if self.face_filter is None else self.face_filter.score(codes, conf)
        chooser = self.model.orientation
        orient = orientation_scores(chooser, conf, [reg.score for _, reg in flat], codes)
        keep = one_per_group([(i, reg.group) if reg.group >= 0 else None for i, reg in flat], orient,
                             [is_upright(reg.crop.angle) for _, reg in flat], 0.0 if chooser is None else chooser.margin)
        for k in keep:
            (i, reg), (p, c, _, err, _) = flat[k], found[k]
            q = float(np.clip(1.0 - err / 50.0, 0.0, 1.0)) if not math.isnan(err) else float("nan")
            pts, pose = self._in_photo(rgbs[i], p, mats[k], reg.crop)
            out[i].append(FaceResult(reg.box, pts, c, q, err, reg.source, reg.crop, reg.score, float(fs[k]), pose))
        return self._mirrored(rgbs, [[f for f in faces if self._is_face(f)] for faces in out], batch_size)

    def _mirrored(self, rgbs: Sequence[np.ndarray], faces: list[list[FaceResult]],
                  batch_size: int) -> list[list[FaceResult]]:
        """``faces`` with those turned at least :attr:`flip_from` degrees of yaw (in their
        crop) found again in the same crop with test-time flip: points, confidences and head
        pose from the heatmaps averaged with the mirror image's (profiles gain most; the
        README's large-pose table). Which faces are kept, and their face and quality scores,
        come from the plain pass."""
        if self._mirroring is None:
            return faces
        picked = [(i, j) for i, fs in enumerate(faces) for j, f in enumerate(fs)
                  if f.head_pose is not None and f.crop is not None
                  and abs(yaw_in_crop(f.head_pose, f.crop.angle)) >= self.flip_from]
        if not picked:
            return faces
        mats, _, found = self._read(rgbs, [(i, faces[i][j].crop) for i, j in picked], self._mirroring, batch_size, False)
        for (i, j), m, c in zip(picked, mats, found):
            f = faces[i][j]
            pts, pose = self._in_photo(rgbs[i], c.points, m, f.crop)
            faces[i][j] = dataclasses.replace(f, points=pts, confidence=c.confidence, head_pose=pose)
        return faces

    def _read(self, rgbs: Sequence[np.ndarray], where: Sequence[tuple[int, Box]], model: LandmarkModel,
              batch_size: int, reconstruct: bool) -> tuple[list[np.ndarray], list[np.ndarray], list[Crop]]:
        """The crops ``where`` names (image index, crop box) cut from ``rgbs`` and read by
        ``model`` (this predictor's, or its mirroring copy): their photo -> crop matrices
        ``(3, 3)``, the crops ``(S, S, 3)`` and what the network finds in each."""
        s = self.model.image_size
        mats = [crop_matrix(box, s) for _, box in where]
        crops = [warp(rgbs[i], m, s) for (i, _), m in zip(where, mats)]
        return mats, crops, model.read_crops(crops, batch_size, reconstruct)

    def _in_photo(self, rgb: np.ndarray, crop_points: np.ndarray, matrix: np.ndarray,
                  crop: Box) -> tuple[np.ndarray, HeadPose | None]:
        """Crop points ``(K, 2)`` in the photo ``(K, 2)``, and the head pose they give (None
        for schemes other than the 68 300-W points)."""
        pts = crop_to_image(crop_points, matrix)
        if not self._posed:
            return pts, None
        return pts, face_pose(pts, rgb.shape[1::-1], crop_points, self.model.image_size, crop.angle,
                              self.model.head_pose)

    def _is_face(self, f: FaceResult) -> bool:
        """Whether a face passes the filters (faces from given boxes and tracks always do)."""
        if f.source != "detector":
            return True
        if f.confidence.mean() < self.min_confidence:
            return False
        return self.face_filter is None or f.face_score >= self.face_filter.threshold

    def _crop_of(self, face: FaceResult) -> Box:
        """The crop the model's framing draws around a face's points (refining, tracking),
        keeping the roll of the crop they were found in (:meth:`fabrec.faces.framing.Framing.of_points`)."""
        prev = face.crop if face.crop is not None else Box(0.0, 0.0, 1.0)
        return self.model.framing.of_points(face.points, prev)

    def _faces(self, rgb: np.ndarray, regions: list[Region], batch_size: int = 32,
               quality: bool | None = None) -> list[FaceResult]:
        return self._faces_many([rgb], [regions], batch_size, quality)[0]

    def _refined(self, rgb: np.ndarray, faces: list[FaceResult], refine: int, batch_size: int,
                 quality: bool | None = None) -> list[FaceResult]:
        for _ in range(refine):
            regions = [Region(f.box, self._crop_of(f), "refined", f.score) for f in faces]
            if not regions:
                break
            faces = self._faces(rgb, regions, batch_size, quality)
        return faces

    # ------------------------------------------------------------------ public
    def predict(self, image: str | Path | np.ndarray, boxes: Sequence[BoxXYWH] | None = None,
                refine: int = 0, boxes_as: str = "crop", batch_size: int = 32, channels: str = "rgb",
                quality: bool | None = None) -> list[FaceResult]:
        """All faces of one image: a path, or a ``uint8 (H, W, 3)`` array whose colour order
        ``channels`` names -- ``rgb`` (the default, as PIL, imageio and matplotlib give) or
        ``bgr`` (as ``cv2.imread`` and ``cv2.VideoCapture`` give). ``boxes``
        ``[(x, y, w, h), ...]`` skip the detector; ``refine`` re-crops from the predicted points
        N times; ``quality`` overrides the predictor's setting for this call. No face -> ``[]``.
        Safe to call from several threads at once: nothing on the predictor changes."""
        rgb = _as_rgb(image, channels)
        faces = self._faces(rgb, self.crops_for(rgb, boxes, boxes_as), batch_size, quality)
        return self._refined(rgb, faces, refine, batch_size, quality)

    def predict_batch(self, images: Sequence[str | Path | np.ndarray], boxes: Sequence[Sequence[BoxXYWH] | None] | None = None,
                      refine: int = 0, batch_size: int = 32, channels: str = "rgb",
                      quality: bool | None = None) -> list[list[FaceResult]]:
        """Like :meth:`predict` for many images, batching all their faces through the network."""
        rgbs = [_as_rgb(im, channels) for im in images]
        regions = [self.crops_for(r, boxes[i] if boxes is not None else None) for i, r in enumerate(rgbs)]
        return self.faces_in(rgbs, regions, refine, batch_size, quality)

    def predict_many(self, images: Iterable[str | Path | np.ndarray], refine: int = 0, batch_size: int = 32,
                     channels: str = "rgb", quality: bool | None = None) -> Iterator[list[FaceResult]]:
        """The faces of each image of an iterable (paths or arrays, as :meth:`predict` takes),
        in order, as a generator: images are read and their faces detected in a worker thread
        ahead of the network (at most ``2 x batch_size`` images in flight), and the faces of
        consecutive images go through the network together in batches of about ``batch_size``.
        An unreadable image raises :class:`FabrecError` where it comes."""
        def prepare(image: str | Path | np.ndarray) -> tuple[np.ndarray, list[Region]]:
            rgb = _as_rgb(image, channels)
            return rgb, self.crops_for(rgb, None)

        pending: list[tuple[np.ndarray, list[Region]]] = []
        for _, got in read_ahead(images, prepare, 2 * batch_size):
            pending.append(got)  # type: ignore[arg-type]
            if batch_full((r for _, r in pending), batch_size):
                yield from self.faces_in([g for g, _ in pending], [r for _, r in pending], refine, batch_size, quality)
                pending = []
        if pending:
            yield from self.faces_in([g for g, _ in pending], [r for _, r in pending], refine, batch_size, quality)

    def faces_in(self, rgbs: Sequence[np.ndarray], regions: Sequence[list[Region]], refine: int = 0,
                 batch_size: int = 32, quality: bool | None = None) -> list[list[FaceResult]]:
        """The faces of RGB images whose face regions are found already (:meth:`crops_for`),
        all crops batched through the network together; as :meth:`predict` otherwise."""
        out = self._faces_many(rgbs, regions, batch_size, quality)
        return [self._refined(rgbs[i], f, refine, batch_size, quality) for i, f in enumerate(out)]

    def detected_faces(self, rgb: np.ndarray, detections: Sequence[Detection]) -> list[FaceResult | None]:
        """Each detection (of this predictor's detector kind, on RGB ``rgb``) as the face
        :meth:`predict` would return for it, or None where the face filters reject it --
        for tools that find faces themselves (``prepare-faces``)."""
        cal = self.detector.calibration
        framing = self.model.framing
        regions = [Region(d.box, framing.of_detection(d, cal), "detector", d.score) for d in detections]
        per = self._faces_many([rgb] * len(regions), [[r] for r in regions], 32, quality=False)
        return [faces[0] if faces else None for faces in per]

    def reconstruct(self, image: str | Path | np.ndarray, box: BoxXYWH | Box | None = None,
                    channels: str = "rgb") -> tuple[np.ndarray, np.ndarray]:
        """(crop, reconstruction), both RGB ``uint8 (S, S, 3)``, of the first face, of ``box``
        ``(x, y, w, h)``, or of a model crop (a :class:`Box`, e.g. ``FaceResult.crop``);
        ``channels`` as in :meth:`predict`."""
        rgb = _as_rgb(image, channels)
        if isinstance(box, Box):
            cb = box
        else:
            regions = self.crops_for(rgb, [box] if box is not None else None)
            if not regions:
                raise FabrecError("no face found to reconstruct")
            cb = regions[0].crop
        _, crops, found = self._read([rgb], [(0, cb)], self.model, 1, True)
        rec = found[0].reconstruction
        assert rec is not None
        return crops[0], rec

    def track(self, frames: Iterable[np.ndarray], min_confidence: float = 0.25,
              smoothing: OneEuro | None = None, redetect_every: int = 3,
              min_overlap: float = 0.3, channels: str = "rgb",
              min_similarity: float = MIN_SIMILARITY, max_drop: float = 0.1,
              fps: float | None = None) -> Iterator[FaceResult | None]:
        """One face through video frames (arrays in ``channels`` order, as in :meth:`predict`);
        yields a result per frame (None where no face is found). ``smoothing`` filters the points
        (a template: the track smooths with its own copy, see :meth:`OneEuro.fresh`) at the
        video's frame rate ``fps`` (None: the template's).

        Between detections the face is cropped from the previous frame's points. The
        detector runs on the first frame, whenever the tracked face's mean confidence drops
        under ``min_confidence``, every ``redetect_every`` frames, and whenever the face under
        the crop changed: its appearance (:func:`appearance`, a small grey thumbnail of the
        crop its points frame) correlates less than ``min_similarity`` with the previous
        frame's -- a cut, a swap, an occlusion. After such a change the track starts again
        from the detected face nearest the old one; on a periodic detection it jumps only
        when no detected face overlaps the tracked crop by ``min_overlap`` (intersection over
        union), or when the tracked face has drifted: its mean confidence is more than
        ``max_drop`` under what it was where the detector last placed it (the points creep
        off a face that moves one way for long). A detected face the face filter rejects is no face. The track ends when less
        than half of its crop is inside the frame, or less than three quarters while the
        detector finds no face.
        """
        smoothing = smoothing.fresh(fps) if smoothing is not None else None  # this track's own filter state
        prev: FaceResult | None = None
        seen: np.ndarray | None = None  # the previous face's appearance
        anchor = 0.0  # the face's mean confidence where the detector last placed it
        for t, frame in enumerate(frames):
            rgb = _as_rgb(frame, channels)
            face, changed = self._follow(rgb, prev, min_confidence), False
            if face is not None and seen is not None:
                crop = self._crop_of(face)
                changed = float(seen @ appearance(rgb, crop)) < min_similarity
            if face is None or changed or (redetect_every and t % redetect_every == 0):
                drifted = face is not None and float(face.confidence.mean()) < anchor - max_drop
                face, jumped = self._redetect(rgb, None if changed else face, prev if changed else face or prev,
                                              min_overlap, drifted)
                if jumped and face is not None:
                    anchor = float(face.confidence.mean())
                if jumped and smoothing is not None:
                    smoothing.reset()
            if face is not None and smoothing is not None:
                face.points = smoothing(face.points, t)
            seen = appearance(rgb, self._crop_of(face)) if face is not None else None
            prev = face
            yield face

    def _follow(self, rgb: np.ndarray, prev: FaceResult | None, min_confidence: float) -> FaceResult | None:
        """The face cropped where ``prev``'s points put it, or None (no previous face, its crop
        mostly outside the frame, or a mean confidence under ``min_confidence``)."""
        if prev is None:
            return None
        h, w = rgb.shape[:2]
        cb = self._crop_of(prev)
        if cb.inside(w, h) < 0.5:
            return None
        faces = self._faces(rgb, [Region(prev.box, cb, "tracked", prev.score)])
        return faces[0] if faces and faces[0].confidence.mean() >= min_confidence else None

    def _redetect(self, rgb: np.ndarray, face: FaceResult | None, ref: FaceResult | None,
                  min_overlap: float, drifted: bool = False) -> tuple[FaceResult | None, bool]:
        """The detector's view of a tracked ``face`` (None: lost, or changed): ``(face,
        jumped)``. It is kept when a detected face overlaps its crop by ``min_overlap`` and it
        has not ``drifted`` (then it is cropped again where the detector puts it); otherwise
        the detected face nearest ``ref`` (the old face) replaces it, in its most confident
        orientation, or None when the face filter rejects that one. With no detection, a face
        leaving the frame (under three quarters inside) is dropped."""
        h, w = rgb.shape[:2]
        regions = self.crops_for(rgb, None)  # detector only; the network runs on a switch
        mine = self._crop_of(face) if face is not None else None
        if not regions:
            return (None if mine is not None and mine.inside(w, h) < 0.75 else face), False
        best = max(mine.iou(r.crop) for r in regions) if mine is not None else 0.0
        if best >= min_overlap and not drifted and best >= REANCHOR_IOU:
            return face, False
        region = _nearest(regions, self._crop_of(ref) if ref is not None else None)
        group = [r for r in regions if r.group == region.group] if region.group >= 0 else [region]
        found = self._faces(rgb, group)  # its most confident orientation, if a face
        return (found[0] if found else None), True


def appearance(rgb: np.ndarray, crop: Box, size: int = 32) -> np.ndarray:
    """What a face looks like, for telling the same face from another one in the next frame:
    the crop's grey ``size x size`` thumbnail, mean removed, unit length, flattened
    ``(size * size,)``. The dot product of two is their correlation (1: the same picture)."""
    g = cv2.cvtColor(warp(rgb, crop_matrix(crop, size), size), cv2.COLOR_RGB2GRAY).astype(np.float64).ravel()
    g -= g.mean()
    return g / max(float(np.linalg.norm(g)), 1e-9)


def _nearest(regions: list[Region], ref: Box | None) -> Region:
    """The detected region whose crop is nearest ``ref`` (centre distance), else the largest."""
    if ref is None:
        return max(regions, key=lambda r: r.crop.side)
    return min(regions, key=lambda r: math.hypot(r.crop.cx - ref.cx, r.crop.cy - ref.cy))
