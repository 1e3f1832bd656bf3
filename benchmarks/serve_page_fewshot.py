"""The page's whole few-shot workflow, measured: a new 5-point scheme labelled by clicks in
headless Chromium, trained with the Train button, previewed, then evaluated on AFW.

- photos: the first N HELEN-train faces (as ``fewshot_new_scheme.py``: eye centres = mean of the
  six eye-contour points, nose tip = 30, mouth corners = 48, 54), uploaded through the page;
- labels: one click per point at the annotation, in the page's fit view (so rounded to whole
  canvas pixels, about as precise as a careful person);
- Train with the suggested step count; wall time from the click to "done";
- then ``fabrec eval --model PROJECT/five.safetensors --dataset folder --root AFW5`` (AFW's 337
  faces in 5-point labelme form, made by ``fewshot_new_scheme.py``'s ``label_folder``);
- screenshots of both tabs for the README (``--screenshots docs``).

    python benchmarks/serve_page_fewshot.py --shared ../shared/data --out runs/serve_page \\
        [--photos 12] [--json benchmarks/results/serve_page_fewshot.json] [--screenshots docs]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fewshot_new_scheme import SCHEME, five, label_folder
from page_driver import browser, label, new_project, next_photo, open_photo, running, train, wait

from fabrec.datasets.pts import read_pts
from fabrec.io import find_image
from fabrec.predict import LandmarkPredictor
from fabrec.serve import create_app


def screenshot(drv, path: Path) -> None:
    """A JPEG of the page (quality 80)."""
    png = np.frombuffer(drv.get_screenshot_as_png(), np.uint8)
    img = cv2.imdecode(png, cv2.IMREAD_COLOR)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 80])


def main() -> int:
    from selenium.webdriver.common.by import By

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--out", default="runs/serve_page")
    ap.add_argument("--photos", type=int, default=12)
    ap.add_argument("--json", default="")
    ap.add_argument("--screenshots", default="")
    a = ap.parse_args()
    out, shared = Path(a.out), Path(a.shared)
    out.mkdir(parents=True, exist_ok=True)
    helen = sorted((shared / "300w" / "helen" / "trainset").glob("*.pts"))[: a.photos]
    photos = {find_image(p).name: (find_image(p), five(read_pts(p))) for p in helen}
    (out / "five.yaml").write_text(SCHEME)
    afw = out / "afw"
    if not any(afw.glob("*.json")):
        label_folder(shared / "300w" / "afw", afw)
    projects = out / f"projects-{int(time.time())}"
    pred = LandmarkPredictor.from_pretrained("default", device="cpu")
    with running(create_app(pred, projects=projects)) as url, browser(1400, 1700) as drv:
        drv.get(url + "/")
        wait(drv, lambda d: "68 points" in d.find_element(By.ID, "model").text)
        drv.find_element(By.ID, "files").send_keys(str(find_image(min((shared / "300w" / "afw").glob("*.pts")))))
        wait(drv, lambda d: d.find_elements(By.CSS_SELECTOR, "#results .card[data-faces] canvas"), 60)
        if a.screenshots:
            screenshot(drv, Path(a.screenshots) / "serve_page.jpg")
        t0 = time.time()
        canvas = new_project(drv, "five", [str(p) for p, _ in photos.values()])
        seen: list[str] = []
        for _ in photos:
            name = open_photo(drv, canvas, seen)
            seen.append(name)
            path, pts = photos[name]
            label(drv, canvas, pts, cv2.imread(str(path)).shape[1::-1])
            next_photo(drv)
        labelled = time.time() - t0
        t1 = time.time()
        status = train(drv, None, 1800)
        trained = time.time() - t1
        text = status.text
        if status.get_attribute("data-state") != "done":
            raise SystemExit(f"training failed: {text}")
        previews = sorted((shared / "300w" / "afw").glob("*.pts"))[1:3]
        drv.find_element(By.ID, "preview-files").send_keys("\n".join(str(find_image(p)) for p in previews))
        wait(drv, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#preview-results .card[data-faces] canvas")) == 2, 120)
        if a.screenshots:
            screenshot(drv, Path(a.screenshots) / "serve_scheme.jpg")
    model = projects / "five" / "five.safetensors"
    subprocess.run([sys.executable, "-m", "fabrec", "eval", "--model", str(model), "--dataset", "folder",
                    "--root", str(afw), "--scheme", str(out / "five.yaml"), "--out", str(out / "afw_eval")],
                   check=True, capture_output=True)
    result = json.loads((out / "afw_eval" / "metrics.json").read_text())
    rec = {"photos": len(photos), "labelling_seconds_scripted": round(labelled, 1),
           "train_click_to_done_seconds": round(trained, 1), "status": text, "afw_eval": result,
           "command": " ".join(sys.argv)}
    print(json.dumps(rec, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(rec, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
