"""A corpus of hand-made bad files and fuzzed inputs: every case ends in a named error or a
counted skip, never a crash, a hang or a silently wrong result."""

import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from factories import blob_image
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fabrec.datasets.faces import FaceDataset, collate_skip, collect_faces, read_boxes
from fabrec.datasets.landmarks import read_dataset
from fabrec.datasets.pts import parse_pts
from fabrec.errors import FabrecError
from fabrec.io import decode_image, read_image
from fabrec.inputs import read_boxes_file
from fabrec.schemes import BUILTIN

CASES: list[str] = []


def png_header_only(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk)) + b"\0" * 64


def make_corpus(d: Path) -> dict[str, str]:
    """name -> expected outcome ('ok' decodes to RGB, 'error' raises FabrecError)."""
    rng = np.random.default_rng(0)
    img = blob_image(rng, 64)
    ok, jpg = cv2.imencode(".jpg", img)
    ok, png = cv2.imencode(".png", img)
    jpg, png = jpg.tobytes(), png.tobytes()
    out = {}

    def put(name: str, data: bytes, expect: str) -> None:
        (d / name).write_bytes(data)
        out[name] = expect

    put("good.jpg", jpg, "ok")
    put("truncated.jpg", jpg[: len(jpg) // 2], "error")
    put("zero.jpg", b"", "error")
    put("truncated.png", png[: len(png) // 2], "error")
    put("zero.png", b"", "error")
    put("png_named.jpg", png, "ok")  # wrong extension: the content decides
    put("text.jpg", b"hello, I am not an image\n" * 10, "error")
    put("bomb.png", png_header_only(20000, 20000), "error")
    cv2.imwrite(str(d / "gray.png"), img[..., 0])
    out["gray.png"] = "ok"
    cv2.imwrite(str(d / "deep16.png"), (img.astype(np.uint16) * 257))
    out["deep16.png"] = "ok"
    cv2.imwrite(str(d / "alpha.png"), np.dstack([img, np.full(img.shape[:2], 128, np.uint8)]))
    out["alpha.png"] = "ok"
    cv2.imwrite(str(d / "tiny.png"), img[:1, :1])
    out["tiny.png"] = "ok"
    from PIL import Image

    Image.fromarray(img[..., ::-1]).convert("CMYK").save(d / "cmyk.jpg")
    out["cmyk.jpg"] = "ok"
    name = "caf\udce9.jpg"  # a file name that is not valid UTF-8 on disk
    try:
        (d / name).write_bytes(jpg)
        out[name] = "ok"
    except (UnicodeEncodeError, OSError):
        pass
    return out


def test_image_corpus(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path)
    for name, expect in corpus.items():
        CASES.append(name)
        if expect == "ok":
            rgb = read_image(tmp_path / name)
            assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3, name
        else:
            with pytest.raises(FabrecError) as e:
                read_image(tmp_path / name)
            assert name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")[:4] in str(e.value) or name in str(e.value)
    # the autoencoder reader counts the bad ones and keeps the rest
    ds = FaceDataset(collect_faces([str(tmp_path)]), 32)
    batch, skipped = collate_skip([ds[i] for i in range(len(ds))])
    assert skipped == sum(v == "error" for v in corpus.values())
    assert batch.shape[0] == sum(v == "ok" for v in corpus.values())


@pytest.mark.parametrize("text", [
    "version: 1\nn_points: 68\n{\n" + "1 2\n" * 67 + "}\n",  # wrong count
    "just some words\n",
    "version: 1\nn_points: 2\n{\nnan 2\n3 4\n}\n",
    "version: 1\nn_points: 2\n1 2\n3 4\n",  # missing braces
    "version: 1\nn_points: x\n{\n1 2\n}\n",
    "",
    "1 2 3\n",
    "inf 2\n",
])
def test_bad_pts(text: str) -> None:
    CASES.append("pts")
    with pytest.raises(FabrecError):
        pts = parse_pts(text, "bad.pts")
        if len(pts) != 68:
            raise FabrecError("count")


def test_wflw_short_and_bad_lines(tmp_path: Path) -> None:
    d = tmp_path / "list"
    d.mkdir()
    good = " ".join(["10"] * 196 + ["0", "0", "50", "50"] + ["0"] * 6) + " a.jpg"
    lines = [good, "1 2 3 a.jpg", " ".join(["x"] * 206) + " a.jpg", " ".join(["nan"] * 206) + " a.jpg",
             " ".join(["10"] * 196 + ["50", "50", "0", "0"] + ["0"] * 6) + " a.jpg"]
    (d / "list_98pt_rect_attr_test.txt").write_text("\n".join(lines))
    res = read_dataset("wflw", tmp_path, "test", BUILTIN["98"])
    CASES.extend(["wflw"] * 4)
    assert len(res.samples) == 1 and len(res.problems) == 4
    assert all("list_98pt_rect_attr_test.txt:" in p for p in res.problems)


def test_box_files(tmp_path: Path) -> None:
    bad_csv = tmp_path / "b.csv"
    bad_csv.write_text("path,x,y,w,h\na.jpg,1,2,-3,4\nb.jpg,5,6,0,0\nc.jpg,x,y,z,w\n")
    with pytest.raises(FabrecError, match="no valid boxes"):
        read_boxes(bad_csv)
    CASES.extend(["box"] * 3)
    for content, suffix in [('{"a.jpg": [[1, 2, -3, 4]]}', ".json"), ('{"a.jpg": [[10, 10, 5]]}', ".json"),
                            ("[1, 2]", ".json"), ("a.jpg,1,2,3,-1\n", ".csv"), ("a.jpg,1,2,three,4\n", ".csv"),
                            ("{not json", ".json")]:
        p = tmp_path / f"boxes{suffix}"
        p.write_text(content)
        CASES.append("boxfile")
        with pytest.raises(FabrecError, match="boxes"):
            read_boxes_file(p)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_fuzz_decode_never_crashes(data: bytes) -> None:
    try:
        rgb = decode_image(np.frombuffer(data, np.uint8).copy(), "fuzz")
        assert rgb.ndim == 3
    except FabrecError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_fuzz_pts_never_crashes(text: str) -> None:
    try:
        pts = parse_pts(text, "fuzz.pts")
        assert pts.ndim == 2 and pts.shape[1] == 2 and np.isfinite(pts).all()
    except FabrecError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=5), st.lists(st.lists(st.floats(allow_nan=True), max_size=5), max_size=3), max_size=3))
def test_fuzz_json_boxes(tmp_path_factory, data) -> None:
    p = tmp_path_factory.mktemp("fz") / "b.json"
    p.write_text(json.dumps(data))
    try:
        boxes = read_boxes_file(p)
        for bs in boxes.values():
            for b in bs:
                assert b[2] > 0 and b[3] > 0 and np.isfinite(b).all()
    except FabrecError:
        pass
