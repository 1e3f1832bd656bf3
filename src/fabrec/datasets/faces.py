"""Unlabeled face images for the autoencoder stage.

Sources are folders (searched recursively), list files (one path per line, relative to the
list file) or single images. Face boxes come from CSV files:

- generic: ``path,x,y,w,h`` (header optional; path relative to the CSV's folder),
- VGGFace2 ``loose_bb_{train,test}.csv``: ``NAME_ID,X,Y,W,H`` with ``NAME_ID`` like
  ``n000002/0001_01`` (images in ``train/`` or ``test/`` beside it); boxes extended +5% at the
  top and +10% at the bottom, faces under ``min_face_size`` px high dropped,
- AffectNet ``training.csv`` / ``validation.csv``: ``subDirectory_filePath,face_x,face_y,
  face_width,face_height,...`` (images in ``Manually_Annotated_Images/``); +5% top, +25% bottom.

Images without a box use the whole picture (square around its centre).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from fabrec.batch_order import hash_split, sample_key
from fabrec.config import AugmentConfig
from fabrec.inputs import read_box_rows
from fabrec.errors import FabrecError
from fabrec.io import IMAGE_EXTENSIONS, list_images, read_image
from fabrec.normalization import to_tensor
from fabrec.transforms import Box, augment_matrix, crop_matrix, warp


@dataclass(frozen=True)
class FaceItem:
    """One face: image path, optional box in that image, and a stable key for splitting."""

    path: Path
    box: Box | None
    key: str


def _extend(x: float, y: float, w: float, h: float, top: float, bottom: float) -> Box:
    return Box.from_xywh(x, y - top * h, w, h * (1 + top + bottom))


def _read_csv_rows(path: Path) -> list[list[str]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    except (OSError, UnicodeDecodeError) as e:
        raise FabrecError(f"{path}: cannot read box file ({e})") from None


def read_boxes(path: str | Path, min_face_size: float = 0.0) -> list[FaceItem]:
    """Parse a box CSV (generic, VGGFace2 or AffectNet layout; detected by its header)."""
    p = Path(path)
    rows = _read_csv_rows(p)
    if not rows:
        raise FabrecError(f"{p}: box file is empty")
    head = [c.strip().lower() for c in rows[0]]
    items: list[FaceItem] = []
    bad = 0
    if head[:1] == ["name_id"]:  # VGGFace2 loose boxes
        split = "test" if "test" in p.name else "train"
        for r in rows[1:]:
            try:
                x, y, w, h = (float(v) for v in r[1:5])
            except (ValueError, IndexError):
                bad += 1
                continue
            if h < min_face_size or w <= 0 or h <= 0:
                continue
            img = p.parent / split / f"{r[0]}.jpg"
            items.append(FaceItem(img, _extend(x, y, w, h, 0.05, 0.10), r[0]))
    elif head[:1] == ["subdirectory_filepath"]:  # AffectNet
        for r in rows[1:]:
            try:
                x, y, w, h = (float(v) for v in r[1:5])
            except (ValueError, IndexError):
                bad += 1
                continue
            if h < min_face_size or w <= 0 or h <= 0:
                continue
            img = p.parent / "Manually_Annotated_Images" / r[0]
            items.append(FaceItem(img, _extend(x, y, w, h, 0.05, 0.25), r[0]))
    else:  # generic path,x,y,w,h
        good, bad_lines = read_box_rows(p)
        bad = len(bad_lines)
        items = [FaceItem(p.parent / name, Box.from_xywh(*b), name) for name, b in good]
    if not items:
        raise FabrecError(f"{p}: no valid boxes ({bad} malformed rows)")
    return items


def collect_faces(paths: list[str], boxes: list[str] = (), min_face_size: float = 0.0) -> list[FaceItem]:
    """Face items from folders / list files / images, plus every row of the box CSVs.

    Raises :class:`FabrecError` for a missing path or when nothing is found.
    """
    items: list[FaceItem] = []
    for src in paths:
        p = Path(src)
        if not p.exists():
            raise FabrecError(f"{p}: no such file or folder")
        if p.is_file() and p.suffix.lower() == ".txt":
            base = p.parent
            lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
            files = [base / ln for ln in lines if ln and not ln.startswith("#")]
            root = base
        else:
            if p.is_file() and p.suffix.lower() not in IMAGE_EXTENSIONS:
                raise FabrecError(f"{p}: not an image, folder or .txt list")
            files = list_images(p)
            root = p if p.is_dir() else p.parent
            if not files:
                raise FabrecError(f"{p}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)})")
        for f in files:
            try:
                key = str(f.relative_to(root))
            except ValueError:
                key = str(f)
            items.append(FaceItem(f, None, key))
    for b in boxes:
        items.extend(read_boxes(b, min_face_size))
    if not items:
        raise FabrecError("no face images given")
    return items


def split_items(items: list[FaceItem], permille: int, val_max: int) -> tuple[list[FaceItem], list[FaceItem]]:
    """(train, val) by the shared hash rule on item keys (:func:`fabrec.batch_order.hash_split`)."""
    return hash_split(items, lambda it: it.key, permille, val_max)


class FaceDataset(Dataset):
    """Face crops for the autoencoder. ``dataset[i]`` -> ``(3, S, S)`` tensor or ``None`` for an
    unreadable image (use :func:`collate_skip`, which drops and counts them).

    Keys are indices or ``(epoch, index)`` pairs (see :mod:`fabrec.batch_order`); augmentation
    randomness comes from ``(seed, epoch, index)`` so that any worker layout and any resume
    point see the same crops.
    """

    def __init__(
        self,
        items: list[FaceItem],
        image_size: int,
        augment: AugmentConfig | None = None,
        seed: int = 0,
    ) -> None:
        self.items = items
        self.image_size = image_size
        self.augment = augment
        self.seed = seed

    def __len__(self) -> int:
        return len(self.items)

    def load_crop(self, i: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """Crop (and augment when ``rng`` is given) item ``i``: RGB ``uint8 (S, S, 3)``."""
        it = self.items[i]
        img = read_image(it.path)
        box = it.box or Box((img.shape[1] - 1) / 2.0, (img.shape[0] - 1) / 2.0, float(max(img.shape[:2])))
        m = crop_matrix(box, self.image_size)
        border = "constant"
        if rng is not None and self.augment is not None:
            a, _ = augment_matrix(rng, self.image_size, self.augment)
            m = a @ m
            border = self.augment.border
        return warp(img, m, self.image_size, border)

    def __getitem__(self, key: int | tuple[int, int]) -> torch.Tensor | None:
        epoch, i = sample_key(key)
        rng = None
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, epoch, i])
        try:
            return to_tensor(self.load_crop(i, rng))
        except FabrecError:
            return None


def collate_skip(batch: list[torch.Tensor | None]) -> tuple[torch.Tensor, int]:
    """Stack the readable samples; return ``(images (n, 3, S, S), skipped_count)``."""
    good = [b for b in batch if b is not None]
    skipped = len(batch) - len(good)
    if not good:
        return torch.empty(0), skipped
    return torch.stack(good), skipped
