"""File-level prediction for the CLI: images, folders and videos -> JSON/JSONL/CSV + pictures."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import cv2
import numpy as np

from fabrec.errors import FabrecError
from fabrec.inputs import InputFile
from fabrec.io import complete_lines, write_image_atomic, write_text_atomic
from fabrec.pipeline import batch_full, read_ahead
from fabrec.predict import BoxXYWH, FaceResult, LandmarkPredictor, Region
from fabrec.smoothing import OneEuro
from fabrec.results import csv_header, csv_rows, record
from fabrec.visualize import annotate


def predict_files(
    predictor: LandmarkPredictor,
    inputs: list[InputFile],
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
) -> dict[str, Any]:
    """Predict every input; writes per-input JSON (or one ``predictions.jsonl``/``.csv``) in the
    result schema (:mod:`fabrec.results`) and annotated pictures into ``out_dir``. ``inputs``:
    the input files of :func:`fabrec.inputs.expand_inputs` (which names them so that no two
    share an output). Unreadable files are
    reported in the output, not raised. ``batch_size``: faces per network batch, gathered from
    consecutive photos (read and detected ahead in a worker thread; :func:`_records`).
    Returns counts (files, images, videos, faces, frames, frames_with_face, no_face, errors,
    skipped) and ``causes``: each error message (without its file name) with how many inputs it
    hit."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict = {k: 0 for k in ("files", "images", "videos", "faces", "frames", "frames_with_face", "no_face",
                                   "errors", "skipped")}
    counts["causes"] = {}
    sink = _Sink(out, fmt, predictor.scheme.num_points, skip_existing)
    it = progress(iter(inputs)) if progress else iter(inputs)
    todo = _not_done(it, sink, counts) if skip_existing else it
    opts = _ImageOptions(boxes, refine, save_images, save_reconstruction, batch_size)
    for inp, rec in _records(predictor, todo, out, opts, smooth):
        counts["files"] += 1
        _count(counts, rec, inp.path)
        sink.write(rec, inp.out)
    return counts


def _not_done(inputs: Iterator[InputFile], sink: _Sink, counts: dict) -> Iterator[InputFile]:
    """The inputs whose results are not written yet (``--skip-existing``), counting the others."""
    for inp in inputs:
        if sink.done(inp.name.as_posix(), inp.out):
            counts["skipped"] += 1
        else:
            yield inp


@dataclass(frozen=True)
class _ImageOptions:
    """What ``predict_files`` does with each image."""

    boxes: dict[str, list[BoxXYWH]] | None
    refine: int
    save_images: bool
    save_reconstruction: bool
    batch_size: int


@dataclass
class _Photo:
    """An image read and its faces found (regions), or why not."""

    inp: InputFile
    rgb: np.ndarray | None = None
    regions: list[Region] | None = None
    error: str | None = None


def _read_photo(predictor: LandmarkPredictor, inp: InputFile, boxes: dict[str, list[BoxXYWH]] | None) -> _Photo:
    """Read one image and find its face regions (the detector, or its given boxes)."""
    from fabrec.io import read_image

    key = inp.name.as_posix()
    try:
        rgb = read_image(inp.path)
        given = None
        if boxes is not None:
            given = boxes.get(key, boxes.get(inp.path.name))
            if given is None:
                return _Photo(inp, error="no box for this file in --boxes")
        return _Photo(inp, rgb, predictor.crops_for(rgb, given))
    except FabrecError as e:
        return _Photo(inp, error=str(e))


