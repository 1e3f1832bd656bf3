"""`fabrec serve`'s label projects over HTTP: names and paths confined to the projects folder,
labels stored as labelme files `train-landmarks` reads, one training job at a time, cancel."""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("multipart")
from starlette.testclient import TestClient

from fabrec.datasets.folder import read_folder
from fabrec.label_projects import ProjectError, ProjectStore
from fabrec.predict import LandmarkPredictor
from fabrec.sample_photo import SAMPLE_IMAGE
from fabrec.schemes import get_scheme
from fabrec.serve import create_app


@pytest.fixture(scope="module")
def predictor() -> LandmarkPredictor:
    return LandmarkPredictor.from_pretrained("default", device="cpu")


@pytest.fixture
def client(predictor, tmp_path):
    with TestClient(create_app(predictor, projects=tmp_path / "projects")) as c:
        yield c


def jpeg(img: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", img)[1].tobytes()


def five_labels(predictor: LandmarkPredictor) -> list[list[float]]:
    (face,) = predictor.predict(str(SAMPLE_IMAGE))
    p = face.points
    return [[float(x), float(y)] for x, y in (p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54])]


def test_names_and_paths_cannot_leave_the_projects_folder(client, tmp_path) -> None:
    for bad in ("../x", "a/b", ".hidden", "", "x" * 65, "a b"):
        r = client.post("/v1/projects", json={"name": bad, "template": "5"})
        assert r.status_code == 400 and "not allowed" in r.json()["error"], bad
    assert client.post("/v1/projects", json={"name": "five", "template": "5"}).status_code == 201
    assert client.post("/v1/projects", json={"name": "five", "template": "5"}).status_code == 409
    assert client.get("/v1/projects/nothere").status_code == 404
    store = ProjectStore(tmp_path / "projects")
    for bad in ("../scheme.yaml", "../../x.jpg", "..", "a.txt", "x/../../y.png"):
        with pytest.raises(ProjectError):
            store.image("five", bad)
    assert client.get("/v1/projects/five/images/..%2Fscheme.yaml").status_code in (400, 404)
    assert client.get("/v1/projects/five/labels/scheme.yaml").status_code == 400
    up = client.post("/v1/projects/five/images", files={"image": ("../../evil name.jpg", jpeg(cv2.imread(str(SAMPLE_IMAGE))),
                                                                   "image/jpeg")})
    assert up.status_code == 201 and up.json()["file"] == "evil_name.jpg"
    assert (tmp_path / "projects" / "five" / "images" / "evil_name.jpg").is_file()
    bad = client.post("/v1/projects/five/images", files={"image": ("x.jpg", b"not an image", "image/jpeg")})
    assert bad.status_code == 400 and "\n" not in bad.json()["error"]
    assert sorted(p.name for p in (tmp_path / "projects" / "five" / "images").iterdir()) == ["evil_name.jpg"]


def test_own_point_names_and_templates_make_readable_schemes(client, tmp_path) -> None:
    r = client.post("/v1/projects", json={"name": "tips", "points": ["nose_tip", "chin"]})
    assert r.status_code == 201 and r.json()["points"] == ["nose_tip", "chin"]
    assert get_scheme(tmp_path / "projects" / "tips" / "scheme.yaml").num_points == 2
    assert client.post("/v1/projects", json={"name": "dup", "points": ["a", "a"]}).status_code == 400
    assert client.post("/v1/projects", json={"name": "t", "template": "7"}).status_code == 400
    r = client.post("/v1/projects", json={"name": "full", "template": "68"})
    assert len(r.json()["points"]) == 68
    assert client.get("/v1/projects").json()["projects"] == ["full", "tips"]


