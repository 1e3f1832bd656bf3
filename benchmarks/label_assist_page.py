"""Label assist through the page, as a person would use it: headless Chromium labels the first
10 HELEN-train photos of a 5-point scheme (eye centres, nose tip, mouth corners from the 300-W
annotation) twice, in two projects of one ``fabrec serve``:

- **from scratch**: one click per point at the annotation;
- **assisted**: the first photo by clicks; every later photo opens with the page's suggestions
  (hollow rings); the scripted user drags each suggested point that lies more than 2 % of the
  face's size (the diagonal of the annotation's extent) from the truth onto it, then presses
  "accept suggestions" for the rest.

Measured: interactions per photo (clicks + drags + accepts) and the wall time for the 10
photos, from opening the first to the last label saved (the browser's own waits included:
each click waits until the page counts it, each photo until its suggestions are drawn).
Points are placed in the page's fit view, so to whole canvas pixels.

    python benchmarks/label_assist_page.py --out runs/label_assist_page --json benchmarks/results/label_assist_page.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from label_assist import five
from page_driver import browser, canvas_offset, label, new_project, next_photo, open_photo, placed, running, wait

from fabrec.datasets.pts import read_pts
from fabrec.io import find_image, write_json_atomic
from fabrec.predict import LandmarkPredictor
from fabrec.serve import create_app

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def drag(drv, canvas, start: np.ndarray, end: np.ndarray, size: tuple[int, int]) -> None:
    """Press on ``start`` (a suggested point), move to ``end`` in two steps, release."""
    from selenium.webdriver.common.action_chains import ActionChains

    (sx, sy), (ex, ey) = canvas_offset(start, size), canvas_offset(end, size)
    ActionChains(drv).move_to_element_with_offset(canvas, sx, sy).click_and_hold() \
        .move_by_offset((ex - sx) // 2, (ey - sy) // 2).move_by_offset(ex - sx - (ex - sx) // 2, ey - sy - (ey - sy) // 2) \
        .release().perform()


def label_project(drv, url: str, project: str, photos: dict[str, Path], truth: dict[str, np.ndarray],
                  face_size: dict[str, float], assisted: bool) -> dict:
    """Label every photo of a new project with ``truth`` (``(5, 2)`` per photo; ``face_size``:
    the diagonal of its annotation's extent); interactions per photo (in the order the page
    opens them) and the wall seconds."""
    from selenium.webdriver.common.by import By

    drv.get(url + "/")
    canvas = new_project(drv, project, [str(p) for p in photos.values()])
    sizes = {n: cv2.imread(str(p)).shape[1::-1] for n, p in photos.items()}
    seen: list[str] = []
    acts: list[int] = []
    t0 = time.perf_counter()
    for k in range(len(photos)):
        name = open_photo(drv, canvas, seen)
        seen.append(name)
        t, size = truth[name], sizes[name]
        if not assisted or k == 0:
            label(drv, canvas, t, size)
            acts.append(len(t))
        else:
            wait(drv, lambda d: canvas.get_attribute("data-suggested") == str(len(t)))
            sug = np.array(json.loads(urllib.request.urlopen(f"{url}/v1/projects/{project}/suggest/{name}").read())["points"])
            off = np.linalg.norm(sug - t, axis=1) > 0.02 * face_size[name]
            for i in np.flatnonzero(off):
                before = placed(canvas)
                drag(drv, canvas, sug[i], t[i], size)
                wait(drv, lambda d, n=before + 1: placed(canvas) == n)
            if (~off).any():
                drv.find_element(By.ID, "accept").click()
            wait(drv, lambda d: placed(canvas) == len(t))
            acts.append(int(off.sum()) + int((~off).any()))
        if k + 1 < len(photos):
            next_photo(drv)
    return {"interactions": acts, "wall_s": round(time.perf_counter() - t0, 1), "order": seen}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--photos", type=int, default=10)
    a = ap.parse_args()
    out = Path(a.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    (out / "photos").mkdir(parents=True)
    photos, truth, face_size = {}, {}, {}
    for pts in sorted((SHARED / "300w" / "helen" / "trainset").glob("*.pts"))[: a.photos]:
        src = find_image(pts)
        photos[src.name] = out / "photos" / src.name
        shutil.copyfile(src, photos[src.name])
        t68 = read_pts(pts)
        truth[src.name], face_size[src.name] = five(t68), float(np.linalg.norm(np.ptp(t68, 0)))
    predictor = LandmarkPredictor.from_pretrained("default", device="cpu")
    res: dict = {"photos": len(photos), "scheme": "5 points from the 300-W annotation",
                 "drag_threshold": "2% of the annotation extent's diagonal"}
    with running(create_app(predictor, projects=out / "projects")) as url, browser() as drv:
        for how in ("scratch", "assisted"):
            res[how] = label_project(drv, url, how, photos, truth, face_size, how == "assisted")
            print(how, res[how], flush=True)
    s, h = res["scratch"]["interactions"], res["assisted"]["interactions"]
    res["assisted_from_third_photo_share"] = round(sum(h[2:]) / sum(s[2:]), 3)
    res["wall_time_share"] = round(res["assisted"]["wall_s"] / res["scratch"]["wall_s"], 3)
    write_json_atomic(a.json, res)
    print(json.dumps({k: v for k, v in res.items() if k not in ("scratch", "assisted")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
