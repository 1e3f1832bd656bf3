"""300-W as published: afw/, helen/, lfpw/, ibug/, 300W/ folders and the iBUG bounding-box .mat files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fabrec.datasets.folder import read_folder
from fabrec.datasets.samples import LandmarkSample, ReadResult
from fabrec.errors import FabrecError
from fabrec.schemes import Scheme
from fabrec.transforms import Box

W300_SPLITS = {
    "train": ["afw", "helen/trainset", "lfpw/trainset"],
    "common": ["helen/testset", "lfpw/testset"],
    "challenging": ["ibug"],
    "full": ["helen/testset", "lfpw/testset", "ibug"],
}
_CHALLENGING = {"ibug"}


def _w300_folders(root: Path, split: str) -> list[str]:
    if split in W300_SPLITS:
        return W300_SPLITS[split]
    if split == "private":
        found = sorted(p.relative_to(root).as_posix() for p in (root / "300W").glob("*_*door"))
        if not found:
            raise FabrecError(f"{root}: split 'private' needs 300W/01_Indoor and 300W/02_Outdoor")
        return found
    return [split]  # any sub-folder, e.g. "helen/trainset"


def _w300_gt_boxes(root: Path) -> dict[str, tuple[float, float, float, float]]:
    """Ground-truth boxes from the iBUG ``bounding_boxes_*.mat`` files, by image name."""
    mats = sorted(root.rglob("bounding_boxes_*.mat"))
    if not mats:
        return {}
    from scipy.io import loadmat

    out: dict[str, tuple[float, float, float, float]] = {}
    for m in mats:
        try:
            bbs = loadmat(str(m))["bounding_boxes"][0]
            for entry in bbs:
                e = entry[0, 0]
                name = str(e[0][0])
                gt = np.asarray(e[2], np.float64).reshape(-1)[:4]  # x0, y0, x1, y1 (1-based)
                out[name] = tuple(gt - 1.0)  # type: ignore[assignment]
        except (KeyError, IndexError, ValueError, OSError) as err:
            raise FabrecError(f"{m}: not an iBUG bounding-box file ({err})") from None
    return out


def w300_box(x0: float, y0: float, x1: float, y1: float) -> Box:
    """iBUG ground-truth box (0-based extreme coordinates) extended 20% at the top and 12% at
    the bottom, squared."""
    h = y1 - y0
    return Box((x0 + x1) / 2.0, (y0 - 0.20 * h + y1 + 0.12 * h) / 2.0, float(max(x1 - x0, 1.32 * h)))


def read_300w(root: str | Path, split: str, scheme: Scheme) -> ReadResult:
    """300-W layout (``afw/``, ``helen/{trainset,testset}/``, ``lfpw/{trainset,testset}/``,
    ``ibug/``, ``300W/0x_{Indoor,Outdoor}/``) for splits train / common / challenging / full /
    private, or any sub-folder. Uses iBUG GT boxes when their .mat files are under ``root``."""
    r = Path(root)
    if scheme.num_points != 68:
        raise FabrecError("300-W has 68 points: use --scheme 68")
    folders = _w300_folders(r, split)
    missing = [f for f in folders if not (r / f).is_dir()]
    if missing:
        raise FabrecError(f"{r}: split '{split}' needs folder(s) missing here: {', '.join(missing)}")
    boxes = _w300_gt_boxes(r)
    res = ReadResult()
    for f in folders:
        sub = read_folder(r / f, scheme)
        res.problems += sub.problems
        tags = ("challenging",) if f in _CHALLENGING else (("common",) if split in ("common", "full") else ())
        for s in sub.samples:
            gt = boxes.get(s.path.name)
            box = w300_box(*gt) if gt is not None else None
            res.samples.append(LandmarkSample(s.path, s.points, box, f"{f}/{s.key}", tags))
    return res
