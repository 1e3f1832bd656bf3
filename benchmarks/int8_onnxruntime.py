"""Would int8 help? onnxruntime static quantization (QDQ, per-channel int8 weights, uint8
activations calibrated on 64 real face crops) of the default model's landmark path, against
the same graph in fp32: network speed at batch 32 and how far the points move.

    python benchmarks/int8_onnxruntime.py --json benchmarks/results/int8_onnxruntime.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from pathlib import Path

import torch

from fabrec.bench import timed
from fabrec.export import export_onnx, ort_session
from fabrec.heatmaps import decode_reference
from fabrec.landmark_model import load_landmark_model
from fabrec.runtime import set_threads
from fabrec.sample_photo import face_crops


def main() -> int:
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    threads = set_threads(a.threads)
    model = load_landmark_model(a.model)
    tmp = Path(tempfile.mkdtemp())
    export_onnx(model, tmp / "fp32.onnx")
    calib = face_crops(model.image_size, 64, seed=3).numpy()

    class Crops(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"images": calib[i:i + 8]} for i in range(0, len(calib), 8)])

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(tmp / "fp32.onnx"), str(tmp / "int8.onnx"), Crops(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    x = face_crops(model.image_size, 32, seed=9).numpy()  # not the calibration crops
    out = {"model": a.model, "threads": threads, "onnxruntime": ort.__version__, "torch": torch.__version__,
           "python": platform.python_version()}
    ref = None
    for name in ("fp32", "int8"):
        sess = ort_session(tmp / f"{name}.onnx", threads)
        hm = sess.run(None, {"images": x})[0]
        t = statistics.median(timed(lambda: sess.run(None, {"images": x}), a.reps, warmup=2))
        pts, _ = decode_reference(torch.from_numpy(hm))
        ref = pts if ref is None else ref
        shift = (pts - ref).norm(dim=-1)
        out[name] = {"network_faces_per_s_b32": 32 / t, "mean_point_shift_heatmap_px": float(shift.mean()),
                     "points_moved_pct": float(100 * (shift > 0).float().mean()),
                     "ops": sorted({n.op_type for n in __import__("onnx").load(str(tmp / f"{name}.onnx")).graph.node})}
        print(name, json.dumps({k: v for k, v in out[name].items() if k != "ops"}))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
