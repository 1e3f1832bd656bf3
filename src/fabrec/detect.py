"""Face detectors behind one small protocol, and detector-box -> model-crop calibration.

A detector returns boxes ``(x, y, w, h)`` in pixels. Detector boxes frame faces differently
from the landmark-extent boxes a model was trained with, so each detector carries a
calibration measured on 300-W HELEN-train (870 faces, ``benchmarks/calibrate_detector.py``):
the landmark extent's centre offset and size in units of the detector box side. From that
virtual extent the model's own framing rule (``crop_top``, ``crop_bottom``) makes the crop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from fabrec.errors import FabrecError
from fabrec.transforms import Box


@dataclass(frozen=True)
class Calibration:
    """Landmark extent relative to a detector box of side ``s`` at ``(x, y)``:
    centre ``(x + s*cx, y + s*cy)``, width ``s*w``, height ``s*h``."""

    cx: float
    cy: float
    w: float
    h: float


class Detector(Protocol):
    name: str
    calibration: Calibration

    def detect(self, rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
        """Face boxes ``(x, y, w, h)`` in an RGB ``uint8 (H, W, 3)`` image, largest first."""
        ...


class OpenCVCascade:
    """OpenCV's bundled Haar cascade (``haarcascade_frontalface_alt2``); weights ship with
    opencv-python, nothing is downloaded."""

    name = "opencv"
    # measured by benchmarks/calibrate_detector.py on HELEN-train (see module docstring)
    calibration = Calibration(cx=0.504, cy=0.648, w=0.877, h=0.850)

    def __init__(self, min_size: int = 24) -> None:
        path = cv2.data.haarcascades + "haarcascade_frontalface_alt2.xml"
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise FabrecError(f"{path}: cannot load OpenCV's face cascade")
        self.min_size = min_size

    def detect(self, rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
        gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        found = self.cascade.detectMultiScale(gray, 1.1, 4, minSize=(self.min_size, self.min_size))
        boxes = [tuple(float(v) for v in b) for b in found]
        return sorted(boxes, key=lambda b: -b[2] * b[3])  # type: ignore[return-value]


class DlibHOG:
    """dlib's HOG frontal face detector (``pip install fabrec[dlib]``)."""

    name = "dlib"
    calibration = Calibration(cx=0.508, cy=0.600, w=0.986, h=0.940)

    def __init__(self) -> None:
        try:
            import dlib
        except ImportError:
            raise FabrecError("the dlib detector needs: pip install 'fabrec[dlib]'") from None
        self.det = dlib.get_frontal_face_detector()

    def detect(self, rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
        rects = self.det(np.ascontiguousarray(rgb), 1)
        boxes = [(float(r.left()), float(r.top()), float(r.width()), float(r.height())) for r in rects]
        return sorted(boxes, key=lambda b: -b[2] * b[3])


DETECTORS = {"opencv": OpenCVCascade, "dlib": DlibHOG}


def get_detector(name: str) -> Detector:
    """``opencv`` (default) or ``dlib``."""
    if name not in DETECTORS:
        raise FabrecError(f"unknown detector '{name}' (use {', '.join(DETECTORS)})")
    return DETECTORS[name]()  # type: ignore[return-value]


def crop_box(det_box: tuple[float, float, float, float], cal: Calibration, framing: tuple[float, float]) -> Box:
    """Model crop box from a detector box via the detector's calibration and the model's
    framing (``crop_top``, ``crop_bottom`` as in :meth:`Box.from_landmarks`)."""
    x, y, w, h = det_box
    s = (w + h) / 2.0
    ecx, ecy = x + s * cal.cx, y + s * cal.cy
    ew, eh = s * cal.w, s * cal.h
    top, bottom = framing
    y0, y1 = ecy - eh / 2 - top * eh, ecy + eh / 2 + bottom * eh
    return Box(ecx, (y0 + y1) / 2.0, float(max(ew, y1 - y0)))
