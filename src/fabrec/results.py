"""The result schema (``fabrec-result/1``): one record shape for images, video frames and video
summaries, written as JSON, JSONL or CSV. The JSON Schema is ``fabrec/schemas/result-1.json``.

Every record has ``schema``, ``kind`` (``image``, ``frame`` or ``video``), ``file``, ``model``
and ``scheme``; images and frames have ``width``, ``height`` and ``faces`` (a list, empty when
no face was found); frames have ``frame`` and ``time_s``; video summaries have ``frames``,
``frames_with_face`` and ``per_frame`` (the JSONL file of its frame records). A record for an
input that could not be read has ``error`` (one line) and no faces. Each face is
:meth:`fabrec.face_result.FaceResult.to_dict`: its fields name their JSON keys, schema and CSV
columns (``box``, ``score``, ``points``, ``confidence``, ``mean_confidence``, ``quality``,
``reconstruction_error``, ``source``, ``roll_degrees``, ``face_score``, ``head_pose``; CSV:
``head_yaw``, ``head_pitch``, ``head_roll``).

CSV: one row per face (or per face-less image / frame / summary) with the columns of
:func:`csv_header`; points are flattened to ``x0, y0, c0, x1, y1, c1, ...``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from fabrec.face_result import face_csv_cells, face_csv_columns, face_from_csv, face_schema

SCHEMA = "fabrec-result/1"
SCHEMA_FILE = "result-1.json"
KINDS = ("image", "frame", "video")
_CSV_HEAD = ("schema", "kind", "file", "frame", "face", "model", "scheme", "width", "height")
_CSV_TAIL = ("error", "frames", "frames_with_face", "per_frame")


def _csv_fixed() -> list[str]:
    """The columns before the points: the record's, then the face's (:mod:`fabrec.face_result`)."""
    return [*_CSV_HEAD, *face_csv_columns(), *_CSV_TAIL]


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a record, as checked in (``fabrec/schemas``)."""
    return json.loads(resources.files("fabrec").joinpath("schemas", SCHEMA_FILE).read_text())


def schema_document(face_class: type | None = None) -> dict[str, Any]:
    """The JSON Schema as the code makes it: the checked-in record part with the ``face``
    object generated from :class:`~fabrec.face_result.FaceResult` (or ``face_class``).
    ``python -m fabrec.results`` rewrites the checked-in file from it."""
    doc = json_schema()
    doc["$defs"]["face"] = face_schema(face_class)
    return doc


def image_record(file: str, model: str, scheme: str, rgb_shape: tuple[int, ...], faces: list[Any]) -> dict[str, Any]:
    """The record of one image (``rgb_shape``: its ``(H, W, ...)``) and the faces found in it
    (:class:`~fabrec.face_result.FaceResult`), as the CLI, the server and the demo write it."""
    return record("image", file, model, scheme, width=int(rgb_shape[1]), height=int(rgb_shape[0]),
                  faces=[f.to_dict() for f in faces])


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