def test_own_point_names_get_mirror_pairs_and_a_normaliser(client, tmp_path) -> None:
    """Own names spelling left/right and eye: mirror pairs and the eye normaliser found, the
    same scheme as the 5-point template (so the page validates like the command line); given
    pairs and normaliser are kept; bad ones are refused; both can be changed later."""
    names = ["left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right"]
    r = client.post("/v1/projects", json={"name": "mine", "points": names})
    assert r.status_code == 201
    info = r.json()
    assert info["flip_pairs"] == [["left_eye", "right_eye"], ["mouth_left", "mouth_right"]]
    assert info["norm_points"] == ["left_eye", "right_eye"]
    assert info["normaliser"].startswith("distance between left_eye and right_eye")
    mine = get_scheme(tmp_path / "projects" / "mine" / "scheme.yaml")
    client.post("/v1/projects", json={"name": "tmpl", "template": "5"})
    tmpl = get_scheme(tmp_path / "projects" / "tmpl" / "scheme.yaml")
    assert (mine.names, mine.flip, mine.norm_points) == (tmpl.names, tmpl.flip, tmpl.norm_points)
    ears = client.post("/v1/projects", json={"name": "ears", "points": ["l_ear_lobe", "r_ear_lobe", "chin"]}).json()
    assert ears["flip_pairs"] == [["l_ear_lobe", "r_ear_lobe"]] and ears["norm_points"] is None
    assert ears["normaliser"].startswith("box size")
    given = client.post("/v1/projects", json={"name": "given", "points": ["a", "b", "c"], "flip_pairs": [["a", "b"]],
                                              "norm_points": ["a", "c"]}).json()
    assert given["flip_pairs"] == [["a", "b"]] and given["norm_points"] == ["a", "c"]
    for bad in ({"flip_pairs": [["a", "zz"]]}, {"flip_pairs": [["a", "a"]]}, {"flip_pairs": [["a", "b"], ["b", "c"]]},
                {"norm_points": ["a"]}, {"flip_pairs": "a-b"}):
        r = client.post("/v1/projects", json={"name": "bad", "points": ["a", "b", "c"], **bad})
        assert r.status_code == 400 and "\n" not in r.json()["error"], bad
    changed = client.put("/v1/projects/given/scheme", json={"flip_pairs": [], "norm_points": []}).json()
    assert changed["flip_pairs"] == [] and changed["norm_points"] is None
    assert get_scheme(tmp_path / "projects" / "given" / "scheme.yaml").flip is None


def test_labels_round_trip_as_labelme_that_training_reads(client, predictor, tmp_path) -> None:
    client.post("/v1/projects", json={"name": "five", "template": "5"})
    img = cv2.imread(str(SAMPLE_IMAGE))
    for name, im in (("a.jpg", img), ("a.png", img)):  # one stem twice: the second gets its own name
        client.post("/v1/projects/five/images", files={"image": (name, jpeg(im), "image/jpeg")})
    info = client.get("/v1/projects/five").json()
    assert [i["file"] for i in info["images"]] == ["a.jpg", "a_2.png"]
    pts = five_labels(predictor)
    partial = pts[:2] + [None] * 3
    assert client.put("/v1/projects/five/labels/a.jpg", json={"points": pts}).json()["labelled"] == 5
    assert client.put("/v1/projects/five/labels/a_2.png", json={"points": partial}).json()["labelled"] == 2
    got = client.get("/v1/projects/five/labels/a.jpg").json()["points"]
    np.testing.assert_allclose(got, pts, atol=1e-9)
    assert client.get("/v1/projects/five/labels/a_2.png").json()["points"][2:] == [None] * 3
    for bad in ([[1, 2]] * 4, [[1e6, 5]] * 5, [["x", 1]] * 5, "nope"):
        r = client.put("/v1/projects/five/labels/a.jpg", json={"points": bad})
        assert r.status_code == 400, bad
    info = client.get("/v1/projects/five").json()
    assert info["complete"] == 1 and [i["labelled"] for i in info["images"]] == [5, 2]
    root = tmp_path / "projects" / "five"
    res = read_folder(root / "images", get_scheme(root / "scheme.yaml"))  # what train-landmarks reads
    assert [s.key for s in res.samples] == ["a.jpg"] and len(res.problems) == 1
    np.testing.assert_allclose(res.samples[0].points, pts, atol=1e-9)


