"""YuNet (MIT licence, bundled: ``fabrec/assets/yunet``): the default face detector -- boxes,
five points and a score per face, in any of four orientations."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from fabrec.errors import FabrecError
from fabrec.faces.detectors import Calibration, Detection, DetectorOptions

YUNET_PATH = Path(__file__).resolve().parents[1] / "assets" / "yunet" / "face_detection_yunet_2023mar.onnx"


class YuNet:
    """YuNet (MIT licence, bundled: ``fabrec/assets/yunet``) through ``cv2.FaceDetectorYN``:
    boxes, five points and a score per face.

    Photos are shrunk so their longer side is at most ``max_side`` (YuNet is trained for faces
    of about 10-300 px) and, when larger, also to ``2 * max_side`` (small faces in large photos:
    in a 4000 x 3000 mosaic of 57-px AFW faces, 562 of 768 found by one 640-px pass, 762 by
    both; ``benchmarks/large_photos.py``); when nothing is found, a padded half-size copy is
    tried (faces that fill the photo). ``rotations`` (degrees, multiples of 90) are searched
    too: a face found
    in several orientations is one :class:`Detection` (the best score) with the others as
    ``alternatives``. YuNet scores a face seen upside down or sideways nearly as high as upright
    (measured on AFW rotated by 30-60 degrees), so the choice between them is left to the
    caller: the predictor keeps the candidate its landmark model is most confident about
    (right on 99-100% of AFW faces at 0-180 degrees), labelled photos the one that fits their
    labels.

    Args:
        options: score threshold (YuNet's own), smallest face, orientations searched
            (:class:`~fabrec.faces.detectors.DetectorOptions`).
        max_side: the longer side a photo is shrunk to before detection.
        nms: YuNet's own overlap threshold within one orientation.
    """

    name = "yunet"
    # measured by benchmarks/calibrate_detector.py on HELEN-train; used only where a caller
    # passes YuNet boxes without points (boxes_as="yunet")
    calibration = Calibration(cx=0.435, cy=0.706, w=0.884, h=0.859)

    def __init__(self, options: DetectorOptions | None = None, max_side: int = 640, nms: float = 0.3) -> None:
        o = options or DetectorOptions()
        if not YUNET_PATH.is_file():
            raise FabrecError(f"{YUNET_PATH}: the bundled YuNet detector is missing (reinstall fabrec)")
        self.score, self.min_face, self.max_side, self.nms = o.score, o.min_face, max_side, nms
        self.rotations = tuple(dict.fromkeys(int(r) % 360 for r in o.rotations))
        self.net = cv2.FaceDetectorYN.create(str(YUNET_PATH), "", (320, 320), o.score, nms, 5000)
        self._lock = threading.Lock()  # the OpenCV detector keeps its input size: one call at a time

    def _raw(self, bgr: np.ndarray) -> np.ndarray:
        """YuNet's rows ``(N, 15)`` for a BGR image as it is."""
        h, w = bgr.shape[:2]
        with self._lock:
            self.net.setInputSize((w, h))
            _, faces = self.net.detect(bgr)
        return np.zeros((0, 15), np.float32) if faces is None else faces

    def _scaled(self, bgr: np.ndarray) -> np.ndarray:
        """Rows in this image's pixels: the photo shrunk to ``max_side`` and, when it is larger,
        to ``2 * max_side`` too (small faces in large photos), merged by non-maximum
        suppression; a padded half-size retry when neither finds a face."""
        h, w = bgr.shape[:2]
        sides = (self.max_side, 2 * self.max_side) if max(h, w) > self.max_side else (self.max_side,)
        shrunk = [_shrunk(bgr, side) for side in sides]
        found = [_rescale(self._raw(img), w / img.shape[1], h / img.shape[0], 0.0, 0.0) for img in shrunk]
        rows = np.concatenate(found)
        if len(found) > 1:
            rows = rows[_nms(rows, self.nms)]
        if len(rows):
            return rows
        small = shrunk[0]
        pad = max(small.shape[:2]) // 2
        padded = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        half = cv2.resize(padded, (max(1, padded.shape[1] // 2), max(1, padded.shape[0] // 2)),
                          interpolation=cv2.INTER_AREA)
        fx, fy = padded.shape[1] / half.shape[1], padded.shape[0] / half.shape[0]
        rows = _rescale(self._raw(half), fx, fy, -pad, -pad)
        return _rescale(rows, w / small.shape[1], h / small.shape[0], 0.0, 0.0)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        found: list[np.ndarray] = []
        h, w = bgr.shape[:2]
        for r in self.rotations:
            rows = self._scaled(_rotate(bgr, r))
            found.append(_unrotate(rows, r, w, h))
        rows = np.concatenate(found) if found else np.zeros((0, 15), np.float32)
        dets = [Detection(tuple(float(v) for v in r[:4]), float(r[14]), r[4:14].reshape(5, 2).astype(np.float64))
                for r in rows]
        dets = _group(sorted((d for d in dets if d.size >= self.min_face), key=lambda d: -d.score))
        return sorted(dets, key=lambda d: -d.box[2] * d.box[3])  # type: ignore[misc]


def _shrunk(img: np.ndarray, side: int) -> np.ndarray:
    """``img`` with its longer side at most ``side`` (area averaging), or itself."""
    h, w = img.shape[:2]
    f = min(1.0, side / max(h, w))
    if f == 1.0:
        return img
    return cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def _rescale(rows: np.ndarray, fx: float, fy: float, dx: float, dy: float) -> np.ndarray:
    """YuNet rows from a resized (and shifted) copy back to the source's pixels (pixel centres:
    ``p = (q + 0.5) * f - 0.5``; sizes scale by ``f``)."""
    out = rows.astype(np.float64).copy()
    xs, ys = [0, 4, 6, 8, 10, 12], [1, 5, 7, 9, 11, 13]
    out[:, xs] = (out[:, xs] + 0.5) * fx - 0.5 + dx
    out[:, ys] = (out[:, ys] + 0.5) * fy - 0.5 + dy
    out[:, 2] *= fx
    out[:, 3] *= fy
    return out


_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def _rotate(img: np.ndarray, deg: int) -> np.ndarray:
    return img if deg == 0 else cv2.rotate(img, _ROTATE[deg])


def _unrotate(rows: np.ndarray, deg: int, w: int, h: int) -> np.ndarray:
    """Rows found in the image rotated clockwise by ``deg`` back to the ``w x h`` original:
    points map exactly (pixel centres), the box becomes the axis-aligned box of its corners."""
    if deg == 0 or not len(rows):
        return rows
    out = rows.astype(np.float64).copy()

    def back(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if deg == 90:  # clockwise: original (x, y) -> (h - 1 - y, x)
            return y, h - 1 - x
        if deg == 180:
            return w - 1 - x, h - 1 - y
        return w - 1 - y, x  # 270

    for i in range(5):
        out[:, 4 + 2 * i], out[:, 5 + 2 * i] = back(rows[:, 4 + 2 * i], rows[:, 5 + 2 * i])
    x0, y0 = rows[:, 0], rows[:, 1]
    x1, y1 = x0 + rows[:, 2] - 1, y0 + rows[:, 3] - 1  # last pixel inside the box
    ax, ay = back(x0, y0)
    bx, by = back(x1, y1)
    out[:, 0], out[:, 1] = np.minimum(ax, bx), np.minimum(ay, by)
    out[:, 2], out[:, 3] = np.abs(bx - ax) + 1, np.abs(by - ay) + 1
    return out


def _nms(rows: np.ndarray, iou: float) -> np.ndarray:
    """Indices of YuNet rows kept by greedy non-maximum suppression on score (column 14)."""
    order = np.argsort(-rows[:, 14], kind="stable")
    x0, y0 = rows[:, 0], rows[:, 1]
    x1, y1 = x0 + rows[:, 2], y0 + rows[:, 3]
    area = rows[:, 2] * rows[:, 3]
    keep: list[int] = []
    suppressed = np.zeros(len(rows), bool)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        ix = np.clip(np.minimum(x1, x1[i]) - np.maximum(x0, x0[i]), 0, None)
        iy = np.clip(np.minimum(y1, y1[i]) - np.maximum(y0, y0[i]), 0, None)
        inter = ix * iy
        suppressed |= inter / np.maximum(area + area[i] - inter, 1e-9) > iou
    return np.array(keep, int)


def _group(dets: list[Detection]) -> list[Detection]:
    """Detections (best score first) of one face in several orientations -> one detection with
    the others as ``alternatives``: the same face when the centre of one's five points lies
    within half a face size of the other's."""
    groups: list[list[Detection]] = []
    for d in dets:
        c = d.points.mean(0)  # type: ignore[union-attr]
        for g in groups:
            if np.linalg.norm(c - g[0].points.mean(0)) < 0.5 * min(d.size, g[0].size):  # type: ignore[union-attr]
                g.append(d)
                break
        else:
            groups.append([d])
    return [Detection(g[0].box, g[0].score, g[0].points, tuple(g[1:])) for g in groups]
