"""OpenCV's Haar cascade: a box-only face detector that ships with opencv-python."""

from __future__ import annotations

import math

import cv2
import numpy as np

from fabrec.errors import FabrecError
from fabrec.faces.detectors import Calibration, Detection, DetectorOptions


class OpenCVCascade:
    """OpenCV's bundled Haar cascade (``haarcascade_frontalface_alt2``); weights ship with
    opencv-python, nothing is downloaded. No score and no points."""

    name = "opencv"
    # measured by benchmarks/calibrate_detector.py on HELEN-train (see module docstring)
    calibration = Calibration(cx=0.504, cy=0.648, w=0.877, h=0.850)

    def __init__(self, options: DetectorOptions | None = None) -> None:
        min_face = (options or DetectorOptions()).min_face
        path = cv2.data.haarcascades + "haarcascade_frontalface_alt2.xml"
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise FabrecError(f"{path}: cannot load OpenCV's face cascade")
        self.min_size = max(1, int(math.ceil(min_face)))

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        found = self.cascade.detectMultiScale(gray, 1.1, 4, minSize=(self.min_size, self.min_size))
        dets = [Detection(tuple(float(v) for v in b)) for b in found]  # type: ignore[arg-type]
        return sorted(dets, key=lambda d: -d.box[2] * d.box[3])