def test_one_training_job_at_a_time_and_cancel(client, predictor) -> None:
    client.post("/v1/projects", json={"name": "five", "template": "5"})
    client.post("/v1/projects", json={"name": "other", "template": "5"})
    assert client.post("/v1/projects/five/train", json={}).status_code == 400  # nothing labelled yet
    for name in ("five", "other"):
        client.post(f"/v1/projects/{name}/images", files={"image": ("a.jpg", SAMPLE_IMAGE.read_bytes(), "image/jpeg")})
        client.put(f"/v1/projects/{name}/labels/a.jpg", json={"points": five_labels(predictor)})
    assert client.post("/v1/projects/five/train", json={"steps": 0}).status_code == 400
    assert client.post("/v1/projects/five/train", json={"steps": "many"}).status_code == 400
    r = client.post("/v1/projects/five/train", json={"steps": 5000})
    assert r.status_code == 202 and r.json()["state"] == "training" and r.json()["steps"] == 5000
    busy = client.post("/v1/projects/other/train", json={"steps": 3})
    assert busy.status_code == 409 and "one job at a time" in busy.json()["error"]
    deadline = time.time() + 120
    while client.get("/v1/projects/five/train").json()["step"] < 2 and time.time() < deadline:
        time.sleep(0.5)
    stopped = client.delete("/v1/projects/five/train").json()
    assert stopped["state"] in ("training", "cancelled")
    while client.get("/v1/projects/five/train").json()["state"] == "training" and time.time() < deadline:
        time.sleep(0.2)
    status = client.get("/v1/projects/five/train").json()
    assert status["state"] == "cancelled" and 2 <= status["step"] < 5000 and not status["model"]
    assert client.post("/v1/projects/five/preview", files={"image": ("a.jpg", SAMPLE_IMAGE.read_bytes(),
                                                                      "image/jpeg")}).status_code == 404
    assert client.get("/v1/projects/five/model").status_code == 404
    assert client.delete("/v1/projects/five/train").status_code == 404


def test_projects_need_the_token_too(predictor, tmp_path) -> None:
    c = TestClient(create_app(predictor, token="s3cret", projects=tmp_path / "p"))
    assert c.get("/v1/projects").status_code == 401
    assert c.post("/v1/projects", json={"name": "x", "template": "5"}).status_code == 401
    auth = {"Authorization": "Bearer s3cret"}
    assert c.post("/v1/projects", json={"name": "x", "template": "5"}, headers=auth).status_code == 201
    assert c.get("/v1/projects/x", headers=auth).status_code == 200
    assert c.get("/v1/projects/x").status_code == 401


def test_a_turned_phone_photo_is_labelled_in_the_orientation_training_reads(client, tmp_path) -> None:
    """EXIF orientation 6: stored 40 x 20, shown and trained as 20 wide x 40 tall."""
    import io

    from PIL import Image

    from fabrec.io import read_image

    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((20, 40, 3), np.uint8)).save(buf, "JPEG", exif=exif)
    client.post("/v1/projects", json={"name": "turned", "points": ["chin"]})
    client.post("/v1/projects/turned/images", files={"image": ("phone.jpg", buf.getvalue(), "image/jpeg")})
    photo = tmp_path / "projects" / "turned" / "images" / "phone.jpg"
    assert read_image(photo).shape[:2] == (40, 20)
    assert client.put("/v1/projects/turned/labels/phone.jpg", json={"points": [[10, 35]]}).status_code == 200
    assert client.put("/v1/projects/turned/labels/phone.jpg", json={"points": [[35, 10]]}).status_code == 400
    doc = json.loads(photo.with_suffix(".json").read_text())
    assert (doc["imageWidth"], doc["imageHeight"]) == (20, 40)


def test_the_next_photo_opens_with_every_point_suggested_from_the_labelled_ones(client, predictor, tmp_path) -> None:
    """After one labelled photo, a new photo of another face gets all five points suggested
    (the bundled 68-point model mapped to the scheme), near where they belong."""
    client.post("/v1/projects", json={"name": "five", "template": "5"})
    img = cv2.imread(str(SAMPLE_IMAGE))
    client.post("/v1/projects/five/images", files={"image": ("a.jpg", jpeg(img), "image/jpeg")})
    moved = np.ascontiguousarray(np.roll(cv2.resize(img, None, fx=0.8, fy=0.8), 25, axis=1))
    client.post("/v1/projects/five/images", files={"image": ("b.jpg", jpeg(moved), "image/jpeg")})
    r = client.get("/v1/projects/five/suggest/b.jpg")
    assert r.status_code == 409 and "label a photo first" in r.json()["error"]
    client.put("/v1/projects/five/labels/a.jpg", json={"points": five_labels(predictor)})
    got = client.get("/v1/projects/five/suggest/b.jpg").json()
    assert got["labelled_photos"] == 1 and "68-point model" in got["source"] and len(got["points"]) == 5
    (face,) = predictor.predict(moved[..., ::-1].copy())
    p = face.points
    want = np.array([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])
    size = float(np.linalg.norm(np.ptp(p, 0)))
    assert (np.linalg.norm(np.array(got["points"]) - want, axis=1) < 0.02 * size).all()
    assert client.get("/v1/projects/five/labels/b.jpg").json()["points"] == [None] * 5  # nothing saved


