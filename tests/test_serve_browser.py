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
import urllib.request
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from page_driver import (
    CHROMIUM,
    DRIVER,
    browser,
    canvas_offset,
    click,
    fit_scale,
    label,
    new_project,
    next_photo,
    open_photo,
    placed,
    running,
    train,
    wait,
)

REQUIRED = os.environ.get("FABREC_BROWSER_TEST") == "required"


def _need(ok: bool, why: str) -> None:
    if not ok:
        if REQUIRED:
            pytest.fail(f"browser test required but {why}", pytrace=False)
        pytest.skip(why, allow_module_level=True)


_need(CHROMIUM is not None and DRIVER is not None, "no chromium / chromedriver (apt install chromium chromium-driver)")
try:
    import uvicorn  # noqa: F401
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
except ImportError as e:  # pragma: no cover - depends on the environment
    _need(False, f"missing {e.name} (pip install selenium and fabrec[serve])")

from fabrec.predict import LandmarkPredictor
from fabrec.sample_photo import SAMPLE_IMAGE
from fabrec.serve import create_app

NAMES = ["left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right"]


@pytest.fixture(scope="module")
def predictor() -> LandmarkPredictor:
    return LandmarkPredictor.from_pretrained("default", device="cpu")


@pytest.fixture(scope="module")
def server(tmp_path_factory, predictor):
    """A real uvicorn server on a free loopback port with an empty projects folder."""
    projects = tmp_path_factory.mktemp("projects")
    with running(create_app(predictor, projects=projects)) as url:
        yield url, projects


@pytest.fixture(scope="module")
def drv():
    with browser() as d:
        yield d


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


def test_the_page_finds_landmarks_and_makes_a_new_scheme(server, drv, predictor, tmp_path) -> None:
    url, projects = server
    drv.get(url + "/")
    wait(drv, lambda d: "68 points" in d.find_element(By.ID, "model").text)

    # Landmarks tab: the bundled photo gets one face with its points drawn
    drv.find_element(By.ID, "files").send_keys(str(SAMPLE_IMAGE))
    wait(drv, lambda d: d.find_elements(By.CSS_SELECTOR, '#results .card[data-faces="1"] canvas'), 60)
    shot(drv, "landmarks")

    # New scheme: a 5-point project, three photos labelled by clicks
    files = photos(tmp_path)
    canvas = new_project(drv, "five", [str(p) for p in files.values()])
    truth = {name: five_points(predictor, p) for name, p in files.items()}
    sizes = {name: cv2.imread(str(p)).shape[1::-1] for name, p in files.items()}
    labels = projects / "five" / "images"
    seen: list[str] = []
    for k in range(3):
        name = open_photo(drv, canvas, seen)
        seen.append(name)
        if k == 0:  # a wrong click, undone with Ctrl+Z
            click(drv, canvas, truth[name][4] + 40, sizes[name])
            wait(drv, lambda d: placed(canvas) == 1)
            ActionChains(drv).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL).perform()
            wait(drv, lambda d: placed(canvas) == 0)
        label(drv, canvas, truth[name], sizes[name])
        wait(drv, lambda d, n=name: d.find_element(By.XPATH, f'//div[@id="strip"]/button[starts-with(text(), "{n} ")]')
             .get_attribute("data-labelled") == "5")
        if k == 1:  # drag the nose tip 12 canvas pixels right; the saved label follows
            dx, dy = canvas_offset(truth[name][2], sizes[name])
            ActionChains(drv).move_to_element_with_offset(canvas, dx, dy).click_and_hold() \
                .move_by_offset(6, 0).move_by_offset(6, 0).release().perform()
            f = labels / name.replace(".jpg", ".json")
            right = truth[name][2][0] + 10 / fit_scale(sizes[name])
            wait(drv, lambda d, f=f, right=right: json.loads(f.read_text())["shapes"][2]["points"][0][0] - 0.5 > right)
        shot(drv, f"labelled_{k}")
        next_photo(drv)

    # every label on disk: labelme, the scheme's names, within 1.5 canvas pixels of the clicks
    for name in files:
        doc = json.loads((labels / name.replace(".jpg", ".json")).read_text())
        got = np.array([s["points"][0] for s in doc["shapes"]]) - 0.5
        assert [s["label"] for s in doc["shapes"]] == NAMES
        moved = np.abs(got - truth[name]).max(axis=1) * fit_scale(sizes[name])
        assert (moved[[0, 1, 3, 4]] < 1.5).all() and (moved[2] < 1.5 or name == seen[1]), (name, moved)

    # Train (a tiny run), follow its progress, preview the new model, export model and labels
    status = train(drv, 4, 240)
    assert status.get_attribute("data-state") == "done", status.text
    assert "step 4 of 4" in status.text
    # the review list: every labelled photo, the worst disagreement first; one click opens it
    wait(drv, lambda d: d.find_element(By.ID, "review").get_attribute("data-count") == "3", 60)
    review = json.loads(urllib.request.urlopen(f"{url}/v1/projects/five/review").read())["review"]
    errs = [r["error_pct"] for r in review]
    assert errs == sorted(errs, reverse=True) and review[0]["worst_point"] in NAMES
    first = drv.find_elements(By.CSS_SELECTOR, "#review button")[0]
    assert first.get_attribute("data-file") == review[0]["file"]
    first.click()
    wait(drv, lambda d: canvas.get_attribute("data-photo") == review[0]["file"])
    drv.find_element(By.ID, "preview-files").send_keys(str(files["astronaut_small.jpg"]))
    wait(drv, lambda d: d.find_elements(By.CSS_SELECTOR, '#preview-results .card[data-faces="1"] canvas'), 120)
    shot(drv, "scheme")
    assert drv.find_element(By.ID, "export-model").is_enabled()
    model = urllib.request.urlopen(f"{url}/v1/projects/five/model").read()
    assert len(model) > 1_000_000 and model[8:9] == b"{"  # a safetensors header
    with zipfile.ZipFile(io.BytesIO(urllib.request.urlopen(f"{url}/v1/projects/five/labels.zip").read())) as z:
        names = z.namelist()
        assert sum(n.endswith(".json") and "coco" not in n for n in names) == 3 and "five/scheme.yaml" in names
        assert "five/images/annotations_coco.json" in names


