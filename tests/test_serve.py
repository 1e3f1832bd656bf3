"""`fabrec serve`: the HTTP contract, bad uploads answered and survived, a token, concurrency
equal to `predict`, and the page served."""

from __future__ import annotations

import zlib
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("multipart")
from starlette.testclient import TestClient  # noqa: E402

from fabrec.errors import FabrecError  # noqa: E402
from fabrec.predict import LandmarkPredictor  # noqa: E402
from fabrec.sample_photo import SAMPLE_IMAGE  # noqa: E402
from fabrec.serve import check_bind, check_port, create_app  # noqa: E402

jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture(scope="module")
def predictor() -> LandmarkPredictor:
    return LandmarkPredictor.from_pretrained("default", device="cpu")


@pytest.fixture(scope="module")
def client(predictor) -> TestClient:
    return TestClient(create_app(predictor, max_bytes=2_000_000, max_pixels=5_000_000))


def photo() -> tuple[str, bytes, str]:
    return ("astronaut.jpg", SAMPLE_IMAGE.read_bytes(), "image/jpeg")


def png_header(w: int, h: int) -> bytes:
    """A PNG whose header claims ``w x h`` pixels (a decompression bomb's first bytes)."""
    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + len(ihdr).to_bytes(4, "big") + chunk + zlib.crc32(chunk).to_bytes(4, "big")


def test_health_and_the_page(client: TestClient) -> None:
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["model"] == "default" and h["points"] == 68 and h["api"] == "1"
    page = client.get("/")
    assert page.status_code == 200 and "fabrec" in page.text and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_landmarks_are_predicts_points_in_the_result_schema(client: TestClient, predictor) -> None:
    from fabrec.results import json_schema

    r = client.post("/v1/landmarks", files={"image": photo()})
    assert r.status_code == 200
    rec = r.json()
    jsonschema.validate(rec, json_schema())
    (want,) = predictor.predict(str(SAMPLE_IMAGE))
    assert len(rec["faces"]) == 1 and rec["file"] == "astronaut.jpg"
    np.testing.assert_allclose(rec["faces"][0]["points"], np.round(want.points, 2), atol=1e-6)
    assert rec["faces"][0]["head_pose"] == want.to_dict()["head_pose"] and rec["faces"][0]["face_score"] > 0.5


@pytest.mark.parametrize("files,status,words", [
    ({"image": ("notes.jpg", b"this is text, not a picture", "image/jpeg")}, 400, "not a decodable image"),
    ({"image": ("empty.png", b"", "image/png")}, 400, "empty file"),
    ({"photo": photo()}, 400, "multipart field 'image'"),
    ({"image": ("bomb.png", png_header(30000, 30000), "image/png")}, 422, "more than the limit"),
    ({"image": ("big.bin", b"\0" * 2_100_000, "application/octet-stream")}, 413, "over 2000000 bytes"),
])
def test_bad_uploads_get_a_one_line_4xx_and_the_server_goes_on(client: TestClient, files, status, words) -> None:
    r = client.post("/v1/landmarks", files=files)
    assert r.status_code == status and words in r.json()["error"] and "\n" not in r.json()["error"]
    assert client.post("/v1/landmarks", files={"image": photo()}).status_code == 200


def test_a_token_is_required_when_set_and_remote_binding_needs_one(predictor) -> None:
    c = TestClient(create_app(predictor, token="s3cret"))
    assert c.post("/v1/landmarks", files={"image": photo()}).status_code == 401
    ok = c.post("/v1/landmarks", files={"image": photo()}, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    check_bind("127.0.0.1", False, None)
    with pytest.raises(FabrecError, match="--allow-remote"):
        check_bind("0.0.0.0", False, "t")
    with pytest.raises(FabrecError, match="--token"):
        check_bind("0.0.0.0", True, None)


def test_a_port_in_use_is_one_error_before_the_model_loads() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(FabrecError, match=f"--port {port}: cannot listen"):
            check_port("127.0.0.1", port)
    check_port("127.0.0.1", port)  # free again
    with pytest.raises(FabrecError, match="between 0 and 65535"):
        check_port("127.0.0.1", 65536)


def test_parallel_requests_give_the_same_points_as_one_at_a_time(client: TestClient) -> None:
    img = cv2.imread(str(SAMPLE_IMAGE))
    turned = cv2.imencode(".png", cv2.flip(img, 1))[1].tobytes()
    uploads = [photo(), ("flipped.png", turned, "image/png")] * 6
    serial = [client.post("/v1/landmarks", files={"image": u}).json() for u in uploads]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda u: client.post("/v1/landmarks", files={"image": u}).json(), uploads))
    assert parallel == serial