def _records(predictor: LandmarkPredictor, inputs: Iterator[InputFile], out: Path, opts: _ImageOptions,
             smooth: OneEuro | None) -> Iterator[tuple[InputFile, dict]]:
    """(input, record) in input order. Images are read and their faces detected ahead in a
    worker thread (at most ``2 x batch_size`` photos in flight, so memory stays bounded) while
    the network runs on the faces of several photos at once (batches of about ``batch_size``
    faces, :func:`_groups`); a video flushes the photos before it and is tracked on its own."""
    read = lambda inp: _read_photo(predictor, inp, opts.boxes)  # noqa: E731
    ahead = read_ahead(inputs, read, 2 * opts.batch_size, skip=lambda inp: inp.is_video)
    for group in _groups(ahead, opts.batch_size):
        if isinstance(group, list):
            yield from _flush(predictor, group, out, opts)
        else:
            yield group, _predict_video(predictor, group.path, group.name.as_posix(), out / group.out, smooth,
                                        opts.save_images)


def _groups(items: Iterator[tuple[InputFile, _Photo | None]], batch_size: int) -> Iterator[list[_Photo] | InputFile]:
    """Read photos in input order, gathered into lists of about ``batch_size`` faces; a video
    (photo None) comes alone, after the photos before it."""
    pending: list[_Photo] = []
    for inp, photo in items:
        if photo is not None:
            pending.append(photo)
        if pending and (photo is None or batch_full((p.regions or () for p in pending), batch_size)):
            yield pending
            pending = []
        if photo is None:
            yield inp
    if pending:
        yield pending


def _flush(predictor: LandmarkPredictor, photos: list[_Photo], out: Path,
           opts: _ImageOptions) -> Iterator[tuple[InputFile, dict]]:
    """The records of read photos, their faces batched through the network together."""
    if not photos:
        return
    ok = [p for p in photos if p.error is None]
    try:
        found = predictor.faces_in([p.rgb for p in ok], [p.regions for p in ok], opts.refine, opts.batch_size)
    except FabrecError as e:  # an error in the network step: each photo again alone, so it fails its own only
        if len(ok) > 1:
            for p in photos:
                yield from _flush(predictor, [p], out, opts)
            return
        ok[0].error, found = str(e), []
    faces = {id(p): f for p, f in zip(ok, found)}
    for p in photos:
        yield p.inp, _image_record(predictor, p, faces.get(id(p), []), out / p.inp.out, opts)


def _count(counts: dict, rec: dict, path: Path) -> None:
    if "error" in rec:
        counts["errors"] += 1
        cause = str(rec["error"]).split(": ", 1)[-1] if str(rec["error"]).startswith(str(path)) else str(rec["error"])
        counts["causes"][cause] = counts["causes"].get(cause, 0) + 1
    elif rec["kind"] == "video":
        counts["videos"] += 1
        counts["frames"] += rec["frames"]
        counts["frames_with_face"] += rec["frames_with_face"]
        counts["no_face"] += int(rec["frames_with_face"] == 0)
    else:
        counts["images"] += 1
        counts["faces"] += len(rec["faces"])
        counts["no_face"] += int(not rec["faces"])


def _named(out: PurePath, ending: str) -> PurePath:
    """An input's output ``out`` (no suffix of its own) with ``ending`` appended:
    ``a/x`` + ``.json`` -> ``a/x.json``; ``a/x.jpg`` + ``_landmarks.jpg`` -> ``a/x.jpg_landmarks.jpg``."""
    return out.with_name(out.name + ending)


class _Sink:
    """Where records go: one JSON file per input, or lines of one ``predictions.jsonl`` /
    ``predictions.csv`` (resumable: a line cut by an interruption is dropped and redone)."""

    def __init__(self, out: Path, fmt: str, num_points: int, skip_existing: bool) -> None:
        self.out, self.fmt, self.k = out, fmt, num_points
        self.agg = out / f"predictions.{fmt}" if fmt in ("jsonl", "csv") else None
        self.finished: set[str] = set()
        if self.agg is None:
            return
        header = ",".join(csv_header(num_points)) + "\n" if fmt == "csv" else ""
        keep = [header] if header else []
        if skip_existing:  # a line cut by an interruption is dropped and that file redone
            for line in complete_lines(self.agg):
                if line == header:
                    continue
                try:
                    name = json.loads(line)["file"] if fmt == "jsonl" else next(csv.reader([line]))[2]
                except (json.JSONDecodeError, KeyError, IndexError, StopIteration):
                    continue
                self.finished.add(name)
                keep.append(line)
        write_text_atomic(self.agg, "".join(keep))

    def done(self, key: str, out: PurePath) -> bool:
        return key in self.finished if self.agg is not None else (self.out / _named(out, ".json")).exists()

    def write(self, rec: dict, out: PurePath) -> None:
        if self.agg is None:
            path = self.out / _named(out, ".json")
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, json.dumps(rec) + "\n")
            return
        with open(self.agg, "a", newline="") as f:
            if self.fmt == "jsonl":
                f.write(json.dumps(rec) + "\n")
            else:
                w = csv.writer(f, lineterminator="\n")
                for row in csv_rows(rec, self.k):
                    w.writerow(row)


