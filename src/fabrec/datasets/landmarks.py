"""Labelled faces: readers for 300-W, WFLW, AFLW-19 and plain folders, and the crop dataset.

Every reader returns :class:`LandmarkSample` s with 0-based pixel-centre points in the
original image, an optional face box, a normalising distance and subset tags. Files that are
malformed are reported by name through the ``problems`` list and skipped, never silently.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from fabrec.config import AugmentConfig
from fabrec.datasets.coco import coco_samples, is_coco
from fabrec.datasets.labelme import is_labelme, labelme_points
from fabrec.datasets.pts import points_from_json, read_pts
from fabrec.errors import FabrecError
from fabrec.heatmaps import crop_to_heatmap, make_heatmaps
from fabrec.io import find_image, read_image
from fabrec.normalization import to_tensor
from fabrec.sampling import sample_key
from fabrec.schemes import Scheme, flip_points
from fabrec.transforms import Box, augment_matrix, crop_matrix, occlude, transform_points, warp


@dataclass(frozen=True)
class LandmarkSample:
    """One annotated face.

    Attributes:
        path: image file.
        points: ``(K, 2)`` 0-based pixel centres in the original image.
        box: face box to crop from (None: crop from the landmarks' extent).
        key: stable id (relative path) for splits and reports.
        subsets: subset tags (e.g. WFLW "pose", 300-W "challenging").
        box_side: face-box side used as AFLW normaliser (None if not given).
    """

    path: Path
    points: np.ndarray
    box: Box | None
    key: str
    subsets: tuple[str, ...] = ()
    box_side: float | None = None


@dataclass
class ReadResult:
    """Samples plus the names of the files that were skipped and why."""

    samples: list[LandmarkSample] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _check(points: np.ndarray, scheme: Scheme, name: str) -> None:
    if points.shape != (scheme.num_points, 2):
        raise FabrecError(f"{name}: {len(points)} points, scheme {scheme.name} needs {scheme.num_points}")
    if not np.isfinite(points).all():
        raise FabrecError(f"{name}: non-finite coordinates")


# ----------------------------------------------------------------------------- folder
def read_folder(root: str | Path, scheme: Scheme) -> ReadResult:
    """Any folder (recursive) of images with same-stem annotation files -- iBUG ``.pts``,
    labelme ``.json`` (one point shape per landmark) or ``{"points": [[x, y], ...]}`` JSON --
    or holding COCO keypoints ``.json`` files (many images each), or one CSV
    ``path,x0,y0,x1,y1,...`` (0-based pixels, header optional)."""
    r = Path(root)
    if not r.is_dir():
        raise FabrecError(f"{r}: no such folder")
    res = ReadResult()
    csvs = sorted(r.glob("*.csv"))
    anns = sorted(p for p in r.rglob("*") if p.suffix.lower() in (".pts", ".json"))
    if not anns and len(csvs) == 1:
        return _read_points_csv(csvs[0], scheme)
    for a in anns:
        data = _load_json(a, res) if a.suffix.lower() == ".json" else None
        if a.suffix.lower() == ".json" and data is None:
            continue
        if is_coco(data):
            try:
                found, problems = coco_samples(data, a, scheme)
            except FabrecError as e:
                res.problems.append(str(e))
                continue
            res.problems += problems
            for img, pts, key in found:
                res.samples.append(LandmarkSample(img, pts, None, f"{a.relative_to(r)}/{key}"))
            continue
        img = find_image(a)
        if img is None:
            res.problems.append(f"{a}: no image with the same name")
            continue
        try:
            if a.suffix.lower() == ".pts":
                pts = read_pts(a)
            elif is_labelme(data):
                pts = labelme_points(data, scheme, str(a))
            else:
                pts = points_from_json(data, str(a))
            _check(pts, scheme, str(a))
        except FabrecError as e:
            res.problems.append(str(e))
            continue
        res.samples.append(LandmarkSample(img, pts, None, str(img.relative_to(r))))
    if not res.samples:
        raise FabrecError(f"{r}: no annotated images found (.pts, labelme/COCO/points .json beside images, or one CSV)"
                          + (f"; first problem: {res.problems[0]}" if res.problems else ""))
    return res


def _load_json(path: Path, res: ReadResult) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        res.problems.append(f"{path}: cannot read JSON ({str(e)[:80]})")
        return None


def _read_points_csv(path: Path, scheme: Scheme) -> ReadResult:
    res = ReadResult()
    with open(path, newline="", encoding="utf-8") as f:
        rows = [row for row in csv.reader(f) if row]
    for i, row in enumerate(rows):
        try:
            vals = np.array([float(v) for v in row[1:]], np.float64)
        except ValueError:
            if i == 0:
                continue  # header
            res.problems.append(f"{path}:{i + 1}: non-numeric coordinates")
            continue
        if len(vals) != 2 * scheme.num_points or not np.isfinite(vals).all():
            res.problems.append(f"{path}:{i + 1}: expected {2 * scheme.num_points} finite numbers, got {len(vals)}")
            continue
        res.samples.append(LandmarkSample(path.parent / row[0], vals.reshape(-1, 2), None, row[0]))
    if not res.samples:
        raise FabrecError(f"{path}: no valid rows")
    return res


# ----------------------------------------------------------------------------- 300-W
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


# ----------------------------------------------------------------------------- WFLW
WFLW_ATTRS = ("pose", "expression", "illumination", "makeup", "occlusion", "blur")


def read_wflw(root: str | Path, split: str, scheme: Scheme) -> ReadResult:
    """WFLW: ``list_98pt_rect_attr_{train,test}.txt`` (196 coordinates, 4 box values
    x_min y_min x_max y_max, 6 attribute flags, image path) found anywhere under ``root``;
    images under ``WFLW_images/`` (or ``root``). Split ``train``, ``test`` or a test subset
    (``pose``, ``expression``, ...). Boxes get +10% at the bottom."""
    r = Path(root)
    if scheme.num_points != 98:
        raise FabrecError("WFLW has 98 points: use --scheme 98")
    which = "train" if split == "train" else "test"
    if split not in ("train", "test") + WFLW_ATTRS:
        raise FabrecError(f"WFLW split must be train, test or one of {', '.join(WFLW_ATTRS)}")
    lists = sorted(r.rglob(f"list_98pt_rect_attr_{which}.txt"))
    if not lists:
        raise FabrecError(f"{r}: list_98pt_rect_attr_{which}.txt not found")
    img_root = r / "WFLW_images" if (r / "WFLW_images").is_dir() else r
    res = ReadResult()
    for i, line in enumerate(lists[0].read_text(encoding="utf-8").splitlines()):
        parts = line.split()
        if not parts:
            continue
        where = f"{lists[0]}:{i + 1}"
        if len(parts) != 196 + 4 + 6 + 1:
            res.problems.append(f"{where}: expected 207 fields, got {len(parts)}")
            continue
        try:
            vals = np.array([float(v) for v in parts[:206]])
        except ValueError:
            res.problems.append(f"{where}: non-numeric field")
            continue
        pts = vals[:196].reshape(98, 2)
        x0, y0, x1, y1 = vals[196:200]
        attrs = tuple(a for a, flag in zip(WFLW_ATTRS, vals[200:206]) if flag > 0)
        if not np.isfinite(vals).all() or x1 <= x0 or y1 <= y0:
            res.problems.append(f"{where}: non-finite values or empty box")
            continue
        if split in WFLW_ATTRS and split not in attrs:
            continue
        h = y1 - y0
        box = Box.from_xywh(x0, y0, x1 - x0, h * 1.10)
        res.samples.append(LandmarkSample(img_root / parts[206], pts, box, f"{parts[206]}#{i}", attrs))
    return res


# ----------------------------------------------------------------------------- AFLW-19
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


DATASETS = ("300w", "wflw", "aflw", "folder")


def read_dataset(name: str, root: str | Path, split: str, scheme: Scheme) -> ReadResult:
    """Dispatch to the reader for ``name`` (one of :data:`DATASETS`)."""
    if not Path(root).exists():
        raise FabrecError(f"{root}: no such folder")
    if name == "300w":
        return read_300w(root, split, scheme)
    if name == "wflw":
        return read_wflw(root, split, scheme)
    if name == "aflw":
        return read_aflw(root, split, scheme)
    if name == "folder":
        sub = Path(root) / split if split not in ("", "train", ".") and (Path(root) / split).is_dir() else Path(root)
        return read_folder(sub, scheme)
    raise FabrecError(f"unknown dataset '{name}' (use one of {', '.join(DATASETS)})")


# ----------------------------------------------------------------------------- crops
def normaliser(sample: LandmarkSample, scheme: Scheme, box: Box) -> float:
    """Error normaliser in original pixels: eye-corner distance, or the face box side."""
    if scheme.norm_points is None:
        return sample.box_side if sample.box_side is not None else box.side
    i, j = scheme.norm_points
    return float(np.linalg.norm(sample.points[i] - sample.points[j]))


class LandmarkDataset(Dataset):
    """Square crops of annotated faces, with heatmap targets.

    ``dataset[i]`` or ``dataset[(epoch, i)]`` (augmentation drawn from ``(seed, epoch, i)``)
    -> dict with ``image (3, S, S)``, ``heatmaps (K, H, H)`` (unless ``heatmaps=False``: the
    trainer draws them on its device from the points), ``points (K, 2)``
    (crop pixels), ``matrix (3, 3)`` (original -> crop), ``norm`` (normaliser in original
    pixels), ``index``; or None if the image cannot be read (dropped by the collate function).
    """

    def __init__(
        self,
        samples: list[LandmarkSample],
        scheme: Scheme,
        image_size: int,
        heatmap_size: int,
        framing: tuple[float, float] = (0.25, 0.15),
        augment: AugmentConfig | None = None,
        sigma: float = 7.0,
        seed: int = 0,
        heatmaps: bool = True,
    ) -> None:
        self.with_heatmaps = heatmaps
        self.samples, self.scheme = samples, scheme
        self.image_size, self.heatmap_size = image_size, heatmap_size
        self.framing, self.augment, self.sigma, self.seed = framing, augment, sigma, seed

    def __len__(self) -> int:
        return len(self.samples)

    def box(self, i: int) -> Box:
        s = self.samples[i]
        return s.box if s.box is not None else Box.from_landmarks(s.points, *self.framing)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor] | None:
        epoch, i = sample_key(key)
        s = self.samples[i]
        try:
            img = read_image(s.path)
        except FabrecError:
            return None
        box = self.box(i)
        m = crop_matrix(box, self.image_size)
        pts = s.points
        border = "constant"
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, epoch, i])
            a, flipped = augment_matrix(rng, self.image_size, self.augment)
            if flipped and self.scheme.flip is None:  # no pairs: redraw without the flip
                a, flipped = augment_matrix(rng, self.image_size, _no_flip(self.augment))
            m = a @ m
            border = self.augment.border
            crop = warp(img, m, self.image_size, border)
            cp = transform_points(pts, m)
            if flipped:
                cp = flip_points(cp, self.scheme)
            if self.augment.occlusion > 0 and rng.random() < self.augment.occlusion:
                crop = occlude(rng, crop)
        else:
            crop = warp(img, m, self.image_size, border)
            cp = transform_points(pts, m)
        cpt = torch.from_numpy(cp).float()
        item = {
            "image": to_tensor(crop),
            "points": cpt,
            "matrix": torch.from_numpy(m).float(),
            "norm": torch.tensor(normaliser(s, self.scheme, box), dtype=torch.float32),
            "index": torch.tensor(i),
        }
        if self.with_heatmaps:
            item["heatmaps"] = target_heatmaps(cpt[None], self.image_size, self.heatmap_size, self.sigma)[0]
        return item


def target_heatmaps(points: torch.Tensor, crop_size: int, heatmap_size: int, sigma: float) -> torch.Tensor:
    """Training targets for crop-pixel points ``(N, K, 2)``: ``(N, K, H, H)`` Gaussians."""
    return make_heatmaps(crop_to_heatmap(points, crop_size, heatmap_size), heatmap_size, sigma)


def _no_flip(cfg: AugmentConfig) -> AugmentConfig:
    from dataclasses import replace

    return replace(cfg, flip=0.0)


def collate_landmarks(batch: list[dict | None]) -> tuple[dict[str, torch.Tensor] | None, int]:
    """Stack readable samples; return ``(batch dict or None, skipped_count)``."""
    good = [b for b in batch if b is not None]
    if not good:
        return None, len(batch)
    return {k: torch.stack([g[k] for g in good]) for k in good[0]}, len(batch) - len(good)


def choose_training(
    samples: list[LandmarkSample], count: float, mode: str, seed: int
) -> list[LandmarkSample]:
    """Few-shot selection: ``count`` images (int) or a fraction (float in (0, 1]); ``mode``
    ``random`` (seeded sample, the default) or ``first`` (the authors' first-N, for parity)."""
    n = len(samples)
    k = max(1, round(count * n)) if isinstance(count, float) else int(count)
    if k > n:
        raise FabrecError(f"asked for {k} training images, only {n} available")
    if mode == "first":
        return samples[:k]
    if mode != "random":
        raise FabrecError(f"--sample must be random or first, got '{mode}'")
    idx = np.sort(np.random.default_rng(seed).choice(n, k, replace=False))
    return [samples[i] for i in idx]
