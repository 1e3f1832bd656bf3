"""The `fabrec serve` page in a real headless browser (Debian's Chromium and chromedriver, driven
by Selenium; nothing downloaded): landmarks for an uploaded photo, then a new 5-point scheme
labelled by clicks on three photos (undo, keyboard, drag), trained, previewed and exported.

Skips where Chromium, its driver or Selenium is missing, unless FABREC_BROWSER_TEST=required
(CI sets it, so there the test runs or fails). FABREC_SCREENSHOTS=DIR keeps screenshots.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import threading
import time
import urllib.request
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

REQUIRED = os.environ.get("FABREC_BROWSER_TEST") == "required"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def _need(ok: bool, why: str) -> None:
    if not ok:
        if REQUIRED:
            pytest.fail(f"browser test required but {why}")
        pytest.skip(why)


_need(CHROMIUM is not None and DRIVER is not None, "no chromium / chromedriver (apt install chromium chromium-driver)")
try:
    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError as e:  # pragma: no cover - depends on the environment
    _need(False, f"missing {e.name} (pip install selenium and fabrec[serve])")

from fabrec.predict import LandmarkPredictor  # noqa: E402
from fabrec.sample import SAMPLE_IMAGE  # noqa: E402
from fabrec.serve import create_app  # noqa: E402

CANVAS_W, CANVAS_H = 760, 520  # the labelling canvas of index.html


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def predictor() -> LandmarkPredictor:
    return LandmarkPredictor.from_pretrained("default", device="cpu")


@pytest.fixture(scope="module")
def server(tmp_path_factory, predictor):
    """A real uvicorn server on a free loopback port with an empty projects folder."""
    projects = tmp_path_factory.mktemp("projects")
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(predictor, projects=projects), host="127.0.0.1", port=port,
                                        log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.time() + 30
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started
    yield f"http://127.0.0.1:{port}", projects
    srv.should_exit = True
    t.join(30)


@pytest.fixture(scope="module")
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1500",
                "--disable-gpu", "--no-first-run"):
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield drv
    drv.quit()


def shot(drv, name: str) -> None:
    where = os.environ.get("FABREC_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        drv.save_screenshot(str(Path(where) / f"{name}.png"))


def photos(folder: Path) -> dict[str, Path]:
    """The bundled photo, mirrored and shrunk: three real photos of different geometry."""
    img = cv2.imread(str(SAMPLE_IMAGE))
    out = {"astronaut.jpg": img, "astronaut_mirrored.jpg": cv2.flip(img, 1),
           "astronaut_small.jpg": cv2.resize(img, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)}
    paths = {}
    for name, im in out.items():
        paths[name] = folder / name
        cv2.imwrite(str(paths[name]), im)
    return paths


def five_points(predictor: LandmarkPredictor, path: Path) -> np.ndarray:
    """Eye centres, nose tip and mouth corners from the default model's 68 points: where a person clicks."""
    (face,) = predictor.predict(str(path))
    p = face.points
    return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])


def canvas_offset(point: np.ndarray, size: tuple[int, int]) -> tuple[int, int]:
    """The click offset from the canvas centre that lands on image ``point`` (the page's 'fit' view)."""
    w, h = size
    s = min(CANVAS_W / w, CANVAS_H / h)
    ox, oy = (CANVAS_W - w * s) / 2, (CANVAS_H - h * s) / 2
    return round((point[0] + 0.5) * s + ox - CANVAS_W / 2), round((point[1] + 0.5) * s + oy - CANVAS_H / 2)


def wait(drv, what, timeout: float = 30):
    return WebDriverWait(drv, timeout, poll_frequency=0.1).until(lambda d: what(d))