def _image_record(predictor: LandmarkPredictor, photo: _Photo, faces: list[FaceResult], dest: Path,
                  opts: _ImageOptions) -> dict:
    """One image's record (its error, when it failed), and its annotated picture and
    reconstruction where asked."""
    key, rgb = photo.inp.name.as_posix(), photo.rgb
    if photo.error is not None or rgb is None:
        return predictor.image_record(key, None, [], photo.error)
    rec = predictor.image_record(key, rgb, faces)
    if not faces:
        rec["note"] = "no face found"
    dest.parent.mkdir(parents=True, exist_ok=True)
    if opts.save_images and faces:
        write_image_atomic(_named(dest, "_landmarks.jpg"), annotate(rgb, faces))
    if opts.save_reconstruction and faces:
        crop, rec_img = predictor.reconstruct(rgb, faces[0].crop if faces[0].crop else faces[0].box)
        write_image_atomic(_named(dest, "_reconstruction.png"), np.hstack([crop, rec_img]))
    return rec


def _record(predictor: LandmarkPredictor, kind: str, key: str, **fields: Any) -> dict:
    return record(kind, key, predictor.model_name, predictor.scheme.name, **fields)


def _predict_video(predictor: LandmarkPredictor, path: Path, key: str, dest: Path, smooth: OneEuro | None,
                   save: bool) -> dict:
    """Track one face through a video: a frame record per frame in ``<name>_frames.jsonl``
    (atomic), an annotated ``<name>_landmarks.mp4``, and the summary record returned."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        return _record(predictor, "video", key, error=f"{path}: cannot open video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    frames_out = Path(_named(dest, "_frames.jsonl"))
    frames_out.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    n = found = 0
    size: tuple[int, int] | None = None

    def frames() -> Iterator[np.ndarray]:
        while True:
            ok, bgr = cap.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    tmp = frames_out.with_suffix(".jsonl.tmp")
    pending: list[np.ndarray] = []

    def feed() -> Iterator[np.ndarray]:
        for f in frames():
            pending.append(f)
            yield f

    with open(tmp, "w") as fj:
        for t, face in enumerate(predictor.track(feed(), smoothing=smooth, fps=fps)):
            rgb = pending.pop(0)
            n += 1
            found += face is not None
            size = (rgb.shape[1], rgb.shape[0])
            fj.write(json.dumps(_record(predictor, "frame", key, frame=t, time_s=round(t / fps, 4), width=size[0],
                                        height=size[1], faces=[face.to_dict()] if face else [])) + "\n")
            if save:
                if writer is None:
                    writer = cv2.VideoWriter(str(_named(dest, "_landmarks.mp4")),
                                             cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
                writer.write(cv2.cvtColor(annotate(rgb, [face] if face else []), cv2.COLOR_RGB2BGR))
    cap.release()
    if n == 0:
        tmp.unlink()
        return _record(predictor, "video", key, error=f"{path}: no readable frames")
    if writer is not None:
        writer.release()
    tmp.replace(frames_out)
    return _record(predictor, "video", key, width=size[0], height=size[1], frames=n,  # type: ignore[index]
                   frames_with_face=found, per_frame=str(frames_out.name))
