"""AFLW-19 as published: AFLWinfo_release.mat (train / test / frontal)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fabrec.datasets.samples import LandmarkSample, ReadResult
from fabrec.errors import FabrecError
from fabrec.schemes import Scheme
from fabrec.transforms import Box


def read_aflw(root: str | Path, split: str, scheme: Scheme) -> ReadResult:
    """AFLW-19 from ``AFLWinfo_release.mat`` (fields ``bbox`` [x1 x2 y1 y2], ``data`` [19 x, 19 y],
    ``mask_new``, ``ra`` (1-based order), ``name_list``); images under ``flickr/``.
    Split ``train`` (first 20,000 of ``ra``), ``test`` / ``full`` (the rest) or ``frontal``
    (test faces with all 19 points visible). Normaliser: the box side."""
    r = Path(root)
    if scheme.num_points != 19:
        raise FabrecError("AFLW-19 has 19 points: use --scheme 19")
    if split not in ("train", "test", "full", "frontal"):
        raise FabrecError("AFLW split must be train, test/full or frontal")
    mats = sorted(r.rglob("AFLWinfo_release.mat"))
    if not mats:
        raise FabrecError(f"{r}: AFLWinfo_release.mat not found")
    from scipy.io import loadmat

    try:
        m = loadmat(str(mats[0]))
        bbox, data, mask = m["bbox"], m["data"], m["mask_new"]
        ra = np.asarray(m["ra"]).reshape(-1).astype(int) - 1
        names = [str(np.asarray(n).reshape(-1)[0]) for n in np.asarray(m["name_list"]).reshape(-1)]
    except (KeyError, ValueError, IndexError) as e:
        raise FabrecError(f"{mats[0]}: not an AFLW-19 info file ({e})") from None
    n_train = min(20000, len(ra))
    order = ra[:n_train] if split == "train" else ra[n_train:]
    img_root = r / "flickr" if (r / "flickr").is_dir() else r
    res = ReadResult()
    for i in order:
        pts = np.stack([data[i, :19], data[i, 19:38]], -1).astype(np.float64) - 1.0
        visible = bool(np.asarray(mask[i]).all())
        if split == "frontal" and not visible:
            continue
        x1, x2, y1, y2 = (float(v) for v in bbox[i, :4])
        if not np.isfinite(pts).all() or x2 <= x1 or y2 <= y1:
            res.problems.append(f"{mats[0]}: entry {i + 1} has bad values")
            continue
        box = Box.from_xywh(x1 - 1.0, y1 - 1.0, x2 - x1, y2 - y1)
        side = float(np.sqrt((x2 - x1) * (y2 - y1)))
        tags = ("frontal",) if visible else ()
        res.samples.append(LandmarkSample(img_root / names[i], pts, box, names[i], tags, box_side=side))
    return res