def test_the_page_finds_landmarks_and_makes_a_new_scheme(server, browser, predictor, tmp_path) -> None:
    url, projects = server
    drv = browser
    drv.get(url + "/")
    wait(drv, lambda d: "68 points" in d.find_element(By.ID, "model").text)

    # Landmarks tab: the bundled photo gets one face with its points drawn
    drv.find_element(By.ID, "files").send_keys(str(SAMPLE_IMAGE))
    wait(drv, lambda d: d.find_elements(By.CSS_SELECTOR, '#results .card[data-faces="1"] canvas'), 60)
    shot(drv, "landmarks")

    # New scheme: a 5-point project, three photos
    drv.find_element(By.ID, "scheme-tab").click()
    drv.find_element(By.ID, "project-name").send_keys("five")
    drv.find_element(By.CSS_SELECTOR, "#new-project button[type=submit]").click()
    wait(drv, lambda d: d.find_element(By.ID, "workspace").is_displayed())
    files = photos(tmp_path)
    drv.find_element(By.ID, "project-files").send_keys("\n".join(str(p) for p in files.values()))
    wait(drv, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#strip button")) == 3)
    truth = {name: five_points(predictor, p) for name, p in files.items()}
    sizes = {name: cv2.imread(str(p)).shape[1::-1] for name, p in files.items()}
    canvas = drv.find_element(By.ID, "label-canvas")
    placed = lambda: int(canvas.get_attribute("data-placed") or 0)  # noqa: E731

    def click(name: str, point: np.ndarray) -> None:
        dx, dy = canvas_offset(point, sizes[name])
        ActionChains(drv).move_to_element_with_offset(canvas, dx, dy).click().perform()

    seen = []
    for k in range(3):
        name = wait(drv, lambda d: canvas.get_attribute("data-photo") not in (None, *seen) and
                    canvas.get_attribute("data-photo"))
        seen.append(name)
        if k == 0:  # a wrong click, undone with Ctrl+Z
            click(name, truth[name][4] + 40)
            wait(drv, lambda d: placed() == 1)
            ActionChains(drv).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL).perform()
            wait(drv, lambda d: placed() == 0)
        for i, p in enumerate(truth[name]):
            click(name, p)
            wait(drv, lambda d, i=i: placed() == i + 1)
        wait(drv, lambda d, n=name: d.find_element(By.XPATH, f'//div[@id="strip"]/button[starts-with(text(), "{n} ")]')
             .get_attribute("data-labelled") == "5")
        if k == 1:  # drag the nose tip 12 canvas pixels right; the saved label follows
            dx, dy = canvas_offset(truth[name][2], sizes[name])
            ActionChains(drv).move_to_element_with_offset(canvas, dx, dy).click_and_hold() \
                .move_by_offset(6, 0).move_by_offset(6, 0).release().perform()
            scale = min(CANVAS_W / sizes[name][0], CANVAS_H / sizes[name][1])
            label = projects / "five" / "images" / name.replace(".jpg", ".json")
            wait(drv, lambda d, f=label: json.loads(f.read_text())["shapes"][2]["points"][0][0] - 0.5
                 > truth[name][2][0] + 10 / scale)
        shot(drv, f"labelled_{k}")
        ActionChains(drv).send_keys("n").perform()

    # every label on disk: labelme, the scheme's names, within a canvas pixel of the clicks
    for name in files:
        doc = json.loads((projects / "five" / "images" / name.replace(".jpg", ".json")).read_text())
        got = np.array([s["points"][0] for s in doc["shapes"]]) - 0.5
        assert [s["label"] for s in doc["shapes"]] == ["left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right"]
        tol = 1.5 / min(CANVAS_W / sizes[name][0], CANVAS_H / sizes[name][1])
        moved = np.abs(got - truth[name]).max(axis=1)
        assert (moved[[0, 1, 3, 4]] < tol).all() and (moved[2] < tol or name == seen[1])

    # Train (a tiny run), follow its progress, preview the new model, export model and labels
    steps = drv.find_element(By.ID, "steps")
    steps.clear()
    steps.send_keys("4")
    drv.find_element(By.ID, "train").click()
    wait(drv, lambda d: d.find_element(By.ID, "train-status").get_attribute("data-state") in ("done", "failed"), 240)
    status = drv.find_element(By.ID, "train-status")
    assert status.get_attribute("data-state") == "done", status.text
    assert "step 4 of 4" in status.text
    drv.find_element(By.ID, "preview-files").send_keys(str(files["astronaut_small.jpg"]))
    wait(drv, lambda d: d.find_elements(By.CSS_SELECTOR, '#preview-results .card[data-faces="1"] canvas'), 120)
    shot(drv, "scheme")
    assert drv.find_element(By.ID, "export-model").is_enabled()
    model = urllib.request.urlopen(f"{url}/v1/projects/five/model").read()
    assert len(model) > 1_000_000 and model[8:9] == b"{"  # a safetensors header
    with zipfile.ZipFile(io.BytesIO(urllib.request.urlopen(f"{url}/v1/projects/five/labels.zip").read())) as z:
        assert sum(n.endswith(".json") for n in z.namelist()) == 3 and "five/scheme.yaml" in z.namelist()
