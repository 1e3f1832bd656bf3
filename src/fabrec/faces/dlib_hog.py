"""dlib's HOG frontal face detector (optional: ``pip install 'fabrec[dlib]'``)."""

from __future__ import annotations

import numpy as np

from fabrec.errors import FabrecError
from fabrec.faces.detectors import Calibration, Detection, DetectorOptions


class DlibHOG:
    """dlib's HOG frontal face detector (``pip install fabrec[dlib]``); score: dlib's."""

    name = "dlib"
    calibration = Calibration(cx=0.508, cy=0.600, w=0.986, h=0.940)

    def __init__(self, options: DetectorOptions | None = None) -> None:
        try:
            import dlib
        except ImportError:
            raise FabrecError("the dlib detector needs: pip install 'fabrec[dlib]'") from None
        self.det = dlib.get_frontal_face_detector()
        self.min_face = (options or DetectorOptions()).min_face

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        rects, scores, _ = self.det.run(np.ascontiguousarray(rgb), 1, 0.0)
        dets = [Detection((float(r.left()), float(r.top()), float(r.width()), float(r.height())), float(s))
                for r, s in zip(rects, scores)]
        return sorted((d for d in dets if d.size >= self.min_face), key=lambda d: -d.box[2] * d.box[3])
