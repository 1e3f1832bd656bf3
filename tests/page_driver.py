"""Driving `fabrec serve`'s page in Debian's headless Chromium with Selenium (nothing downloaded):
a real server on a free port, a browser, and the clicks a person labelling points makes.
Used by the browser test and by ``benchmarks/serve_page_fewshot.py``."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
CANVAS_W, CANVAS_H = 760, 520  # the labelling canvas of index.html


@contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yields its base URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.time() + 30
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    if not srv.started:
        raise RuntimeError("the server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        t.join(30)


@contextmanager
def browser(width: int = 1400, height: int = 1500) -> Iterator[Any]:
    """Headless Chromium through the system chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                "--disable-gpu", "--no-first-run"):
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        yield drv
    finally:
        drv.quit()


def wait(drv: Any, what: Callable[[Any], Any], timeout: float = 30) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(drv, timeout, poll_frequency=0.1).until(what)


def fit_scale(size: tuple[int, int]) -> float:
    """Canvas pixels per photo pixel in the page's 'fit' view of a ``(width, height)`` photo."""
    return min(CANVAS_W / size[0], CANVAS_H / size[1])


def canvas_offset(point: np.ndarray, size: tuple[int, int]) -> tuple[int, int]:
    """The click offset from the canvas centre that lands on photo ``point`` (0-based pixel centre)."""
    s = fit_scale(size)
    ox, oy = (CANVAS_W - size[0] * s) / 2, (CANVAS_H - size[1] * s) / 2
    return round((point[0] + 0.5) * s + ox - CANVAS_W / 2), round((point[1] + 0.5) * s + oy - CANVAS_H / 2)


def placed(canvas: Any) -> int:
    """Points the page shows as placed on the open photo."""
    return int(canvas.get_attribute("data-placed") or 0)


def click(drv: Any, canvas: Any, point: np.ndarray, size: tuple[int, int]) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    dx, dy = canvas_offset(point, size)
    ActionChains(drv).move_to_element_with_offset(canvas, dx, dy).click().perform()


def label(drv: Any, canvas: Any, points: np.ndarray, size: tuple[int, int]) -> None:
    """Click ``points (K, 2)`` in order on the open photo, each after the page counted the last."""
    start = placed(canvas)
    for i, p in enumerate(points):
        click(drv, canvas, p, size)
        wait(drv, lambda d, n=start + i + 1: placed(canvas) == n)


def open_photo(drv: Any, canvas: Any, done: list[str]) -> str:
    """Wait until the canvas shows a photo not in ``done``; its file name."""
    return wait(drv, lambda d: canvas.get_attribute("data-photo") not in (None, *done) and canvas.get_attribute("data-photo"))


def next_photo(drv: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(drv).send_keys("n").perform()


def train(drv: Any, steps: int | None, timeout: float) -> Any:
    """Press Train (``steps`` None: the suggested count) and wait until it ends; the status element."""
    from selenium.webdriver.common.by import By

    box = drv.find_element(By.ID, "steps")
    box.clear()
    if steps is not None:
        box.send_keys(str(steps))
    drv.find_element(By.ID, "train").click()
    wait(drv, lambda d: d.find_element(By.ID, "train-status").get_attribute("data-state") in ("training", "exporting",
                                                                                               "done", "failed"))
    wait(drv, lambda d: d.find_element(By.ID, "train-status").get_attribute("data-state") in ("done", "failed",
                                                                                               "cancelled"), timeout)
    return drv.find_element(By.ID, "train-status")


def new_project(drv: Any, name: str, photos: list[str]) -> Any:
    """Create a 5-point project on the New scheme tab, upload ``photos``; the labelling canvas."""
    from selenium.webdriver.common.by import By

    drv.find_element(By.ID, "scheme-tab").click()
    drv.find_element(By.ID, "project-name").send_keys(name)
    drv.find_element(By.CSS_SELECTOR, "#new-project button[type=submit]").click()
    wait(drv, lambda d: d.find_element(By.ID, "workspace").is_displayed())
    drv.find_element(By.ID, "project-files").send_keys("\n".join(photos))
    wait(drv, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#strip button")) == len(photos), 60)
    return drv.find_element(By.ID, "label-canvas")
