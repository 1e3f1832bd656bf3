"""Records from one place: the face dataclass makes the JSON dict, the CSV columns (and their
reading back) and the JSON Schema's face object; a new output is one field."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import fabrec.results as results
import fabrec.predict as predict_mod
from fabrec.cli import main
from fabrec.results import FaceResult, csv_row_record, face_schema, json_schema, number, out, schema_document
from fabrec.sample_photo import SAMPLE_IMAGE

jsonschema = pytest.importorskip("jsonschema")


def test_the_checked_in_schema_is_the_one_the_code_makes() -> None:
    assert json_schema() == schema_document(), "run: python -m fabrec.results (rewrites fabrec/schemas/result-1.json)"


def test_a_face_dict_has_every_schema_key_and_validates() -> None:
    f = FaceResult((1.0, 2.0, 30.0, 40.0), np.zeros((68, 2)), np.full(68, 0.5))
    d = f.to_dict()
    assert list(d) == list(face_schema()["properties"])
    jsonschema.validate(d, face_schema())


@dataclass
class WithEyes(FaceResult):
    """The bundled FaceResult plus one output field, as a developer would add it."""

    eyes_open: float = out(number("eyes_open", minimum=0, maximum=1), default=0.75)


@pytest.fixture
def one_more_field(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every face the product makes, and every writer, now uses :class:`WithEyes`."""
    monkeypatch.setattr(results, "FaceResult", WithEyes)
    monkeypatch.setattr(predict_mod, "FaceResult", WithEyes)


def test_one_new_field_reaches_json_csv_the_schema_and_the_http_api(one_more_field, tmp_path: Path) -> None:
    schema = schema_document()
    assert "eyes_open" in schema["$defs"]["face"]["properties"] and "eyes_open" in schema["$defs"]["face"]["required"]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "astronaut.jpg").write_bytes(SAMPLE_IMAGE.read_bytes())
    for fmt in ("json", "csv"):
        assert main(["predict", str(tmp_path / "in"), "--out", str(tmp_path / fmt), "--format", fmt, "--no-progress",
                     "--device", "cpu", "--no-images"]) == 0
    rec = json.loads((tmp_path / "json" / "astronaut.json").read_text())
    jsonschema.validate(rec, schema)
    assert rec["faces"][0]["eyes_open"] == 0.75
    rows = list(csv.reader((tmp_path / "csv" / "predictions.csv").open()))
    assert "eyes_open" in rows[0]
    back = csv_row_record(rows[0], rows[1])
    jsonschema.validate(back, schema)
    assert back["faces"][0]["eyes_open"] == 0.75

    pytest.importorskip("starlette")
    pytest.importorskip("multipart")
    from starlette.testclient import TestClient

    from fabrec.serve import create_app

    client = TestClient(create_app(predict_mod.LandmarkPredictor.from_pretrained("default", device="cpu")))
    r = client.post("/v1/landmarks", files={"image": ("astronaut.jpg", SAMPLE_IMAGE.read_bytes(), "image/jpeg")})
    assert r.status_code == 200 and r.json()["faces"][0]["eyes_open"] == 0.75
    jsonschema.validate(r.json(), schema)
