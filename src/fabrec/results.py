"""The result schema (``fabrec-result/1``): one face found in one image (:class:`FaceResult`) and
the records made of faces -- one record shape for images, video frames and video summaries,
written as JSON, JSONL or CSV. The JSON Schema is ``fabrec/schemas/result-1.json``.

**Faces.** Each field of :class:`FaceResult` carries its outputs (:class:`Out`: the JSON key and
value, the JSON Schema, the CSV columns), so the dict, the CSV columns, the CSV reader and the
schema's ``face`` object all come from the class. Adding an output = one field with
``metadata={"out": (Out(...),)}``. The outputs: ``box``, ``score``, ``points``, ``confidence``,
``mean_confidence``, ``quality``, ``reconstruction_error``, ``source``, ``roll_degrees``,
``face_score``, ``head_pose`` (CSV: ``head_yaw``, ``head_pitch``, ``head_roll``).

**Records.** Every record has ``schema``, ``kind`` (``image``, ``frame`` or ``video``), ``file``,
``model`` and ``scheme``; images and frames have ``width``, ``height`` and ``faces`` (a list of
:meth:`FaceResult.to_dict`, empty when no face was found); frames have ``frame`` and ``time_s``;
video summaries have ``frames``, ``frames_with_face`` and ``per_frame`` (the JSONL file of its
frame records). A record for an input that could not be read has ``error`` (one line) and no
faces.

CSV: one row per face (or per face-less image / frame / summary) with the columns of
:func:`csv_header`; points are flattened to ``x0, y0, c0, x1, y1, c1, ...``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from importlib import resources
from typing import Any

import numpy as np

from fabrec.faces.detectors import BoxXYWH
from fabrec.head_pose import HeadPose
from fabrec.transforms import Box

_NUMBER_OR_NULL = {"type": ["number", "null"]}


def _num(v: float, digits: int) -> float | None:
    return None if v is None or math.isnan(v) else round(float(v), digits)


def _cell_num(cells: dict[str, str], key: str) -> float | None:
    return None if cells.get(key, "") == "" else float(cells[key])


@dataclass(frozen=True)
class Out:
    """One output of a field.

    Attributes:
        key: the JSON key.
        value: the field's value -> the JSON value.
        schema: the JSON Schema of that value.
        required: whether every face has the key.
        csv: CSV columns; ``cells`` turns the JSON value into their values and ``read`` the
            row's cells (column -> text) back into the JSON value. ``()``: not in the CSV.
    """

    key: str
    value: Callable[[Any], Any]
    schema: dict[str, Any]
    required: bool = True
    csv: tuple[str, ...] = ()
    cells: Callable[[Any], tuple[Any, ...]] | None = None
    read: Callable[[dict[str, str]], Any] | None = None


def number(key: str, digits: int = 4, required: bool = True, csv: bool = True, **schema: Any) -> Out:
    """A float (NaN -> null) rounded to ``digits``, one CSV column of the same name."""
    return Out(key, lambda v: _num(v, digits), {**_NUMBER_OR_NULL, **schema}, required,
               (key,) if csv else (), (lambda v: (v,)) if csv else None,
               (lambda c: _cell_num(c, key)) if csv else None)


def _mean(conf: np.ndarray) -> float:
    return round(float(np.asarray(conf).mean()), 4)


def _roll(crop: Box | None) -> float | None:
    return None if crop is None else round(math.degrees(crop.angle), 2)


def _pose(p: HeadPose | None) -> dict[str, float] | None:
    return None if p is None else {k: round(v, 2) for k, v in p._asdict().items()}


_ANGLE = {"type": "number", "minimum": -180, "maximum": 180}
_BOX = ("box_x", "box_y", "box_w", "box_h")
_HEAD = ("head_yaw", "head_pitch", "head_roll")

BOX = Out("box", lambda b: [round(float(v), 2) for v in b],
          {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4,
           "description": "x, y, width, height in pixels: the detector's box, a given box, or the crop it was "
                          "tracked / refined from"},
          csv=_BOX, cells=tuple, read=lambda c: [_cell_num(c, k) for k in _BOX])
POINTS = Out("points", lambda p: np.round(p, 2).tolist(),
             {"type": "array", "minItems": 1,
              "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}})
CONFIDENCE = Out("confidence", lambda c: np.round(c, 4).tolist(),
                 {"type": "array", "minItems": 1, "items": {"type": "number"}})
MEAN_CONFIDENCE = Out("mean_confidence", _mean, {"type": "number"}, csv=("mean_confidence",),
                      cells=lambda v: (v,), read=lambda c: _cell_num(c, "mean_confidence"))
SOURCES = ("detector", "given", "tracked", "refined")
SOURCE = Out("source", str, {"enum": list(SOURCES)}, csv=("source",), cells=lambda v: (v,),
             read=lambda c: c["source"])
ROLL = Out("roll_degrees", _roll, {**_NUMBER_OR_NULL, "minimum": -180, "maximum": 180}, csv=("roll_degrees",),
           cells=lambda v: (v,), read=lambda c: _cell_num(c, "roll_degrees"))
HEAD_POSE = Out(
    "head_pose", _pose,
    {"type": ["object", "null"], "required": ["yaw", "pitch", "roll"], "additionalProperties": False,
     "description": "degrees, AFLW2000-3D's convention: in OpenCV's camera frame (x right, y down, z forward) "
                    "the head's rotation is Rx(-pitch) Ry(yaw) Rz(roll); from the 68 points and a fitted 3-D mean "
                    "face; null for other schemes",
     "properties": {"yaw": _ANGLE, "pitch": _ANGLE, "roll": _ANGLE}},
    required=False, csv=_HEAD,
    cells=lambda v: (None, None, None) if v is None else (v["yaw"], v["pitch"], v["roll"]),
    read=lambda c: None if _cell_num(c, "head_yaw") is None else {k: _cell_num(c, f"head_{k}") for k in
                                                                   ("yaw", "pitch", "roll")})


def out(*outputs: Out, **kw: Any) -> Any:
    """A dataclass field written as ``outputs`` (``kw``: ``default`` and the like)."""
    return field(metadata={"out": outputs}, **kw)


@dataclass
class FaceResult:
    """One face found in one image.

    Attributes:
        box: the face box it was cropped from, ``(x, y, w, h)`` pixels (detector, given, or
            derived from points when tracking / refining).
        points: ``(K, 2)`` x, y in image pixels (0-based pixel centres).
        confidence: ``(K,)`` heatmap peak per point (about 0..1).
        quality: face-quality score in [0, 1] from the reconstruction error (1 = the
            autoencoder reproduces the crop perfectly; low = not face-like or badly framed).
        reconstruction_error: mean absolute reconstruction error, 0-255 units.
        source: ``detector``, ``given``, ``tracked`` or ``refined``.
        crop: the model crop (centre, side, roll) the points were found in.
        score: the detector's score for the face (NaN when no detector scored it).
        face_score: the face filter's score in [0, 1] (NaN without a filter; see
            :mod:`fabrec.face_filter`).
        head_pose: yaw, pitch, roll in degrees (:mod:`fabrec.head_pose`; AFLW2000-3D's signs),
            or None (schemes other than the 68 300-W points, or points that fit no head).
    """

    box: BoxXYWH = out(BOX)
    points: np.ndarray = out(POINTS)
    confidence: np.ndarray = out(CONFIDENCE, MEAN_CONFIDENCE)
    quality: float = out(number("quality", minimum=0, maximum=1), default=float("nan"))
    reconstruction_error: float = out(number("reconstruction_error", 3, csv=False, minimum=0), default=float("nan"))
    source: str = out(SOURCE, default="detector")
    crop: Box | None = out(ROLL, default=None, repr=False)
    score: float = out(number("score", description="the detector's score (YuNet: 0..1); null where no detector "
                                                   "scored it"), default=float("nan"))
    face_score: float = out(number(
        "face_score", required=False, minimum=0, maximum=1,
        description="the model's face filter: how sure it is that the crop is a face (detections under its "
                    "threshold are dropped); null without a filter"), default=float("nan"))
    head_pose: HeadPose | None = out(HEAD_POSE, default=None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists of floats), keys as :func:`face_outputs` lists them."""
        return {o.key: o.value(getattr(self, name)) for name, o in face_outputs(type(self))}


def face_outputs(cls: type | None = None) -> list[tuple[str, Out]]:
    """(field name, output) of every output of a face class (default: :class:`FaceResult` as
    this module holds it when called), in field order."""
    return [(f.name, o) for f in fields(cls or globals()["FaceResult"]) for o in f.metadata.get("out", ())]


def face_schema(cls: type | None = None) -> dict[str, Any]:
    """The JSON Schema of one face dict."""
    outs = [o for _, o in face_outputs(cls)]
    return {"type": "object", "required": [o.key for o in outs if o.required], "additionalProperties": False,
            "properties": {o.key: o.schema for o in outs}}


def face_csv_columns(cls: type | None = None) -> list[str]:
    """The per-face CSV columns (the points' ``x0, y0, c0, ...`` come after every column)."""
    return [c for _, o in face_outputs(cls) for c in o.csv]


def face_csv_cells(face: dict[str, Any], cls: type | None = None) -> dict[str, Any]:
    """Column -> value of one face dict (:meth:`FaceResult.to_dict`)."""
    row: dict[str, Any] = {}
    for _, o in face_outputs(cls):
        if o.csv and o.cells is not None:
            row.update(zip(o.csv, o.cells(face.get(o.key))))
    return row


def face_from_csv(cells: dict[str, str], points: list[list[float]], confidence: list[float],
                  cls: type | None = None) -> dict[str, Any]:
    """A face dict back from its CSV cells; outputs without columns read as null (``points``
    and ``confidence`` from the flattened columns)."""
    known = {"points": points, "confidence": confidence}
    return {o.key: known[o.key] if o.key in known else (o.read(cells) if o.read else None)
            for _, o in face_outputs(cls)}


SCHEMA = "fabrec-result/1"
SCHEMA_FILE = "result-1.json"
KINDS = ("image", "frame", "video")
_CSV_HEAD = ("schema", "kind", "file", "frame", "face", "model", "scheme", "width", "height")
_CSV_TAIL = ("error", "frames", "frames_with_face", "per_frame")


def _csv_fixed() -> list[str]:
    """The columns before the points: the record's, then the face's (:func:`face_csv_columns`)."""
    return [*_CSV_HEAD, *face_csv_columns(), *_CSV_TAIL]


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a record, as checked in (``fabrec/schemas``)."""
    return json.loads(resources.files("fabrec").joinpath("schemas", SCHEMA_FILE).read_text())


def schema_document(face_class: type | None = None) -> dict[str, Any]:
    """The JSON Schema as the code makes it: the checked-in record part with the ``face``
    object generated from :class:`FaceResult` (or ``face_class``).
    ``python -m fabrec.results`` rewrites the checked-in file from it."""
    doc = json_schema()
    doc["$defs"]["face"] = face_schema(face_class)
    return doc


def image_record(file: str, model: str, scheme: str, rgb_shape: tuple[int, ...] | None, faces: list[Any],
                 error: str | None = None) -> dict[str, Any]:
    """The record of one image (``rgb_shape``: its ``(H, W, ...)``) and the faces found in it
    (:class:`FaceResult`), as the CLI, the server and the demo write it; or,
    given an ``error`` (and no shape), of an image that could not be read."""
    if error is not None or rgb_shape is None:
        return record("image", file, model, scheme, error=error)
    return record("image", file, model, scheme, width=int(rgb_shape[1]), height=int(rgb_shape[0]),
                  faces=[f.to_dict() for f in faces])


def record(kind: str, file: str, model: str, scheme: str, **fields: Any) -> dict[str, Any]:
    """A result record of ``kind`` with the common fields first; ``fields`` as in the module
    docstring (``faces`` as dicts from :meth:`FaceResult.to_dict`)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    rec: dict[str, Any] = {"schema": SCHEMA, "kind": kind, "file": file, "model": model, "scheme": scheme}
    rec.update(fields)
    if kind != "video":
        rec.setdefault("faces", [])
    return rec


def csv_header(num_points: int) -> list[str]:
    """CSV columns for a ``num_points``-point model."""
    return [*_csv_fixed(), *(f"{c}{i}" for i in range(num_points) for c in ("x", "y", "c"))]


def csv_rows(rec: dict[str, Any], num_points: int) -> list[list[str]]:
    """The CSV rows of one record (see :func:`csv_header`)."""

    def cell(v: Any) -> str:
        return "" if v is None else (f"{v:.4f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v))

    base = {k: rec.get(k) for k in ("schema", "kind", "file", "frame", "model", "scheme", "width", "height", "error",
                                    "frames", "frames_with_face", "per_frame")}
    faces = rec.get("faces") or [None]
    fixed, rows = _csv_fixed(), []
    for i, f in enumerate(faces):
        row = dict(base, face=None if f is None else i)
        pts: list[str] = [""] * (3 * num_points)
        if f is not None:
            row.update(face_csv_cells(f))
            pts = [cell(v) for (x, y), c in zip(f["points"], f["confidence"]) for v in (x, y, c)]
        rows.append([cell(row.get(k)) for k in fixed] + pts)
    return rows


def csv_row_record(header: list[str], row: list[str]) -> dict[str, Any]:
    """A CSV row back into a record with one face (or none), for validation and readers."""
    d = dict(zip(header, row))
    rec = {k: d[k] for k in ("schema", "kind", "file", "model", "scheme")}
    for k in ("width", "height", "frame", "frames", "frames_with_face"):
        if d.get(k):
            rec[k] = int(float(d[k]))
    for k in ("error", "per_frame"):
        if d.get(k):
            rec[k] = d[k]
    if rec["kind"] == "video":
        return rec
    faces = []
    if d.get("face"):
        k = (len(header) - len(_csv_fixed())) // 3
        vals = [float(d[f"{c}{i}"]) for i in range(k) for c in "xyc"]
        faces.append(face_from_csv(d, [[vals[3 * i], vals[3 * i + 1]] for i in range(k)],
                                   [vals[3 * i + 2] for i in range(k)]))
    rec["faces"] = faces
    return rec


if __name__ == "__main__":  # python -m fabrec.results: rewrite the checked-in JSON Schema
    from pathlib import Path

    from fabrec.io import write_json_atomic

    write_json_atomic(Path(__file__).with_name("schemas") / SCHEMA_FILE, schema_document())
