"""``fabrec prepare-faces``: any folder of photos -> upright face crops for the autoencoder.

Every photo is searched with the bundled detector (:mod:`fabrec.faces.detectors`); each face is cropped
the way ``predict`` crops faces (:mod:`fabrec.faces.framing`: the five-point frame, eyes level) with
the autoencoder's framing (``crop_top`` / ``crop_bottom``) at its input size, and written
compactly (WebP by default). Writes into ``OUT``:

- ``faces/<relative folder>/<photo stem>_<k>.<ext>``: the crops;
- ``manifest.jsonl`` (``manifest-K-of-N.jsonl`` for a shard): one line per photo -- its
  ``source``, and per face the crop ``file``, detector ``box``, ``score``, five ``points``,
  ``roll_degrees`` -- or why it gave nothing (``error``, ``skipped`` faces with reasons);
- ``summary.json``: photos, faces kept, photos without a face, skipped faces and photos by
  reason, over every manifest in ``OUT``.

Resumable: a photo whose manifest line is complete is not redone; a line cut by a crash is
dropped and that photo redone. Crops are written atomically before their manifest line.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fabrec.faces.detectors import (DEFAULT_MIN_SCORE, Detection, Detector, DetectorOptions, calibration_of,
                                    get_detector)
from fabrec.errors import FabrecError
from fabrec.faces.framing import Framing
from fabrec.io import (IMAGE_EXTENSIONS, complete_lines, read_image, write_image_atomic, write_json_atomic,
                       write_text_atomic)
from fabrec.inputs import shard_index
from fabrec.predict import LandmarkPredictor
from fabrec.transforms import crop_matrix, warp

log = logging.getLogger(__name__)
FORMATS = {"webp": ".webp", "jpg": ".jpg", "png": ".png"}


@dataclass(frozen=True)
class PrepareConfig:
    """How faces are found and written.

    Attributes:
        size: crop side in pixels (the autoencoder's input size).
        top, bottom: the autoencoder's framing (``crop_top``, ``crop_bottom``).
        fmt: ``webp``, ``jpg`` or ``png``; ``quality``: WebP / JPEG quality (1-100).
        min_score: YuNet score threshold; min_face: smallest face kept (mean box side, pixels).
        rotations: orientations YuNet searches (degrees).
        face_filter: the landmark model (a spec) whose face filter drops detections that are
            not faces (prints, patterns, hands; :mod:`fabrec.face_filter`), or None for none.
    """

    size: int = 128
    top: float = 0.18
    bottom: float = 0.01
    fmt: str = "webp"
    quality: int = 90
    min_score: float = DEFAULT_MIN_SCORE
    min_face: float = 40.0
    rotations: tuple[int, ...] = (0,)
    face_filter: str | None = "default"


def list_photos(src: str | Path) -> list[Path]:
    """Image files under ``src`` (recursive), sorted by relative path."""
    root = Path(src)
    if not root.is_dir():
        raise FabrecError(f"{root}: no such folder")
    files = sorted(p.relative_to(root) for p in root.rglob("*")
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise FabrecError(f"{root}: no images ({', '.join(IMAGE_EXTENSIONS)})")
    return files


def _done(manifest: Path) -> set[str]:
    """Sources whose manifest line is complete; rewrites the file without a cut last line."""
    keep, done = [], set()
    for line in complete_lines(manifest):
        try:
            done.add(json.loads(line)["source"])
        except (json.JSONDecodeError, KeyError):
            continue
        keep.append(line)
    if manifest.exists():
        write_text_atomic(manifest, "".join(keep))
    return done


def crop_face(rgb: np.ndarray, det: Detection, cfg: PrepareConfig) -> tuple[np.ndarray, float]:
    """The upright crop ``(size, size, 3)`` of one detected face and its roll in degrees."""
    box = Framing("landmarks", cfg.top, cfg.bottom).of_detection(det, calibration_of("yunet"))
    return warp(rgb, crop_matrix(box, cfg.size), cfg.size, "replicate"), math.degrees(box.angle)


def _photo(src: Path, rel: Path, faces_dir: Path, det: Detector, cfg: PrepareConfig,
           judge: LandmarkPredictor | None = None) -> dict[str, Any]:
    """One photo's manifest entry (crops written); ``judge``: the predictor whose face filter
    decides which detections are faces."""
    entry: dict[str, Any] = {"source": str(rel), "faces": []}
    try:
        rgb = read_image(src / rel)
    except FabrecError as e:
        entry["error"] = str(e).split(": ", 1)[-1]
        return entry
    skipped = []
    dets = det.detect(rgb)
    verdicts = judge.detected_faces(rgb, dets) if judge is not None and dets else [True] * len(dets)
    for k, (d, face) in enumerate(zip(dets, verdicts)):
        if d.size < cfg.min_face:
            skipped.append({"reason": f"face smaller than {cfg.min_face:g} px", "size": round(d.size, 1)})
            continue
        if face is None:
            skipped.append({"reason": "not a face (face filter)", "box": [round(v, 1) for v in d.box]})
            continue
        crop, roll = crop_face(rgb, d, cfg)
        out = faces_dir / rel.parent / f"{rel.stem}_{k}{FORMATS[cfg.fmt]}"
        _write(out, crop, cfg)
        entry["faces"].append({"file": str(out.relative_to(faces_dir.parent)), "box": [round(v, 1) for v in d.box],
                               "score": round(d.score, 4), "points": np.round(d.points, 1).tolist(),
                               "roll_degrees": round(roll, 2)})
    if skipped:
        entry["skipped"] = skipped
    return entry


def _write(path: Path, rgb: np.ndarray, cfg: PrepareConfig) -> None:
    params = {"webp": [cv2.IMWRITE_WEBP_QUALITY, cfg.quality], "jpg": [cv2.IMWRITE_JPEG_QUALITY, cfg.quality],
              "png": []}[cfg.fmt]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image_atomic(path, rgb, params)


def prepare_faces(src: str | Path, out: str | Path, cfg: PrepareConfig = PrepareConfig(),
                  shard: tuple[int, int] | None = None,
                  progress: Callable[[Iterator, int], Iterator] | None = None) -> dict[str, Any]:
    """Prepare the faces of every photo under ``src`` into ``out`` (see the module docstring);
    ``shard`` ``(K, N)`` takes only the photos of shard K of N. Returns the summary over every
    manifest in ``out``."""
    if cfg.fmt not in FORMATS:
        raise FabrecError(f"format must be one of {', '.join(FORMATS)}, got '{cfg.fmt}'")
    src, out = Path(src), Path(out)
    photos = list_photos(src)
    if shard is not None:
        photos = [p for p in photos if shard_index(str(p), shard[1]) == shard[0]]
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / ("manifest.jsonl" if shard is None else f"manifest-{shard[0]}-of-{shard[1]}.jsonl")
    done = _done(manifest)
    todo = [p for p in photos if str(p) not in done]
    log.info("prepare-faces: %d photos, %d already done", len(photos), len(photos) - len(todo))
    det = get_detector("yunet", DetectorOptions(cfg.min_score, 0.0, tuple(cfg.rotations)))
    judge = None
    if cfg.face_filter is not None:
        judge = LandmarkPredictor.from_pretrained(cfg.face_filter, detector=det, quality=False, min_score=cfg.min_score,
                                                 flip_from=None,  # only its verdicts are used: no second pass
                                                 threads=None)  # the caller set the thread count
        if judge.face_filter is None:
            raise FabrecError(f"--face-filter {cfg.face_filter}: that model has no face filter (give none)")
    it = progress(iter(todo), len(todo)) if progress else iter(todo)
    with open(manifest, "a") as f:
        for rel in it:
            f.write(json.dumps(_photo(src, rel, out / "faces", det, cfg, judge)) + "\n")
            f.flush()
            os.fsync(f.fileno())
    summary = summarize(out, cfg)
    write_json_atomic(out / "summary.json", summary)
    return summary


def summarize(out: str | Path, cfg: PrepareConfig) -> dict[str, Any]:
    """Counts over every ``manifest*.jsonl`` in ``out``."""
    photos = faces = without = 0
    skipped_faces: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for m in sorted(Path(out).glob("manifest*.jsonl")):
        for line in m.read_text().splitlines():
            e = json.loads(line)
            photos += 1
            faces += len(e["faces"])
            if "error" in e:
                failed[e["error"]] += 1
            elif not e["faces"]:
                without += 1
            for s in e.get("skipped", []):
                skipped_faces[s["reason"]] += 1
    return {"photos": photos, "faces_kept": faces, "photos_without_a_face": without,
            "photos_unreadable": dict(failed), "faces_skipped": dict(skipped_faces),
            "crop": {"size": cfg.size, "crop_top": cfg.top, "crop_bottom": cfg.bottom, "format": cfg.fmt,
                     "quality": cfg.quality},
            "detector": {"name": "yunet", "min_score": cfg.min_score, "min_face": cfg.min_face,
                         "rotations": list(cfg.rotations), "face_filter": cfg.face_filter}}
