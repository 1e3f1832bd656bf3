"""Tracking through cuts, fast moves, a face leaving, blank frames and an occlusion: frames on
the wrong spot per event, through ``LandmarkPredictor.track`` (what ``fabrec predict clip.mp4``
runs).

Each clip (``tests/clips.py``): 60 frames, 480x360, a 300-W HELEN-train face (points extent
145 px) on a blurred photo, sweeping 6 px a frame for frames 0-29; at frame 30 the event:

- ``cut, same place``: a hard cut to another face where the first one was;
- ``cut, half a face lower``: the same, 72 px lower (the clip a user's video crashed on);
- ``cut, elsewhere``: to another face 170 px to the right;
- ``fast move``: the face then moves 30 px a frame, back and forth;
- ``leaving the frame``: it slides out of the right edge at 12 px a frame (no face once under
  half of its points are inside);
- ``blank frames``: 5 frames without a face, then it comes back 100 px away;
- ``occlusion``: a skin-coloured oval covers the face for 5 frames (no face), then it is back.

A frame is wrong when the points' bounding-box NME is over 10 %, when a visible face got no
points, or when points are reported where no face is visible. Four face pairs (HELEN-train
files 0/1, 3/4, 5/6, 7/8 in name order). Prints one JSON line; ``--json`` writes it.

    python benchmarks/video_cuts.py [--shared ../shared/data] [--json results/video_cuts.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from clips import Placement, compose, frame_nme, sweep  # noqa: E402

from fabrec.predict import LandmarkPredictor  # noqa: E402

PAIRS = ((0, 1), (3, 4), (5, 6), (7, 8))
EVENT_AT, FRAMES = 30, 60


def schedule(event: str) -> tuple[list[Placement | None], list[int]]:
    """The clip's placements and the frames an occluder covers."""
    before: list[Placement | None] = [(0, sweep(t), 20.0) for t in range(EVENT_AT)]
    after = range(EVENT_AT, FRAMES)
    occluded: list[int] = []
    if event == "cut, same place":
        rest = [(1, sweep(t), 20.0) for t in after]
    elif event == "cut, half a face lower":
        rest = [(1, sweep(t), 20.0 + 72.5) for t in after]
    elif event == "cut, elsewhere":
        rest = [(1, min(sweep(t) + 170.0, 248.0), 40.0) for t in after]
    elif event == "fast move":
        rest = [(0, sweep(t - EVENT_AT, 30.0, 20.0, 228.0), 20.0) for t in after]
    elif event == "leaving the frame":
        x0 = sweep(EVENT_AT - 1)
        rest = [(0, x0 + 12.0 * (t - EVENT_AT + 1), 20.0) for t in after]
    elif event == "blank frames":
        rest = [None] * 5 + [(0, (sweep(t) + 100.0) % 228.0, 20.0) for t in range(EVENT_AT + 5, FRAMES)]
    elif event == "occlusion":
        rest = [(0, sweep(t), 20.0) for t in after]
        occluded = list(range(EVENT_AT, EVENT_AT + 5))
    else:
        raise ValueError(event)
    return before + rest, occluded  # type: ignore[operator]


EVENTS = ("cut, same place", "cut, half a face lower", "cut, elsewhere", "fast move", "leaving the frame",
          "blank frames", "occlusion")


def clip(shared: Path, event: str, pair: tuple[int, int]) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """The frames of one event's clip and their true points (None: no face visible)."""
    sched, occluded = schedule(event)
    frames, truth = compose(shared, sched, pair)
    for t in occluded:
        pts = truth[t]
        assert pts is not None
        c = (pts.min(0) + pts.max(0)) / 2
        ax = (int(0.75 * np.ptp(pts[:, 0])), int(0.8 * np.ptp(pts[:, 1])))
        cv2.ellipse(frames[t], (int(c[0]), int(c[1])), ax, 0, 0, 360, (205, 160, 135), -1)
        truth[t] = None
    return frames, truth


def wrong_frames(predictor: LandmarkPredictor, frames: list[np.ndarray], truth: list[np.ndarray | None],
                 threshold: float = 0.10) -> list[bool]:
    """Per frame: is the tracker's answer wrong (see the module docstring)?"""
    return [frame_nme(None if f is None else f.points, g) > threshold for f, g in zip(predictor.track(frames), truth)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--model", default="default")
    ap.add_argument("--redetect-every", type=int, default=3)
    ap.add_argument("--json", help="also write the result here")
    a = ap.parse_args()
    p = LandmarkPredictor.from_pretrained(a.model, device="cpu", quality=False)
    rows: dict[str, dict] = {}
    t0, n = time.perf_counter(), 0
    for event in EVENTS:
        per = []
        for pair in PAIRS:
            frames, truth = clip(Path(a.shared), event, pair)
            per.append(wrong_frames(p, frames, truth))
            n += len(frames)
        rows[event] = {"wrong_before_event": [int(sum(w[:EVENT_AT])) for w in per],
                       "wrong_after_event": [int(sum(w[EVENT_AT:])) for w in per],
                       "per_frame": ["".join("x" if v else "." for v in w) for w in per]}
    out = {"model": a.model, "frames_per_clip": FRAMES, "event_at": EVENT_AT, "pairs": PAIRS,
           "wrong": "bounding-box NME > 10 %, or a face missed / reported where none is visible",
           "frames_per_s": round(n / (time.perf_counter() - t0), 1), "events": rows}
    text = json.dumps(out)
    print(text)
    if a.json:
        Path(a.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
