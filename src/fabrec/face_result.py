"""One face found in one image (:class:`FaceResult`) and how it is written: each field carries
its outputs (:class:`Out`: the JSON key and value, the JSON Schema, the CSV columns), so the
dict, the CSV columns, the CSV reader and the schema's ``face`` object all come from the class.
Adding an output = one field with ``metadata={"out": (Out(...),)}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
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
