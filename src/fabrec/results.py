"""The result schema (``fabrec-result/1``): one record shape for images, video frames and video
summaries, written as JSON, JSONL or CSV. The JSON Schema is ``fabrec/schemas/result-1.json``.

Every record has ``schema``, ``kind`` (``image``, ``frame`` or ``video``), ``file``, ``model``
and ``scheme``; images and frames have ``width``, ``height`` and ``faces`` (a list, empty when
no face was found); frames have ``frame`` and ``time_s``; video summaries have ``frames``,
``frames_with_face`` and ``per_frame`` (the JSONL file of its frame records). A record for an
input that could not be read has ``error`` (one line) and no faces. Each face: ``box``
``[x, y, w, h]`` (the detection or given box, pixels), ``score`` (the detector's, or null),
``points`` ``[[x, y], ...]`` (0-based pixel centres), ``confidence`` (per point),
``mean_confidence``, ``quality`` and ``reconstruction_error`` (null when not computed),
``source``, ``roll_degrees`` (the crop's rotation, or null), ``face_score`` (the face filter's,
0..1, or null without one), ``head_pose`` (``{"yaw", "pitch", "roll"}`` in degrees, AFLW2000-3D's
signs, or null for other schemes; CSV: ``head_yaw``, ``head_pitch``, ``head_roll``).

CSV: one row per face (or per face-less image / frame / summary) with the columns of
:func:`csv_header`; points are flattened to ``x0, y0, c0, x1, y1, c1, ...``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

SCHEMA = "fabrec-result/1"
SCHEMA_FILE = "result-1.json"
KINDS = ("image", "frame", "video")
_CSV_FIXED = ("schema", "kind", "file", "frame", "face", "model", "scheme", "width", "height", "box_x", "box_y",
              "box_w", "box_h", "score", "mean_confidence", "quality", "source", "roll_degrees", "face_score", "head_yaw",
              "head_pitch", "head_roll", "error", "frames",
              "frames_with_face", "per_frame")


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a record."""
    return json.loads(resources.files("fabrec").joinpath("schemas", SCHEMA_FILE).read_text())


def record(kind: str, file: str, model: str, scheme: str, **fields: Any) -> dict[str, Any]:
    """A result record of ``kind`` with the common fields first; ``fields`` as in the module
    docstring (``faces`` as dicts from :meth:`fabrec.predict.FaceResult.to_dict`)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    rec: dict[str, Any] = {"schema": SCHEMA, "kind": kind, "file": file, "model": model, "scheme": scheme}
    rec.update(fields)
    if kind != "video":
        rec.setdefault("faces", [])
    return rec


def csv_header(num_points: int) -> list[str]:
    """CSV columns for a ``num_points``-point model."""
    return [*_CSV_FIXED, *(f"{c}{i}" for i in range(num_points) for c in ("x", "y", "c"))]


def csv_rows(rec: dict[str, Any], num_points: int) -> list[list[str]]:
    """The CSV rows of one record (see :func:`csv_header`)."""

    def cell(v: Any) -> str:
        return "" if v is None else (f"{v:.4f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v))

    base = {k: rec.get(k) for k in ("schema", "kind", "file", "frame", "model", "scheme", "width", "height", "error",
                                    "frames", "frames_with_face", "per_frame")}
    faces = rec.get("faces") or [None]
    rows = []
    for i, f in enumerate(faces):
        row = dict(base, face=None if f is None else i)
        pts: list[str] = [""] * (3 * num_points)
        if f is not None:
            row.update(zip(("box_x", "box_y", "box_w", "box_h"), f["box"]))
            row.update({k: f.get(k) for k in ("score", "mean_confidence", "quality", "source", "roll_degrees",
                                              "face_score")})
            row.update({f"head_{k}": v for k, v in (f.get("head_pose") or {}).items()})
            pts = [cell(v) for (x, y), c in zip(f["points"], f["confidence"]) for v in (x, y, c)]
        rows.append([cell(row.get(k)) for k in _CSV_FIXED] + pts)
    return rows


def csv_row_record(header: list[str], row: list[str]) -> dict[str, Any]:
    """A CSV row back into a record with one face (or none), for validation and readers."""
    d = dict(zip(header, row))
    num = lambda k: None if d.get(k, "") == "" else float(d[k])  # noqa: E731
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
        k = (len(header) - len(_CSV_FIXED)) // 3
        vals = [float(d[f"{c}{i}"]) for i in range(k) for c in "xyc"]
        faces.append({"box": [num(c) for c in ("box_x", "box_y", "box_w", "box_h")], "score": num("score"),
                      "points": [[vals[3 * i], vals[3 * i + 1]] for i in range(k)],
                      "confidence": [vals[3 * i + 2] for i in range(k)], "mean_confidence": num("mean_confidence"),
                      "quality": num("quality"), "reconstruction_error": None, "source": d["source"],
                      "roll_degrees": num("roll_degrees"), "face_score": num("face_score"),
                      "head_pose": None if num("head_yaw") is None else
                      {k: num(f"head_{k}") for k in ("yaw", "pitch", "roll")}})
    rec["faces"] = faces
    return rec