def test_own_point_names_get_mirror_pairs_and_a_normaliser_on_the_page(server, drv) -> None:
    """A project of own point names made on the page: the mirror pairs and the eye normaliser
    found from the names are shown; the user changes them in the form and the scheme follows."""
    from selenium.webdriver.support.ui import Select

    from fabrec.schemes import get_scheme

    url, projects = server
    drv.get(url + "/")
    drv.find_element(By.ID, "scheme-tab").click()
    drv.find_element(By.ID, "project-name").send_keys("own")
    Select(drv.find_element(By.ID, "template")).select_by_value("own")
    drv.find_element(By.ID, "point-names").send_keys("\n".join(["l_ear_lobe", "r_ear_lobe", *NAMES]))
    drv.find_element(By.CSS_SELECTOR, "#new-project button[type=submit]").click()
    wait(drv, lambda d: d.find_element(By.ID, "workspace").is_displayed() and "own:" in d.find_element(By.ID, "project-title").text)
    text = drv.find_element(By.ID, "roles-text").text
    assert "l_ear_lobe ↔ r_ear_lobe" in text and "left_eye ↔ right_eye" in text and "mouth_left ↔ mouth_right" in text
    assert "distance between left_eye and right_eye" in text
    scheme = get_scheme(projects / "own" / "scheme.yaml")
    assert scheme.flip is not None and scheme.norm_points == (2, 3)
    pairs = drv.find_element(By.ID, "roles-pairs")
    pairs.clear()
    pairs.send_keys("left_eye right_eye\nmouth_left mouth_right")
    norm = drv.find_element(By.ID, "roles-norm")
    norm.clear()
    drv.find_element(By.CSS_SELECTOR, "#roles button[type=submit]").click()
    wait(drv, lambda d: "box size" in d.find_element(By.ID, "roles-text").text)
    scheme = get_scheme(projects / "own" / "scheme.yaml")
    assert scheme.norm_points is None and scheme.flip[0] == 0 and scheme.flip[2] == 3


def test_after_one_labelled_photo_the_next_opens_with_every_point_suggested(server, drv, predictor, tmp_path) -> None:
    """Label assist: photo 1 by clicks; photo 2 opens with all five points suggested (hollow,
    not saved); one drag corrects a point and one click on 'accept suggestions' keeps the rest
    -- 2 interactions instead of 5 clicks."""
    url, projects = server
    drv.get(url + "/")
    files = photos(tmp_path)
    canvas = new_project(drv, "assist", [str(p) for p in files.values()])
    truth = {name: five_points(predictor, p) for name, p in files.items()}
    sizes = {name: cv2.imread(str(p)).shape[1::-1] for name, p in files.items()}
    first = open_photo(drv, canvas, [])
    assert canvas.get_attribute("data-suggested") == "0"  # nothing to learn from yet
    label(drv, canvas, truth[first], sizes[first])
    next_photo(drv)
    second = open_photo(drv, canvas, [first])
    wait(drv, lambda d: canvas.get_attribute("data-suggested") == "5")
    assert placed(canvas) == 0 and not (projects / "assist" / "images" / second.replace(".jpg", ".json")).exists()
    shot(drv, "suggested")
    sug = json.loads(urllib.request.urlopen(f"{url}/v1/projects/assist/suggest/{second}").read())["points"]
    dx, dy = canvas_offset(np.array(sug[2]), sizes[second])  # drag the suggested nose tip 12 canvas px right
    ActionChains(drv).move_to_element_with_offset(canvas, dx, dy).click_and_hold() \
        .move_by_offset(6, 0).move_by_offset(6, 0).release().perform()
    wait(drv, lambda d: placed(canvas) == 1)
    drv.find_element(By.ID, "accept").click()
    wait(drv, lambda d: placed(canvas) == 5 and canvas.get_attribute("data-suggested") == "0")
    f = projects / "assist" / "images" / second.replace(".jpg", ".json")
    wait(drv, lambda d: f.exists() and len(json.loads(f.read_text())["shapes"]) == 5)
    got = np.array([s["points"][0] for s in json.loads(f.read_text())["shapes"]]) - 0.5
    s = fit_scale(sizes[second])
    assert np.abs(got[[0, 1, 3, 4]] - np.array(sug)[[0, 1, 3, 4]]).max() < 0.01  # accepted as suggested
    assert got[2][0] - sug[2][0] > 10 / s  # the dragged one where it was dropped
    size = float(np.linalg.norm(np.ptp(truth[second], 0)))
    assert (np.linalg.norm(np.array(sug) - truth[second], axis=1) < 0.05 * size).all()  # suggestions near the truth
    # 'label next' opens the photo the server ranks first, and says why
    order = json.loads(urllib.request.urlopen(f"{url}/v1/projects/assist/next").read())["order"]
    drv.find_element(By.ID, "teach").click()
    wait(drv, lambda d: canvas.get_attribute("data-photo") == order[0]["file"] and canvas.get_attribute("data-why"))
    assert canvas.get_attribute("data-why") == order[0]["why"] and "head turned" in order[0]["why"]