def test_the_photo_that_would_teach_most_comes_first_and_says_why(client, predictor, shared_data) -> None:
    """After a frontal face is labelled, a profile (a held-out AFLW2000-3D photo at 60-90
    degrees of yaw) is what to label next, ahead of a near copy of the labelled face."""
    import json as js

    poses = js.loads((shared_data / "aflw2000" / "poses.json").read_text())
    profile = next(p for p in sorted((shared_data / "aflw2000").glob("*.jpg")) if abs(poses[p.stem]["yaw"]) > 70)
    client.post("/v1/projects", json={"name": "five", "template": "5"})
    img = cv2.imread(str(SAMPLE_IMAGE))
    for name, im in (("a.jpg", img), ("b.jpg", np.roll(img, 9, axis=1)), ("c.jpg", cv2.imread(str(profile)))):
        client.post("/v1/projects/five/images", files={"image": (name, jpeg(im), "image/jpeg")})
    client.put("/v1/projects/five/labels/a.jpg", json={"points": five_labels(predictor)})
    order = client.get("/v1/projects/five/next").json()["order"]
    assert [o["file"] for o in order] == ["c.jpg", "b.jpg"]
    assert "head turned" in order[0]["why"] and order[0]["score"] > order[1]["score"]


def test_labels_export_as_labelme_and_coco_and_import_into_another_project(client, predictor, shared_data) -> None:
    """A project's zip holds labelme files and one COCO keypoints file; a zip of 300-W .pts
    photos, and the exported zip itself, import into projects with the same scheme."""
    import io
    import json as js
    import zipfile

    client.post("/v1/projects", json={"name": "five", "template": "5"})
    img = cv2.imread(str(SAMPLE_IMAGE))
    client.post("/v1/projects/five/images", files={"image": ("a.jpg", jpeg(img), "image/jpeg")})
    client.post("/v1/projects/five/images", files={"image": ("b.jpg", jpeg(img[:, ::-1]), "image/jpeg")})
    pts = five_labels(predictor)
    client.put("/v1/projects/five/labels/a.jpg", json={"points": pts})
    data = client.get("/v1/projects/five/labels.zip").content
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        coco = js.loads(z.read("five/images/annotations_coco.json"))
    assert coco["categories"][0]["keypoints"] == client.get("/v1/projects/five").json()["points"]
    assert len(coco["images"]) == 2 and len(coco["annotations"]) == 1
    np.testing.assert_allclose(np.array(coco["annotations"][0]["keypoints"]).reshape(-1, 3)[:, :2], pts, atol=1e-3)

    client.post("/v1/projects", json={"name": "again", "template": "5"})
    r = client.post("/v1/projects/again/import", files={"labels": ("five.zip", data, "application/zip")})
    assert r.status_code == 201 and r.json()["imported"] == 1, r.json()  # a.jpg: its labelme file (b.jpg has none)
    got = client.get("/v1/projects/again/labels/a.jpg").json()["points"]
    np.testing.assert_allclose(got, pts, atol=1e-6)

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in sorted((shared_data / "300w" / "afw").glob("*.pts"))[:2]:
            z.write(f, f.name)
            z.write(f.with_suffix(".jpg"), f.with_suffix(".jpg").name)
    client.post("/v1/projects", json={"name": "ibug", "template": "68"})
    r = client.post("/v1/projects/ibug/import", files={"labels": ("afw.zip", buf.getvalue(), "application/zip")})
    assert r.json()["imported"] == 2 and client.get("/v1/projects/ibug").json()["complete"] == 2
    bad = client.post("/v1/projects/ibug/import", files={"labels": ("x.zip", b"not a zip", "application/zip")})
    assert bad.status_code == 400 and "not a zip" in bad.json()["error"]
