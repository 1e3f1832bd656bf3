"""File-level prediction for the CLI: images, folders and videos -> JSON/JSONL/CSV + pictures."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from fabrec.datasets.boxes import read_box_rows
from fabrec.errors import FabrecError
from fabrec.io import IMAGE_EXTENSIONS, write_image_atomic, write_text_atomic
from fabrec.predict import BoxXYWH, FaceResult, LandmarkPredictor, OneEuro
from fabrec.visualize import draw_points

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def expand_inputs(inputs: list[str]) -> list[tuple[Path, Path]]:
    """(file, name relative to its input root) for images and videos; folders are recursive."""
    out = []
    for s in inputs:
        p = Path(s)
        if not p.exists():
            raise FabrecError(f"{p}: no such file or folder")
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)
            out += [(f, f.relative_to(p)) for f in files]
        else:
            if p.suffix.lower() not in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS:
                raise FabrecError(f"{p}: not an image or video ({p.suffix or 'no extension'})")
            out.append((p, Path(p.name)))
    if not out:
        raise FabrecError("no images or videos in the inputs")
    return out


def read_boxes_file(path: str | Path) -> dict[str, list[BoxXYWH]]:
    """``{"name": [[x, y, w, h], ...]}`` JSON, or CSV rows ``path,x,y,w,h``; keys are file names
    or relative paths."""
    p = Path(path)
    if not p.is_file():
        raise FabrecError(f"{p}: boxes file not found")
    out: dict[str, list[BoxXYWH]] = {}
    try:
        text = p.read_text(encoding="utf-8")
        if p.suffix.lower() == ".json":
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("expected an object of name -> [[x, y, w, h], ...]")
            for k, v in data.items():
                out[k] = [tuple(float(t) for t in b) for b in v]  # type: ignore[misc]
        else:
            good, bad = read_box_rows(p)
            if bad:
                raise ValueError(f"line {bad[0]} is not path,x,y,w,h with w, h > 0")
            for name, b in good:
                out.setdefault(name, []).append(b)
    except (ValueError, TypeError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FabrecError(f"{p}: bad boxes file ({e})") from None
    for k, bs in out.items():
        for b in bs:
            if len(b) != 4 or not np.isfinite(b).all() or b[2] <= 0 or b[3] <= 0:
                raise FabrecError(f"{p}: bad box for '{k}': {b} (need x, y, w > 0, h > 0)")
    return out


def annotate(rgb: np.ndarray, faces: list[FaceResult]) -> np.ndarray:
    """Image with each face's box and points (red = low, green = high confidence)."""
    out = rgb.copy()
    for f in faces:
        side = f.crop.side if f.crop is not None else float(max(np.ptp(f.points[:, 0]), np.ptp(f.points[:, 1])))
        r = max(2, round(side / 50))  # markers scale with the face, not the picture
        if f.crop is not None:
            x, y, w, h = f.crop.to_xywh()
            cv2.rectangle(out, (int(x), int(y)), (int(x + w), int(y + h)), (255, 200, 0), max(1, r // 2))
        out = draw_points(out, f.points, f.confidence, radius=r)
    return out


def predict_files(
    predictor: LandmarkPredictor,
    inputs: list[str],
    out_dir: str | Path,
    fmt: str = "json",
    boxes: dict[str, list[BoxXYWH]] | None = None,
    refine: int = 0,
    save_images: bool = True,
    save_reconstruction: bool = False,
    skip_existing: bool = False,
    smooth: OneEuro | None = None,
    progress: Callable[[Iterator], Iterator] | None = None,
    batch_size: int = 32,
) -> dict[str, int]:
    """Predict every input; writes per-input JSON (or one ``predictions.jsonl``/``.csv``) and
    annotated pictures into ``out_dir``. Unreadable files are reported in the output, not
    raised. ``batch_size``: faces of one image per network batch. Returns counts (files,
    faces, no_face, errors, skipped) and ``causes``: each error message (without its file
    name) with how many inputs it hit."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = expand_inputs(inputs)
    counts: dict = {"files": 0, "faces": 0, "no_face": 0, "errors": 0, "skipped": 0, "causes": {}}
    agg = out / f"predictions.{fmt}" if fmt in ("jsonl", "csv") else None
    done: set[str] = set()
    if agg is not None and skip_existing and agg.exists():
        keep = []
        for line in agg.read_text().splitlines(keepends=True):
            if not line.endswith("\n"):
                continue  # a line cut by an interruption: drop it and redo that file
            try:
                done.add(json.loads(line)["file"] if fmt == "jsonl" else line.split(",", 1)[0])
            except (json.JSONDecodeError, KeyError):
                continue
            keep.append(line)
        if fmt == "csv":
            keep = ["file,face,quality,points...\n"] + [ln for ln in keep if not ln.startswith("file,")]
        write_text_atomic(agg, "".join(keep))
    elif agg is not None:
        agg.write_text("file,face,quality,points...\n" if fmt == "csv" else "")
    it = progress(iter(files)) if progress else iter(files)
    for path, rel in it:
        key = str(rel)
        json_path = out / rel.with_suffix(".json")
        if skip_existing and ((agg is None and json_path.exists()) or key in done):
            counts["skipped"] += 1
            continue
        counts["files"] += 1
        if path.suffix.lower() in VIDEO_EXTENSIONS:
            rec = _predict_video(predictor, path, out / rel, smooth, save_images)
        else:
            rec = _predict_image(predictor, path, key, out / rel, boxes, refine, save_images, save_reconstruction,
                                 batch_size)
        if "error" in rec:
            counts["errors"] += 1
            cause = str(rec["error"]).split(": ", 1)[-1] if str(rec["error"]).startswith(str(path)) else str(rec["error"])
            counts["causes"][cause] = counts["causes"].get(cause, 0) + 1
        else:
            n = rec.get("faces_found", len(rec.get("faces", [])))
            counts["faces"] += n
            counts["no_face"] += int(n == 0)
        if agg is None:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(json_path, json.dumps(rec) + "\n")
        else:
            with open(agg, "a") as f:
                if fmt == "jsonl":
                    f.write(json.dumps(rec) + "\n")
                else:
                    for i, face in enumerate(rec.get("faces", [])):
                        flat = ",".join(f"{v:.2f}" for pt in face["points"] for v in pt)
                        f.write(f"{key},{i},{face['quality']},{flat}\n")
                    if not rec.get("faces"):
                        f.write(f"{key},,,{rec.get('error', 'no face')}\n")
    return counts


def _predict_image(predictor: LandmarkPredictor, path: Path, key: str, dest: Path,
                   boxes: dict[str, list[BoxXYWH]] | None, refine: int, save_images: bool,
                   save_reconstruction: bool, batch_size: int) -> dict:
    from fabrec.io import read_image

    try:
        rgb = read_image(path)
        given = None
        if boxes is not None:
            given = boxes.get(key, boxes.get(path.name))
            if given is None:
                return {"file": key, "error": "no box for this file in --boxes", "faces": []}
        faces = predictor.predict(rgb, given, refine=refine, batch_size=batch_size)
    except FabrecError as e:
        return {"file": key, "error": str(e), "faces": []}
    rec = {"file": key, "width": rgb.shape[1], "height": rgb.shape[0], "scheme": predictor.scheme.name,
           "faces": [f.to_dict() for f in faces]}
    if not faces:
        rec["note"] = "no face found"
    dest.parent.mkdir(parents=True, exist_ok=True)
    if save_images and faces:
        write_image_atomic(dest.with_name(dest.stem + "_landmarks.jpg"), annotate(rgb, faces))
    if save_reconstruction and faces:
        crop, rec_img = predictor.reconstruct(rgb, faces[0].crop if faces[0].crop else faces[0].box)
        write_image_atomic(dest.with_name(dest.stem + "_reconstruction.png"), np.hstack([crop, rec_img]))
    return rec


def _predict_video(predictor: LandmarkPredictor, path: Path, dest: Path, smooth: OneEuro | None, save: bool) -> dict:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        return {"file": str(path.name), "error": f"{path}: cannot open video", "faces": []}
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    frames_out = dest.with_name(dest.stem + "_frames.jsonl")
    frames_out.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    n = found = 0

    def frames() -> Iterator[np.ndarray]:
        while True:
            ok, bgr = cap.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    if smooth is not None:
        smooth.fps = fps
    tmp = frames_out.with_suffix(".jsonl.tmp")
    pending: list[np.ndarray] = []

    def feed() -> Iterator[np.ndarray]:
        for f in frames():
            pending.append(f)
            yield f

    with open(tmp, "w") as fj:
        for t, face in enumerate(predictor.track(feed(), smoothing=smooth)):
            rgb = pending.pop(0)
            n += 1
            found += face is not None
            fj.write(json.dumps({"frame": t, "face": face.to_dict() if face else None}) + "\n")
            if save:
                if writer is None:
                    h, w = rgb.shape[:2]
                    writer = cv2.VideoWriter(str(dest.with_name(dest.stem + "_landmarks.mp4")),
                                             cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                writer.write(cv2.cvtColor(annotate(rgb, [face] if face else []), cv2.COLOR_RGB2BGR))
    if n == 0:
        cap.release()
        tmp.unlink()
        return {"file": str(path.name), "error": f"{path}: no readable frames", "faces": []}
    cap.release()
    if writer is not None:
        writer.release()
    tmp.replace(frames_out)
    return {"file": str(path.name), "frames": n, "frames_with_face": found, "faces_found": int(found > 0),
            "per_frame": str(frames_out.name), "faces": []}
