"""The main job on the bundled photo: landmarks, reconstruction and JSON from the default
model; without bundled weights (a source tree before they were trained), a tiny autoencoder
trained for a few steps and its reconstruction instead."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fabrec.errors import FabrecError
from fabrec.sample_photo import SAMPLE_BOX, SAMPLE_IMAGE


@dataclass
class DemoResult:
    """What the demo found and wrote."""

    faces: int
    points: int = 0
    mean_confidence: float = float("nan")
    quality: float = float("nan")
    files: list[Path] = field(default_factory=list)


def run_demo(out_dir: str | Path, device: str = "cpu") -> DemoResult:
    """Landmarks of the bundled photo with the default model: ``astronaut_landmarks.jpg``,
    ``astronaut_reconstruction.png`` (crop beside reconstruction), ``astronaut.json`` (a result
    record), and ``astronaut_clip.mp4``, a short clip made from the photo to try videos on."""
    from fabrec.io import read_image, write_image_atomic, write_text_atomic
    from fabrec.predict import LandmarkPredictor
    from fabrec.visualize import annotate

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pred = LandmarkPredictor.from_pretrained("default", device=device, threads=None)  # the caller set them
    rgb = read_image(SAMPLE_IMAGE)
    faces = pred.predict(rgb)
    if not faces:
        raise FabrecError(f"{SAMPLE_IMAGE}: the detector found no face")
    files = [out / "astronaut_landmarks.jpg", out / "astronaut_reconstruction.png", out / "astronaut.json"]
    write_image_atomic(files[0], annotate(rgb, faces))
    crop, rec = pred.reconstruct(rgb, faces[0].crop)
    write_image_atomic(files[1], np.hstack([crop, rec]))
    doc = pred.image_record(SAMPLE_IMAGE.name, rgb, faces)
    write_text_atomic(files[2], json.dumps(doc, indent=1) + "\n")
    files.append(write_clip(rgb, out / "astronaut_clip.mp4"))
    f = faces[0]
    return DemoResult(len(faces), len(f.points), float(f.confidence.mean()), f.quality, files)


def write_clip(rgb: np.ndarray, path: Path, frames: int = 30, size: int = 320) -> Path:
    """A short real video to try video prediction on: a ``size`` window panning and zooming
    across the photo, 15 fps (mp4v)."""
    import cv2

    h, w = rgb.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15, (size, size))
    try:
        for t in range(frames):
            a = t / max(frames - 1, 1)
            side = int(min(h, w) * (0.8 - 0.2 * a))
            x0, y0 = int((w - side) * (0.3 + 0.3 * a)), int((h - side) * 0.2)
            frame = cv2.resize(rgb[y0:y0 + side, x0:x0 + side], (size, size), interpolation=cv2.INTER_AREA)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path


def run_tiny_demo(out_dir: str | Path, steps: int = 40, progress: bool = True) -> Path:
    """Train a tiny autoencoder on the bundled face for ``steps`` steps; write the input above
    its reconstruction to ``demo_reconstruction.png`` and return that path."""
    import torch

    from fabrec.autoencoder import load_autoencoder
    from fabrec.config import (
        AEScheduleConfig,
        AETrainConfig,
        AugmentConfig,
        DataConfig,
        ModelConfig,
    )
    from fabrec.datasets.boxes import write_box_csv
    from fabrec.io import write_image_atomic
    from fabrec.train_autoencoder import train_autoencoder
    from fabrec.transforms import Box
    from fabrec.normalization import to_uint8
    from fabrec.visualize import grid

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    box_csv = out / "demo_boxes.csv"
    write_box_csv(box_csv, [(str(SAMPLE_IMAGE), SAMPLE_BOX)] * 64)
    cfg = AETrainConfig(
        model=ModelConfig(image_size=64, width=0.25),
        schedule=AEScheduleConfig(curriculum=False),
        augment=AugmentConfig(rotate=10.0, shear=0.0),
        data=DataConfig(boxes=(str(box_csv),), val_permille=0, num_workers=0),
        batch_size=16, max_steps=steps, checkpoint_every=0, log_every=5,
    )
    train_autoencoder(cfg, out / "run", device="cpu", progress=progress)
    ae = load_autoencoder(out / "run" / "last.pt")
    crop = ae.crop(SAMPLE_IMAGE, Box.from_xywh(*SAMPLE_BOX))
    with torch.no_grad():
        rec = ae.generator(ae.encoder(crop))
    path = out / "demo_reconstruction.png"
    write_image_atomic(path, grid([to_uint8(crop), to_uint8(rec)]))
    return path
